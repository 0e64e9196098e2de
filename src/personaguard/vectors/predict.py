"""Prediction before training: a dataset's projection difference.

For each sample, compare the activations over the dataset's response with those over the base
model's own response to the same prompt, projected on the trait vector. A positive mean says that
training on the data pulls the model toward the trait; the per-sample values rank the samples
that pull hardest, which are the ones to inspect or filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from personaguard.models.base import Chat, LocalModel
from personaguard.vectors.monitor import mean, project
from personaguard.vectors.store import PersonaVectors, check_compatible


@dataclass(frozen=True)
class Prediction:
    trait: str
    layer: int
    mean_difference: float
    per_sample: list[float]  # in dataset order

    def ranking(self) -> list[int]:
        """Sample indexes, strongest pull toward the trait first."""
        return sorted(range(len(self.per_sample)), key=lambda i: -self.per_sample[i])


def projection_differences(
    base: LocalModel,
    vectors: Sequence[PersonaVectors],
    layer: int,
    chats: Sequence[Chat],
    max_new_tokens: int = 96,
    seed: int = 0,
) -> list[Prediction]:
    """One prediction per trait; the base model answers each prompt once for all of them."""
    for v in vectors:
        check_compatible(v, base)
    prompts = [chat[:-1] for chat in chats]
    own = base.generate(prompts, max_new_tokens=max_new_tokens, seed=seed)
    # An empty base reply has no tokens to average; a placeholder keeps the row comparable.
    own_chats: list[Chat] = [
        [*p, {"role": "assistant", "content": r if r.strip() else "..."}]
        for p, r in zip(prompts, own, strict=True)
    ]
    acts = base.activations
    data_acts = acts(list(chats), [layer], span="response_avg")[:, 0]
    own_acts = acts(own_chats, [layer], span="response_avg")[:, 0]
    predictions = []
    for v in vectors:
        diffs = [
            d - b for d, b in zip(project(data_acts, v, layer), project(own_acts, v, layer), strict=True)
        ]
        predictions.append(Prediction(v.trait, layer, mean(diffs), diffs))
    return predictions
