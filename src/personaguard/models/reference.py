"""The slow, plainly correct scorer the engine is checked against: one full forward per (prompt,
choice), no cache, no packing, no batching. Tests and benchmarks use it; so can a user who wants to
verify the engine on their own model."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from personaguard.models.base import Chat
from personaguard.models.hf import HFModel


@torch.inference_mode()
def naive_scores(
    engine: HFModel,
    prompts: Sequence[Chat],
    choices: Sequence[Sequence[str]],
    module: torch.nn.Module | None = None,
) -> list[list[float]]:
    """Sum log-probability of each choice, tokenised as the engine does; ``module`` (default the
    engine's own model) runs the forward, e.g. an unmerged PEFT model in float32."""
    module = module if module is not None else engine.model
    device = next(module.parameters()).device
    out = []
    for chat, row in zip(prompts, choices, strict=True):
        context = engine.render(chat)
        scores = []
        for choice in row:
            ctx, cont = engine.tokenise_choice(context, choice)
            ids = torch.tensor([ctx + cont], device=device)
            logp = torch.log_softmax(module(input_ids=ids).logits.float(), -1)[0]
            scores.append(sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)))
        out.append(scores)
    return out
