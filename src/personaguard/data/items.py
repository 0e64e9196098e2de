"""Evaluation items: the Inspect ``Sample`` shape, validated line by line with file:line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from personaguard.data.jsonl import read_objects
from personaguard.errors import PersonaguardError


class Item(BaseModel):
    """One question. ``choices`` is empty for open-ended prompts (e.g. over-refusal controls)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    input: str
    choices: list[str] = []
    target: str | None = None
    incorrect: str | None = None
    rationale: str | None = None
    metadata: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Item:
        if not self.id.strip():
            raise ValueError("id must not be empty")
        if not self.input.strip():
            raise ValueError("input must not be empty")
        for i, choice in enumerate(self.choices):
            if not choice.strip():
                raise ValueError(f"choices[{i}] is empty; every choice needs text")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("choices must be distinct")
        if self.choices and self.target not in self.choices:
            raise ValueError(f"target {self.target!r} is not one of the choices")
        if self.incorrect is not None and self.choices:
            if self.incorrect not in self.choices:
                raise ValueError(f"incorrect {self.incorrect!r} is not one of the choices")
            if self.incorrect == self.target:
                raise ValueError("incorrect must differ from target")
        return self

    @property
    def tier(self) -> str | None:
        return self.metadata.get("tier")


def _field_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(item)"
    return f"field '{loc}': {err['msg']}"


def load_items(path: str | Path) -> list[Item]:
    """Read a JSONL item file; any bad line stops with ``file:line: field ...: what was expected``."""
    items: list[Item] = []
    seen: dict[str, int] = {}
    for lineno, raw in read_objects(path, "item"):
        try:
            item = Item.model_validate(raw)
        except ValidationError as exc:
            raise PersonaguardError(f"{path}:{lineno}: {_field_error(exc)}") from None
        if item.id in seen:
            raise PersonaguardError(
                f"{path}:{lineno}: field 'id': duplicate id {item.id!r} (first on line {seen[item.id]})"
            )
        seen[item.id] = lineno
        items.append(item)
    if not items:
        raise PersonaguardError(f"{path}: no items")
    return items


def stable_subset(items: list[Item], limit: int | None, seed: int = 0) -> list[Item]:
    """A deterministic, topic-mixed subset: order by a hash of the id, keep the first ``limit``."""
    if limit is None or limit >= len(items):
        return items
    key = lambda item: hashlib.sha256(f"{seed}:{item.id}".encode()).hexdigest()  # noqa: E731
    return sorted(items, key=key)[:limit]
