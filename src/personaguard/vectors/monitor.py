"""Where a model sits along a trait: projections of its activations on the unit vector, for the
last prompt token (before it answers) and averaged over its own response."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from personaguard.models.base import Chat, LocalModel
from personaguard.vectors.store import PersonaVectors, check_compatible


def project(acts: torch.Tensor, vectors: PersonaVectors, layer: int) -> list[float]:
    return (acts @ vectors.unit(layer)).tolist()


def projections(
    model: LocalModel,
    vectors: PersonaVectors,
    layer: int,
    questions: Sequence[str],
    max_new_tokens: int = 64,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Per question: ``prompt_last`` and, over the model's own greedy reply, ``response_avg``."""
    check_compatible(vectors, model)
    prompts: list[Chat] = [[{"role": "user", "content": q}] for q in questions]
    replies = model.generate(prompts, max_new_tokens=max_new_tokens, seed=seed)
    answered: list[Chat] = [
        [*p, {"role": "assistant", "content": r}] for p, r in zip(prompts, replies, strict=True) if r.strip()
    ]
    acts = model.activations
    return {
        "prompt_last": project(acts(prompts, [layer], span="prompt_last")[:, 0], vectors, layer),
        "response_avg": project(acts(answered, [layer], span="response_avg")[:, 0], vectors, layer)
        if answered
        else [],
    }


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def shifts(
    base: LocalModel,
    tuned: Iterable[tuple[str, LocalModel]],
    vectors: Sequence[PersonaVectors],
    layer: int,
    n_questions: int = 20,
    max_new_tokens: int = 64,
) -> dict[str, dict[str, dict[str, float]]]:
    """How far each fine-tune moved along each trait: {name: {trait: {span: tuned - base}}}, on
    the trait's evaluation questions. The base is measured once; ``tuned`` may load lazily."""
    from personaguard.vectors.traits import load_trait

    probes = {v.trait: load_trait(v.trait).evaluation_questions[:n_questions] for v in vectors}
    before = {v.trait: projections(base, v, layer, probes[v.trait], max_new_tokens) for v in vectors}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, model in tuned:
        out[name] = {}
        for v in vectors:
            after = projections(model, v, layer, probes[v.trait], max_new_tokens)
            out[name][v.trait] = {s: mean(after[s]) - mean(before[v.trait][s]) for s in after}
    return out
