"""What every backend offers, and the chat types prompts are made of.

A prompt is a list of chat messages. If the last message has role "assistant", it is a prefill:
the model continues it (used to score "The answer is <choice>").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict, runtime_checkable

from personaguard.errors import PersonaguardError


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
