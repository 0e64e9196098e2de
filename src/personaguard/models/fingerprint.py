"""A model spec's content fingerprint: the hashes of everything behind the spec string that decides
its outputs (weights, adapter, steering or capping vectors, persona prompt) and the dtype it runs in.

Endpoints cannot be hashed from here; their fingerprint is what the client knows (model name, URL,
tokenizer), and comparisons that need more say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from personaguard.errors import PersonaguardError
from personaguard.fingerprint import dir_sha256, file_sha256, text_sha256
from personaguard.models.spec import ModelSpec, parse_spec, parse_steer


def weights_sha256(path: str) -> str:
    """Hash of a local model directory, or of a hub id's cached snapshot (downloading it if needed)."""
    local = Path(path).expanduser()
    if local.is_dir():
        return dir_sha256(local)
    try:
        from huggingface_hub import snapshot_download

        return dir_sha256(snapshot_download(path))
    except Exception as exc:  # hub errors come in many types; all mean the same here
        raise PersonaguardError(f"cannot fingerprint model {path!r}: {exc}") from None


def _vector_file(option: str) -> str:
    path, _, _ = parse_steer(option)
    if not path.is_file():
        raise PersonaguardError(f"vector file {path} not found")
    return file_sha256(path)


def model_fingerprint(spec: str | ModelSpec) -> dict[str, Any]:
    parsed = parse_spec(spec)
    if parsed.scheme == "openai":
        tokenizer = parsed.option("tokenizer")
        return {
            "endpoint": f"{parsed.name}@{parsed.base_url}",
            "tokenizer": dir_sha256(tokenizer) if tokenizer and Path(tokenizer).is_dir() else tokenizer,
            "dtype": None,
        }
    from personaguard.models import resolve_local_path
    from personaguard.models.device import resolve_dtype

    fp: dict[str, Any] = {
        "weights": weights_sha256(resolve_local_path(parsed)),
        "adapter": dir_sha256(parsed.adapter) if parsed.adapter else None,
        "dtype": str(resolve_dtype(parsed)).removeprefix("torch."),
    }
    for option in ("steer", "cap"):
        if value := parsed.option(option):
            fp[option] = {"vectors": _vector_file(value), "setting": value.rsplit(":", 2)[1:]}
    if persona := parsed.option("persona"):
        from personaguard.persona.definitions import load_persona

        fp["persona"] = text_sha256(load_persona(persona).system_prompt)
    return fp
