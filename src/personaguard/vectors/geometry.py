"""The geometry the seed papers report: the assistant axis and how conditions move along it,
and the alignment between two trait vectors (warmth vs harmful-request compliance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from personaguard.models.base import Chat, LocalModel, require_local
from personaguard.vectors.monitor import mean
from personaguard.vectors.store import PersonaVectors

ROLE_PROMPTS = (
    "You are a pirate captain who speaks only in sea shanties.",
    "You are a medieval knight on a quest.",
    "You are a sarcastic teenager who finds everything boring.",
    "You are a famous novelist living in Paris.",
    "You are an ancient oracle who answers in riddles.",
    "You are a cowboy from the old American West.",
)


def assistant_axis(model: LocalModel, questions: Sequence[str]) -> PersonaVectors:
    """Mean last-prompt-token activation as the default assistant minus the mean under role-play
    system prompts, at every layer: the direction of "being the assistant"."""
    require_local(model, "building the assistant axis")
    layers = list(range(model.n_layers + 1))
    default: list[Chat] = [[{"role": "user", "content": q}] for q in questions]
    roles: list[Chat] = [
        [{"role": "system", "content": r}, {"role": "user", "content": q}]
        for r in ROLE_PROMPTS
        for q in questions
    ]
    axis = model.activations(default, layers).mean(0) - model.activations(roles, layers).mean(0)
    return PersonaVectors(
        "assistant_axis", axis, model.spec, "mean_diff", "prompt_last", len(default), model.weights
    )


def drift(
    model: LocalModel,
    axis: PersonaVectors,
    layer: int,
    neutral: Sequence[Chat],
    conditions: Mapping[str, Sequence[Chat]],
) -> dict[str, float]:
    """Mean projection on the axis under each condition minus under neutral (same items):
    negative means the condition pushes the model away from its assistant persona."""
    require_local(model, "measuring drift along an axis")
    unit = axis.unit(layer)
    acts = model.activations
    base = mean((acts(list(neutral), [layer])[:, 0] @ unit).tolist())
    return {
        name: mean((acts(list(chats), [layer])[:, 0] @ unit).tolist()) - base
        for name, chats in conditions.items()
    }


DRIFT_CONDITIONS = ("sad", "happy", "angry", "anxious", "closeness", "deference", "high_stakes")


def condition_drift(
    model: LocalModel, layer: int, conditions: Sequence[str], bank: str = "factual", limit: int = 40
) -> dict[str, float]:
    """Build the assistant axis (on the warmth trait's evaluation questions, which are persona-free
    requests), then measure each audit condition's drift along it on ``limit`` items of ``bank``."""
    from personaguard.audit.conditions import resolve_conditions
    from personaguard.data.catalog import bank_path
    from personaguard.data.items import load_items, stable_subset
    from personaguard.vectors.traits import load_trait

    conds = resolve_conditions(["neutral", *conditions])  # unknown names fail before any compute
    items = stable_subset(load_items(bank_path(bank)), limit)
    axis = assistant_axis(model, load_trait("warmth").evaluation_questions)
    rendered = {c.id: [c.render(i) for i in items if c.applies_to(i)] for c in conds}
    return drift(model, axis, layer, rendered.pop("neutral"), rendered)


def cosine(a: PersonaVectors, b: PersonaVectors, layer: int) -> float:
    return float(torch.nn.functional.cosine_similarity(a.at(layer), b.at(layer), dim=0))
