"""Where a prompt ends and a choice begins, in tokens: one rule for every engine that scores choices.

The rule is lm-eval's: encode context + choice whole and cut at the context's token count, after
moving a trailing space of the context onto the choice (BPE tokenizers fuse it with the next word).
Engines that tokenised differently would score different tokens and disagree for no real reason.
"""

from __future__ import annotations

from collections.abc import Callable

Encode = Callable[[str], list[int]]


def split_choice(encode: Encode, context: str, choice: str) -> tuple[list[int], list[int]]:
    """(context tokens, choice tokens) of ``context + choice``, the whole text encoded once."""
    if context and context[-1].isspace():
        choice = context[-1] + choice
        context = context[:-1]
    ctx = encode(context)
    whole = encode(context + choice)
    return ctx, whole[len(ctx) :]
