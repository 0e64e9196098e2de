"""Any model with a persona applied as a system prompt (spec option ``#persona=NAME``)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from personaguard.models.base import Chat, ChoiceScore, LanguageModel, LocalModel

if TYPE_CHECKING:
    import torch

    from personaguard.models.hf import HookFn, Span


def with_system_prompt(chat: Chat, text: str) -> Chat:
    """Prepend the persona to the chat's system message, or add one."""
    if chat and chat[0]["role"] == "system":
        return [{"role": "system", "content": f"{text}\n\n{chat[0]['content']}"}, *chat[1:]]
    return [{"role": "system", "content": text}, *chat]


class PersonaPrompted:
    """Delegates to the wrapped model; only the prompts change. Every method is spelled out (no
    blanket forwarding), so nothing that reads a prompt can reach the inner model without the
    persona."""

    def __init__(self, inner: LanguageModel, system_prompt: str, spec: str) -> None:
        self.inner = inner
        self.system_prompt = system_prompt
        self.spec = spec

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


class LocalPersonaPrompted(PersonaPrompted):
    """Over a local model: activations are read with the persona in context too, so vectors,
    projections and caps measured on a ``#persona=`` spec describe the prompted model."""

    def __init__(self, inner: LocalModel, system_prompt: str, spec: str) -> None:
        super().__init__(inner, system_prompt, spec)
        self.local = inner

    @property
    def device(self) -> torch.device:
        return self.local.device

    @property
    def n_layers(self) -> int:
        return self.local.n_layers

    @property
    def weights(self) -> str | None:
        return self.inner.weights

    @property
    def hidden_size(self) -> int:
        return self.local.hidden_size

    def check_layer(self, layer: int) -> None:
        self.local.check_layer(layer)

    def activations(
        self, prompts: Sequence[Chat], layers: Sequence[int], span: Span = "prompt_last"
    ) -> torch.Tensor:
        return self.local.activations(self._apply(prompts), layers, span)

    def token_activations(self, prompts: Sequence[Chat], layer: int) -> list[torch.Tensor]:
        return self.local.token_activations(self._apply(prompts), layer)

    def hook(self, layer: int, fn: HookFn) -> AbstractContextManager[None]:
        return self.local.hook(layer, fn)


def persona_prompted(inner: LanguageModel, system_prompt: str, spec: str) -> PersonaPrompted:
    """The wrapper that offers exactly what ``inner`` offers."""
    if isinstance(inner, LocalModel):
        return LocalPersonaPrompted(inner, system_prompt, spec)
    return PersonaPrompted(inner, system_prompt, spec)
