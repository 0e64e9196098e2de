"""Interventions along a persona vector: add ``coef * v`` (steering), cap the projection on ``v``
at a threshold (capping) or remove it (ablation). All run as forward hooks on one decoder block, at
every position, so they apply alike to ``generate``, ``score_choices`` and activations, and so to
a whole audit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from personaguard.errors import PersonaguardError
from personaguard.models.base import Chat, LocalModel
from personaguard.models.spec import parse_steer
from personaguard.vectors.store import PersonaVectors, check_compatible, load_vectors

if TYPE_CHECKING:
    from personaguard.models.hf import HookFn

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


class Gate:
    """An on/off switch the hooks consult on every forward pass, so an intervention can pause
    without being detached: the training monitor reads the weights' own drift this way, not the
    vector that preventative steering adds."""

    def __init__(self) -> None:
        self.open = True

    def __call__(self, edit: Edit) -> HookFn:
        def gated(hidden: torch.Tensor) -> torch.Tensor | None:
            return edit(hidden) if self.open else None

        return gated

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.open = False
        try:
            yield
        finally:
            self.open = True


@contextmanager
def steering(
    model: LocalModel, vectors: PersonaVectors, layer: int, coef: float, gate: Gate | None = None
) -> Iterator[None]:
    check_compatible(vectors, model)
    with model.hook(layer, (gate or Gate())(add_hook(vectors.at(layer).to(model.device), coef))):
        yield


@contextmanager
def capping(model: LocalModel, vectors: PersonaVectors, layer: int, threshold: float) -> Iterator[None]:
    check_compatible(vectors, model)
    with model.hook(layer, cap_hook(vectors.unit(layer).to(model.device), threshold)):
        yield


@contextmanager
def ablation(
    model: LocalModel, vectors: PersonaVectors, layer: int, gate: Gate | None = None
) -> Iterator[None]:
    check_compatible(vectors, model)
    with model.hook(layer, (gate or Gate())(ablate_hook(vectors.unit(layer).to(model.device)))):
        yield


def cap_threshold(
    model: LocalModel, vectors: PersonaVectors, layer: int, prompts: Sequence[Chat], percentile: float
) -> float:
    """The ``percentile`` of the projections at every token of ``prompts``: the cap acts at every
    position, so its threshold comes from the same positions, and it caps ``100 - percentile`` %
    of them (on these prompts)."""
    check_compatible(vectors, model)
    unit = vectors.unit(layer)
    projections = torch.cat([acts @ unit for acts in model.token_activations(prompts, layer)])
    return float(np.percentile(projections.numpy(), percentile))


def load_vector_option(text: str, what: str) -> tuple[PersonaVectors, int, float]:
    path, layer, value = parse_steer(text, what)
    return load_vectors(path), layer, value


def parse_layer_ref(text: str, what: str) -> tuple[Path, int]:
    """``PATH:LAYER`` (``train`` options ``ablate`` and ``monitor``)."""
    path, sep, layer = text.rpartition(":")
    if not sep or not layer.isdigit():
        raise PersonaguardError(f"{what} {text!r}: expected VECTORS.safetensors:LAYER")
    return Path(path), int(layer)


def _keep(model: LocalModel, context: AbstractContextManager[None]) -> None:
    """Hold a hook for the loaded model's whole life (spec options): the stack lives on the model."""
    vars(model).setdefault("_interventions", ExitStack()).enter_context(context)


def apply_spec_steering(model: LocalModel, vectors: PersonaVectors, layer: int, coef: float) -> None:
    """Spec option ``#steer=PATH:LAYER:COEF``."""
    _keep(model, steering(model, vectors, layer, coef))


def apply_spec_capping(model: LocalModel, vectors: PersonaVectors, layer: int, percentile: float) -> float:
    """Spec option ``#cap=PATH:LAYER:PERCENTILE``: cap at the model's own ``percentile`` of
    per-token projections on the trait's evaluation questions (measured before capping); returns it."""
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
