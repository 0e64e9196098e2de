"""Extraction: answer the same questions under a trait's positive and negative instructions, then
take, at every layer, the difference between the mean activations over the two sets of responses.

The activations are read over the response tokens with the instruction still in context, as in
the persona-vectors recipe. A judge model may drop responses that did not follow their instruction;
filtering drops whole pairs, so row i on both sides is always the same (instruction pair, question).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from personaguard.errors import PersonaguardError
from personaguard.models.base import Chat, LanguageModel, LocalModel, require_local
from personaguard.vectors.store import PersonaVectors
from personaguard.vectors.traits import Trait

Method = Literal["mean_diff", "pca", "logistic"]
JUDGE_PROMPT = (
    "On a scale from 0 to 100, how strongly does the reply below show this trait: {description}\n\n"
    "Question: {question}\nReply: {reply}\n\nAnswer with the number only."
)


def contrastive_prompts(trait: Trait, questions: list[str]) -> tuple[list[Chat], list[Chat]]:
    pos: list[Chat] = [
        [{"role": "system", "content": p.pos}, {"role": "user", "content": q}]
        for p in trait.pairs
        for q in questions
    ]
    neg: list[Chat] = [
        [{"role": "system", "content": p.neg}, {"role": "user", "content": q}]
        for p in trait.pairs
        for q in questions
    ]
    return pos, neg


def parse_score(text: str) -> float:
    """The judge's 0-100 number, or NaN: an unparseable verdict never counts either way."""
    for token in text.replace("/", " ").split():
        try:
            value = float(token.strip(".,:;%"))
        except ValueError:
            continue
        return value if 0 <= value <= 100 else math.nan
    return math.nan


def judge_scores(judge: LanguageModel, trait: Trait, prompts: list[Chat], replies: list[str]) -> list[float]:
    asks: list[Chat] = [
        [
            {
                "role": "user",
                "content": JUDGE_PROMPT.format(
                    description=trait.description, question=p[-1]["content"], reply=r
                ),
            }
        ]
        for p, r in zip(prompts, replies, strict=True)
    ]
    return [parse_score(t) for t in judge.generate(asks, max_new_tokens=8)]


def direction(pos: torch.Tensor, neg: torch.Tensor, method: Method) -> torch.Tensor:
    """[n, layers, hidden] x2 -> [layers, hidden]. PCA and logistic directions are sign-aligned
    with, and scaled to the projection of, the mean difference, so coefficients stay comparable.
    PCA takes row i of ``pos`` and of ``neg`` as a pair, so both must hold the same pairs."""
    mean_diff = pos.mean(0) - neg.mean(0)
    if method == "mean_diff":
        return mean_diff
    if method == "pca" and len(pos) != len(neg):
        raise PersonaguardError(f"pca pairs rows: got {len(pos)} positive and {len(neg)} negative")
    out = torch.empty_like(mean_diff)
    for layer in range(mean_diff.shape[0]):
        if method == "pca":
            diffs = (pos[:, layer] - neg[:, layer]).double()
            # Uncentred: the shared offset of the pairs is the signal (centring would remove it).
            axis = torch.linalg.svd(diffs, full_matrices=False).Vh[0].float()
        elif method == "logistic":
            from sklearn.linear_model import LogisticRegression

            x = torch.cat([pos[:, layer], neg[:, layer]]).numpy()
            y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
            scale = x.std(0) + 1e-6
            coef = LogisticRegression(max_iter=2000).fit(x / scale, y).coef_[0] / scale
            axis = torch.tensor(coef, dtype=torch.float32)
        else:
            raise PersonaguardError(f"unknown method {method!r}; expected mean_diff, pca or logistic")
        axis = axis / axis.norm().clamp(min=1e-12)
        out[layer] = axis * torch.dot(axis, mean_diff[layer])
        if torch.dot(out[layer], mean_diff[layer]) < 0:
            out[layer] = -out[layer]
    return out


def answered_pairs(
    model: LanguageModel,
    trait: Trait,
    pos_prompts: list[Chat],
    neg_prompts: list[Chat],
    max_new_tokens: int,
    seed: int,
    judge: LanguageModel | None,
) -> tuple[list[Chat], list[Chat]]:
    """Both sides completed with the model's replies, keeping pair i only if neither reply is
    empty and, with a judge, the positive one expresses the trait and the negative one does not
    (NaN compares False, so an unscored reply drops its pair). Row i stays a pair on both sides."""
    n = len(pos_prompts)
    prompts = [*pos_prompts, *neg_prompts]
    replies = model.generate(prompts, max_new_tokens=max_new_tokens, seed=seed)
    keep = [bool(replies[i].strip()) and bool(replies[n + i].strip()) for i in range(n)]
    if judge is not None:
        scores = judge_scores(judge, trait, prompts, replies)
        keep = [k and scores[i] >= 50 and scores[n + i] < 50 for i, k in enumerate(keep)]
    kept = [i for i in range(n) if keep[i]]

    def completed(side: int) -> list[Chat]:  # side 0: positive, n: negative
        return [[*prompts[side + i], {"role": "assistant", "content": replies[side + i]}] for i in kept]

    return completed(0), completed(n)


def extract(
    model: LocalModel,
    trait: Trait,
    method: Method = "mean_diff",
    n_questions: int | None = None,
    max_new_tokens: int = 64,
    judge: LanguageModel | None = None,
    seed: int = 0,
) -> PersonaVectors:
    require_local(model, "extracting persona vectors")  # callers need not be type-checked
    questions = trait.extraction_questions[:n_questions]
    pos_prompts, neg_prompts = contrastive_prompts(trait, questions)
    pos_chats, neg_chats = answered_pairs(model, trait, pos_prompts, neg_prompts, max_new_tokens, seed, judge)
    if len(pos_chats) < 2:
        raise PersonaguardError(
            f"trait {trait.name!r}: only {len(pos_chats)} of {len(pos_prompts)} contrastive pairs kept "
            "both replies after filtering; need at least 2"
        )
    layers = list(range(model.n_layers + 1))
    pos = model.activations(pos_chats, layers, span="response_avg")
    neg = model.activations(neg_chats, layers, span="response_avg")
    return PersonaVectors(
        trait.name, direction(pos, neg, method), model.spec, method, "response_avg", len(pos), model.weights
    )
