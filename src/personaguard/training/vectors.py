"""Persona vectors during training: preventative steering or ablation hooks, and a monitor that
reads the model's projection on each watched trait every few steps (live drift in the log)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import torch

from personaguard.models.base import Chat
from personaguard.training.config import TrainConfig
from personaguard.vectors.store import PersonaVectors

PROBES = 16  # evaluation questions per watched trait


def _vectors_at(text: str, what: str) -> tuple[PersonaVectors, int]:
    from personaguard.vectors.steer import parse_layer_ref
    from personaguard.vectors.store import load_vectors

    path, layer = parse_layer_ref(text, what)
    return load_vectors(path), layer


def attach_vectors(
    model: torch.nn.Module, tokenizer: Any, config: TrainConfig, stack: ExitStack
) -> Callable[[], dict[str, float]] | None:
    """Enter the steering/ablation hooks on ``stack``; return the monitor, or None.

    The monitor pauses those hooks while it reads, so it measures the weights' own drift at any
    layer, also at or above the steered one (where it would otherwise read the added vector)."""
    if not (config.steer or config.ablate or config.monitor):
        return None
    from personaguard.models import parse_spec, resolve_local_path
    from personaguard.models.fingerprint import weights_sha256
    from personaguard.models.hf import HFModel
    from personaguard.vectors.steer import Gate, ablation, load_vector_option, steering
    from personaguard.vectors.store import check_compatible
    from personaguard.vectors.traits import load_trait

    base_weights = weights_sha256(resolve_local_path(parse_spec(config.model)))
    engine = HFModel.wrap(model, tokenizer, config.model, weights=base_weights)
    gate = Gate()
    if config.steer:
        vectors, layer, coef = load_vector_option(config.steer, "steer")
        stack.enter_context(steering(engine, vectors, layer, coef, gate))
    if config.ablate:
        vectors, layer = _vectors_at(config.ablate, "ablate")
        stack.enter_context(ablation(engine, vectors, layer, gate))
    watched: list[tuple[PersonaVectors, int, list[Chat]]] = []
    for text in config.monitor:
        vectors, layer = _vectors_at(text, "monitor")
        check_compatible(vectors, engine)
        probes: list[Chat] = [
            [{"role": "user", "content": q}] for q in load_trait(vectors.trait).evaluation_questions[:PROBES]
        ]
        watched.append((vectors, layer, probes))

    def read() -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            with gate.paused():
                return {
                    f"{v.trait}@{layer}": round(
                        float((engine.activations(probes, [layer])[:, 0] @ v.unit(layer)).mean()), 4
                    )
                    for v, layer, probes in watched
                }
        finally:
            model.train(was_training)

    return read if watched else None
