"""Automatic layer and coefficient choice: steer at each candidate, measure how much the replies
express the trait and how coherent they stay, pick the strongest setting that stays coherent.

Both measures come from the unsteered model itself, so no judge or API key is needed:
- expression: mean over the trait's instruction pairs of the per-token log-likelihood ratio of the
  reply under the positive vs the negative instruction (how "in character" the reply reads);
- coherence: the reply's mean per-token log-likelihood as a plain answer to the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass

from personaguard.models.base import Chat, LanguageModel, LocalModel, require_local
from personaguard.vectors.monitor import mean
from personaguard.vectors.steer import steering
from personaguard.vectors.store import PersonaVectors
from personaguard.vectors.traits import Trait


@dataclass(frozen=True)
class SweepPoint:
    layer: int
    coef: float
    expression: float
    coherence: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def expression_and_coherence(
    model: LanguageModel, trait: Trait, questions: Sequence[str], replies: Sequence[str]
) -> tuple[float, float]:
    pairs = [(q, r) for q, r in zip(questions, replies, strict=True) if r.strip()]
    if not pairs:
        return float("nan"), float("nan")
    prompts: list[Chat] = []
    for q, _ in pairs:
        for pair in trait.pairs:
            prompts += [
                [{"role": "system", "content": pair.pos}, {"role": "user", "content": q}],
                [{"role": "system", "content": pair.neg}, {"role": "user", "content": q}],
            ]
        prompts.append([{"role": "user", "content": q}])
    per_q = 2 * len(trait.pairs) + 1
    choices = [[r] for _, r in pairs for _ in range(per_q)]
    scores = [row[0].mean_logprob for row in model.score_choices(prompts, choices)]
    expression, coherence = [], []
    for i in range(len(pairs)):
        block = scores[i * per_q : (i + 1) * per_q]
        expression.append(mean([block[2 * k] - block[2 * k + 1] for k in range(len(trait.pairs))]))
        coherence.append(block[-1])
    return mean(expression), mean(coherence)


def sweep(
    model: LocalModel,
    vectors: PersonaVectors,
    trait: Trait,
    layers: Sequence[int],
    coefs: Sequence[float],
    n_questions: int = 8,
    max_new_tokens: int = 48,
    progress: bool = True,
) -> list[SweepPoint]:
    """Coefficient 0 (the unsteered model) is always measured first, once, as the reference."""
    from rich.progress import track

    require_local(model, "a steering sweep")
    questions = trait.evaluation_questions[:n_questions]
    prompts: list[Chat] = [[{"role": "user", "content": q}] for q in questions]
    points = []
    settings = [(layers[0], 0.0)] + [(layer, c) for layer in layers for c in coefs if c != 0]
    for layer, coef in track(settings, "sweep", disable=not progress, transient=True):
        with steering(model, vectors, layer, coef) if coef else nullcontext():
            replies = model.generate(prompts, max_new_tokens=max_new_tokens)
        points.append(SweepPoint(layer, coef, *expression_and_coherence(model, trait, questions, replies)))
    return points


def choose(points: Sequence[SweepPoint], max_coherence_drop: float = 0.5) -> SweepPoint:
    """The most trait-expressive positive setting whose coherence is within ``max_coherence_drop``
    nats/token of the unsteered reference; the reference itself if none qualifies."""
    reference = next(p for p in points if p.coef == 0)
    fine = [p for p in points if p.coef > 0 and p.coherence >= reference.coherence - max_coherence_drop]
    return max(fine, key=lambda p: p.expression, default=reference)
