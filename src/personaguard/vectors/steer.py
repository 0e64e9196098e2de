"""Interventions along a persona vector: add ``coef * v`` (steering), or cap the projection on
``v`` at a threshold (capping). Both run as forward hooks on one decoder block, at every position,
so they apply alike to ``generate``, ``score_choices`` and activations, and so to a whole audit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import numpy as np
import torch

from personaguard.errors import PersonaguardError
from personaguard.models.base import Chat
from personaguard.vectors.store import PersonaVectors, check_compatible, load_vectors

Edit = Callable[[torch.Tensor], torch.Tensor]


def add_hook(vector: torch.Tensor, coef: float) -> Edit:
    def add(hidden: torch.Tensor) -> torch.Tensor:
        return hidden + coef * vector.to(hidden.dtype)

    return add


def cap_hook(unit: torch.Tensor, threshold: float) -> Edit:
    """Pull activations whose projection exceeds ``threshold`` back onto it; leave the rest."""

    def cap(hidden: torch.Tensor) -> torch.Tensor:
        u = unit.to(hidden.dtype)
        excess = (hidden @ u - threshold).clamp(min=0)
        return hidden - excess.unsqueeze(-1) * u

    return cap


def ablate_hook(unit: torch.Tensor) -> Edit:
    """Remove the component along ``unit`` entirely (CAFT-style ablation during training)."""

    def ablate(hidden: torch.Tensor) -> torch.Tensor:
        u = unit.to(hidden.dtype)
        return hidden - (hidden @ u).unsqueeze(-1) * u

    return ablate


@contextmanager
def steering(model: object, vectors: PersonaVectors, layer: int, coef: float) -> Iterator[None]:
    check_compatible(vectors, model)
    with model.hook(layer, add_hook(vectors.at(layer).to(model.device), coef)):  # type: ignore[attr-defined]
        yield


@contextmanager
def capping(model: object, vectors: PersonaVectors, layer: int, threshold: float) -> Iterator[None]:
    check_compatible(vectors, model)
    with model.hook(layer, cap_hook(vectors.unit(layer).to(model.device), threshold)):  # type: ignore[attr-defined]
        yield


def cap_threshold(
    model: object, vectors: PersonaVectors, layer: int, prompts: Sequence[Chat], percentile: float
) -> float:
    """The ``percentile`` of projections of ``prompts`` (last prompt token): cap at what is usual."""
    acts = model.activations(prompts, [layer], span="prompt_last")[:, 0]  # type: ignore[attr-defined]
    return float(np.percentile((acts @ vectors.unit(layer)).numpy(), percentile))


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


def load_vector_option(text: str, what: str) -> tuple[PersonaVectors, int, float]:
    path, layer, value = parse_steer(text, what)
    return load_vectors(path), layer, value


def parse_layer_ref(text: str, what: str) -> tuple[Path, int]:
    """``PATH:LAYER`` (``train`` options ``ablate`` and ``monitor``)."""
    path, sep, layer = text.rpartition(":")
    if not sep or not layer.isdigit():
        raise PersonaguardError(f"{what} {text!r}: expected VECTORS.safetensors:LAYER")
    return Path(path), int(layer)


def _keep(model: object, context: AbstractContextManager[None]) -> None:
    """Hold a hook for the loaded model's whole life (spec options)."""
    stack = getattr(model, "_interventions", None) or ExitStack()
    stack.enter_context(context)
    model._interventions = stack  # type: ignore[attr-defined]


def apply_spec_steering(model: object, vectors: PersonaVectors, layer: int, coef: float) -> None:
    """Spec option ``#steer=PATH:LAYER:COEF``."""
    _keep(model, steering(model, vectors, layer, coef))


def apply_spec_capping(model: object, vectors: PersonaVectors, layer: int, percentile: float) -> float:
    """Spec option ``#cap=PATH:LAYER:PERCENTILE``: cap at the model's own ``percentile`` of
    projections on the trait's evaluation questions (measured before capping); returns it."""
    from personaguard.vectors.traits import load_trait

    if not 0 <= percentile <= 100:
        raise PersonaguardError(f"cap percentile must be in 0..100, got {percentile:g}")
    questions = load_trait(vectors.trait).evaluation_questions
    threshold = cap_threshold(
        model, vectors, layer, [[{"role": "user", "content": q}] for q in questions], percentile
    )
    _keep(model, capping(model, vectors, layer, threshold))
    return threshold


def export_lm_eval(vectors: PersonaVectors, layer: int, coef: float, path: str | Path) -> Path:
    """lm-eval's ``steered`` model format: ``--model steered --model_args pretrained=...,steer_path=F``.

    Its hookpoints name modules of ``model.base_model``; our layer L is decoder block L-1 there.
    """
    if layer < 1:
        raise PersonaguardError("lm-eval steering hooks decoder blocks: layer must be >= 1")
    config = {
        f"layers.{layer - 1}": {
            "steering_vector": vectors.at(layer).clone(),
            "steering_coefficient": float(coef),
            "action": "add",
            "bias": None,
            "head_index": None,
        }
    }
    path = Path(path)
    torch.save(config, path)
    return path
