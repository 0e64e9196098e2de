"""Any model with a persona applied as a system prompt (spec option ``#persona=NAME``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from personaguard.models.base import Chat, ChoiceScore, LanguageModel


def with_system_prompt(chat: Chat, text: str) -> Chat:
    """Prepend the persona to the chat's system message, or add one."""
    if chat and chat[0]["role"] == "system":
        return [{"role": "system", "content": f"{text}\n\n{chat[0]['content']}"}, *chat[1:]]
    return [{"role": "system", "content": text}, *chat]


class PersonaPrompted:
    """Delegates to the wrapped model; only the prompts change."""

    def __init__(self, inner: LanguageModel, system_prompt: str, spec: str) -> None:
        self.inner = inner
        self.system_prompt = system_prompt
        self.spec = spec

    def __getattr__(self, name: str) -> Any:  # activations, hooks, tokenizer... of the inner model
        return getattr(self.inner, name)

    def _apply(self, prompts: Sequence[Chat]) -> list[Chat]:
        return [with_system_prompt(chat, self.system_prompt) for chat in prompts]

    def score_choices(
        self, prompts: Sequence[Chat], choices: Sequence[Sequence[str]]
    ) -> list[list[ChoiceScore]]:
        return self.inner.score_choices(self._apply(prompts), choices)

    def generate(
        self, prompts: Sequence[Chat], max_new_tokens: int = 128, temperature: float = 0.0, seed: int = 0
    ) -> list[str]:
        return self.inner.generate(self._apply(prompts), max_new_tokens, temperature, seed)
