"""Persona vectors on disk: one safetensors file per trait, every layer, with the metadata needed
to refuse a vector from another model (hidden size, layer count) before it silently misbehaves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from personaguard.errors import PersonaguardError
from personaguard.models.base import LAYER_CONVENTION, LanguageModel, require_local


@dataclass(frozen=True)
class PersonaVectors:
    trait: str
    vectors: torch.Tensor  # [n_layers + 1, hidden], float32
    model: str
    method: str
    span: str
    n_pairs: int
    weights: str | None = None  # sha256 of the base weights they were measured in

    @property
    def n_layers(self) -> int:
        return self.vectors.shape[0] - 1

    @property
    def hidden_size(self) -> int:
        return self.vectors.shape[1]

    def at(self, layer: int) -> torch.Tensor:
        if not 0 <= layer <= self.n_layers:
            raise PersonaguardError(
                f"layer {layer} out of range for the {self.trait!r} vector: expected 0..{self.n_layers} "
                f"({LAYER_CONVENTION})"
            )
        return self.vectors[layer]

    def unit(self, layer: int) -> torch.Tensor:
        v = self.at(layer)
        return v / v.norm().clamp(min=1e-12)


def check_compatible(vectors: PersonaVectors, model: LanguageModel) -> None:
    """A vector only means something in the residual stream it was measured in (and only a local
    model has one)."""
    local = require_local(model, f"using the {vectors.trait!r} vector")
    hidden, n_layers = local.hidden_size, local.n_layers
    if (hidden, n_layers) != (vectors.hidden_size, vectors.n_layers):
        raise PersonaguardError(
            f"the {vectors.trait!r} vector comes from {vectors.model} (hidden size {vectors.hidden_size}, "
            f"{vectors.n_layers} layers) but the model has hidden size {hidden} and {n_layers} layers"
        )
    if vectors.weights and local.weights and vectors.weights != local.weights:
        raise PersonaguardError(
            f"the {vectors.trait!r} vector was measured in {vectors.model} (weights sha256 "
            f"{vectors.weights[:12]}…), not in this model's base weights ({local.weights[:12]}…); "
            "a direction means something only in the residual stream it came from"
        )


def save_vectors(vectors: PersonaVectors, path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "trait": vectors.trait,
        "model": vectors.model,
        "method": vectors.method,
        "span": vectors.span,
        "n_pairs": str(vectors.n_pairs),
        "layer_convention": LAYER_CONVENTION,
        **({"model_weights": vectors.weights} if vectors.weights else {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file({"vectors": vectors.vectors.contiguous()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_vectors(path: str | Path) -> PersonaVectors:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise PersonaguardError(f"vector file {path} not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensor = fh.get_tensor("vectors")
    except Exception as exc:  # safetensors raises several unrelated types for a bad file
        raise PersonaguardError(f"{path}: not a personaguard vector file ({exc})") from None
    missing = {"trait", "model", "method", "span", "n_pairs"} - meta.keys()
    if missing or tensor.ndim != 2:
        raise PersonaguardError(f"{path}: not a personaguard vector file (missing {sorted(missing)})")
    return PersonaVectors(
        meta["trait"],
        tensor.float(),
        meta["model"],
        meta["method"],
        meta["span"],
        int(meta["n_pairs"]),
        meta.get("model_weights"),
    )
