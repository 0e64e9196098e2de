"""What every backend offers, and the chat types prompts are made of.

A prompt is a list of chat messages. If the last message has role "assistant", it is a prefill:
the model continues it (used to score "The answer is <choice>").
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypedDict, runtime_checkable

from personaguard.errors import PersonaguardError

if TYPE_CHECKING:  # torch is heavy; endpoint-only use never needs it
    import torch

    from personaguard.models.hf import HookFn, Span


class Message(TypedDict):
    role: str
    content: str


Chat = list[Message]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChoiceScore:
    """Sum log-probability of a choice's tokens and their count, so callers pick the normalisation."""

    logprob: float
    n_tokens: int

    @property
    def mean_logprob(self) -> float:
        return self.logprob / self.n_tokens


@runtime_checkable
class LanguageModel(Protocol):
    spec: str

    def score_choices(
        self, prompts: Sequence[Chat], choices: Sequence[Sequence[str]]
    ) -> list[list[ChoiceScore]]: ...

    def generate(
        self,
        prompts: Sequence[Chat],
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]: ...


LAYER_CONVENTION = (
    "hidden_states: 0 = embedding output, L = raw output of decoder block L-1 "
    "(for L = n_layers too: before the final norm, unlike transformers' hidden_states[-1])"
)


@runtime_checkable
class LocalModel(LanguageModel, Protocol):
    """A model whose residual stream personaguard can read and edit (``bundled:``/``hf:`` specs,
    with or without ``#persona=``): what persona vectors, steering and the training monitor need.
    Layers follow LAYER_CONVENTION."""

    @property
    def device(self) -> torch.device: ...

    @property
    def n_layers(self) -> int: ...

    @property
    def hidden_size(self) -> int: ...

    @property
    def weights(self) -> str | None:
        """sha256 of the base weights (adapters aside), when known: vectors refuse another model."""
        ...

    def check_layer(self, layer: int) -> None: ...

    def activations(
        self, prompts: Sequence[Chat], layers: Sequence[int], span: Span = "prompt_last"
    ) -> torch.Tensor: ...

    def token_activations(self, prompts: Sequence[Chat], layer: int) -> list[torch.Tensor]: ...

    def hook(self, layer: int, fn: HookFn) -> AbstractContextManager[None]: ...


def require_local(model: LanguageModel, what: str) -> LocalModel:
    """``model`` as a LocalModel, or a one-line error: an endpoint has no activations to read."""
    if not isinstance(model, LocalModel):
        raise PersonaguardError(f"{model.spec}: {what} needs a local model (bundled:... or hf:...)")
    return model


def validate_chat(chat: Chat) -> None:
    if not chat:
        raise PersonaguardError("empty prompt: a chat needs at least one message")
    for i, msg in enumerate(chat):
        if msg.get("role") not in ROLES:
            raise PersonaguardError(f"message {i}: role {msg.get('role')!r} is not one of {ROLES}")
        if not isinstance(msg.get("content"), str):
            raise PersonaguardError(f"message {i}: content must be a string")


def validate_choices(choices: Sequence[Sequence[str]]) -> None:
    for i, row in enumerate(choices):
        if not row:
            raise PersonaguardError(f"prompt {i}: no choices given")
        for j, choice in enumerate(row):
            if not choice.strip():
                raise PersonaguardError(f"prompt {i}: choice {j} is empty; every choice needs text")


def is_prefill(chat: Chat) -> bool:
    return chat[-1]["role"] == "assistant"
