"""Interpersonal conditions: data files of user-message templates wrapped around a question.

Each condition has several paraphrases; an item always gets the same one (chosen by a hash of
item and condition ids), so no single template drives a result and re-runs are identical.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from personaguard.data.items import Item
from personaguard.data.yamlfile import read_yaml, validated
from personaguard.errors import PersonaguardError
from personaguard.models.base import Chat
from personaguard.paths import builtin_data

PLACEHOLDERS = {"question", "incorrect", "correct", "kind"}  # kind: the item's metadata kind (poem, ...)

# What a condition is for, which decides how the statistics use it:
#   baseline         the plain question every other condition is compared with (one per audit)
#   context          an interpersonal framing that names no answer (sad user, high stakes, ...)
#   wrong_belief     the user endorses a wrong answer: adoption of it is sycophancy
#   right_belief     the user endorses the right answer
#   priming_control  the wrong answer is mentioned but doubted: adoption here is lexical priming
#   pushback         multi-turn: the user pushes back after each answer (flip rates)
#   framing          a jailbreak framing wrapped around a harmful request
Role = Literal[
    "baseline", "context", "wrong_belief", "right_belief", "priming_control", "pushback", "framing"
]
ADOPTION_ROLES = ("wrong_belief", "priming_control")  # conditions whose wrong answer the prompt names
_FIELD = re.compile(r"\{(\w+)\}")


def _fill(template: str, item: Item) -> str:
    """Substitute placeholders without str.format, so braces in item text stay literal."""
    values = {
        "question": item.input,
        "incorrect": item.incorrect or "",
        "correct": item.target or "",
        "kind": str(item.metadata.get("kind", "text")),
    }
    return _FIELD.sub(lambda m: values[m.group(1)], template)


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    role: Role = "context"
    family: str = "other"
    description: str = ""
    system: str | None = None
    templates: list[str]
    # Multi-turn pressure: after the model answers, each entry is one more user turn (one of its
    # paraphrases, chosen per item), and the model answers again.
    followups: list[list[str]] = []

    @field_validator("templates")
    @classmethod
    def _templates_ok(cls, templates: list[str]) -> list[str]:
        if not templates:
            raise ValueError("at least one template is required")
        for i, template in enumerate(templates):
            names = _FIELD.findall(template)
            unknown = set(names) - PLACEHOLDERS
            if unknown:
                raise ValueError(
                    f"templates[{i}] uses unknown placeholder(s) {sorted(unknown)}; "
                    f"allowed: {sorted(PLACEHOLDERS)}"
                )
            if names.count("question") != 1:
                raise ValueError(f"templates[{i}] must contain {{question}} exactly once")
        return templates

    @field_validator("followups")
    @classmethod
    def _followups_ok(cls, followups: list[list[str]]) -> list[list[str]]:
        for k, turn in enumerate(followups):
            if not turn:
                raise ValueError(f"followups[{k}] needs at least one paraphrase")
            for i, template in enumerate(turn):
                unknown = set(_FIELD.findall(template)) - {"incorrect", "correct"}
                if unknown:
                    raise ValueError(f"followups[{k}][{i}] uses unknown placeholder(s) {sorted(unknown)}")
        return followups

    @model_validator(mode="after")
    def _role_fits(self) -> Condition:
        if self.role == "pushback" and not self.followups:
            raise ValueError("role 'pushback' needs followups (the user's turns after each answer)")
        if self.role in ADOPTION_ROLES and "incorrect" not in self.placeholders:
            raise ValueError(f"role {self.role!r} needs the {{incorrect}} placeholder in its templates")
        return self

    @property
    def placeholders(self) -> set[str]:
        texts = [*self.templates, *(t for turn in self.followups for t in turn)]
        return {name for t in texts for name in _FIELD.findall(t)}

    def _pick(self, item: Item, options: list[str], salt: str) -> str:
        digest = hashlib.sha256(f"{item.id}|{self.id}|{salt}".encode()).digest()
        return options[int.from_bytes(digest[:4], "little") % len(options)]

    def followup(self, item: Item, turn: int) -> str:
        """The user's turn-th follow-up message for this item."""
        return _fill(self._pick(item, self.followups[turn], f"followup{turn}"), item)

    def applies_to(self, item: Item) -> bool:
        """Belief conditions need an item with a known wrong answer."""
        return "incorrect" not in self.placeholders or item.incorrect is not None

    def template_index(self, item: Item) -> int:
        digest = hashlib.sha256(f"{item.id}|{self.id}".encode()).digest()
        return int.from_bytes(digest[:4], "little") % len(self.templates)

    def render(self, item: Item) -> Chat:
        text = _fill(self.templates[self.template_index(item)], item)
        chat: Chat = [{"role": "system", "content": self.system}] if self.system else []
        chat.append({"role": "user", "content": text})
        return chat


def load_conditions(path: str | Path) -> dict[str, Condition]:
    path = Path(path)
    raw = read_yaml(path, "condition")
    if not isinstance(raw, dict) or not isinstance(raw.get("conditions"), list):
        raise PersonaguardError(f"{path}: expected a top-level 'conditions:' list")
    conditions: dict[str, Condition] = {}
    for i, entry in enumerate(raw["conditions"]):
        cond = validated(Condition, entry, f"{path}: conditions[{i}] ")
        if cond.id in conditions:
            raise PersonaguardError(f"{path}: conditions[{i}]: duplicate condition id {cond.id!r}")
        conditions[cond.id] = cond
    return conditions


def builtin_conditions() -> dict[str, Condition]:
    """Every built-in condition file, merged; an id defined twice must be defined identically."""
    merged: dict[str, Condition] = {}
    paths = sorted(
        (builtin_data() / "conditions").glob("*.yaml"), key=lambda p: (p.stem != "reliability", p.stem)
    )
    for path in paths:
        for cid, cond in load_conditions(path).items():
            if cid in merged and merged[cid].templates != cond.templates:
                raise PersonaguardError(f"{path}: condition {cid!r} conflicts with another built-in file")
            merged.setdefault(cid, cond)
    return merged


def resolve_conditions(names: list[str], extra_file: str | Path | None = None) -> list[Condition]:
    """Built-in conditions plus any from the user's own YAML file, picked by id."""
    available = builtin_conditions()
    if extra_file:
        available.update(load_conditions(extra_file))
    missing = [n for n in names if n not in available]
    if missing:
        raise PersonaguardError(f"unknown condition(s) {missing}; available: {sorted(available)}")
    return [available[n] for n in names]
