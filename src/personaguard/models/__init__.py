"""Model registry: turn a spec string into a LanguageModel. Backends are imported lazily."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from personaguard.errors import PersonaguardError
from personaguard.models.base import Chat, ChoiceScore, LanguageModel, LocalModel, Message, require_local
from personaguard.models.spec import ModelSpec, parse_spec

__all__ = [
    "Chat",
    "ChoiceScore",
    "LanguageModel",
    "LocalModel",
    "Message",
    "ModelSpec",
    "load_local_model",
    "load_model",
    "parse_spec",
    "require_local",
    "resolve_local_path",
]


def resolve_local_path(spec: ModelSpec) -> str:
    """The directory or hub id transformers should load for a local spec."""
    if spec.scheme == "bundled":
        from personaguard.models.bundled import materialise

        return str(materialise(spec.name))
    if spec.scheme == "hf":
        looks_local = spec.name.startswith((".", "/", "~")) or Path(spec.name).exists()
        if looks_local and not Path(spec.name).expanduser().is_dir():
            raise PersonaguardError(f"model directory {spec.name!r} not found")
        return str(Path(spec.name).expanduser()) if looks_local else spec.name
    raise PersonaguardError(f"{spec} is not a local model")


def load_local_model(spec: str | ModelSpec, what: str) -> LocalModel:
    """A model whose activations ``what`` reads, or a one-line error naming the spec."""
    return require_local(load_model(spec), what)


def load_model(spec: str | ModelSpec) -> LanguageModel:
    """Load any model personaguard supports; ``hf``/``bundled`` specs give an ``HFModel``."""
    parsed = parse_spec(spec)
    persona = parsed.option("persona")
    if persona:
        from personaguard.models.persona_prompted import persona_prompted
        from personaguard.persona.definitions import load_persona

        prompt = load_persona(persona).system_prompt  # a bad persona fails before any loading
        inner = load_model(
            replace(parsed, options={k: v for k, v in parsed.options.items() if k != "persona"})
        )
        return persona_prompted(inner, prompt, str(parsed))
    steer, cap = parsed.option("steer"), parsed.option("cap")
    if parsed.scheme == "openai":
        if steer or cap:
            raise PersonaguardError(
                f"{parsed}: steering and capping need a local model (bundled:... or hf:...)"
            )
        from personaguard.models.openai_compat import OpenAIModel

        return OpenAIModel(parsed)
    from personaguard._warnings import silence_known_warnings
    from personaguard.models.hf import HFModel
    from personaguard.vectors.steer import apply_spec_capping, apply_spec_steering, load_vector_option

    silence_known_warnings()  # transformers' and PEFT's known deprecation notices
    steering = load_vector_option(steer, "steer") if steer else None  # bad files fail before the weights load
    capping = load_vector_option(cap, "cap") if cap else None
    model = HFModel(parsed, resolve_local_path(parsed))
    if steering:
        apply_spec_steering(model, *steering)
    if capping:
        apply_spec_capping(model, *capping)
    return model
