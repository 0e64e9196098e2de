"""Interpersonal conditions: data files of user-message templates wrapped around a question.

Each condition has several paraphrases; an item always gets the same one (chosen by a hash of
item and condition ids), so no single template drives a result and re-runs are identical.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from personaguard.data.items import Item
from personaguard.errors import PersonaguardError
from personaguard.models.base import Chat
from personaguard.paths import builtin_data

PLACEHOLDERS = {"question", "incorrect", "correct"}
_FIELD = re.compile(r"\{(\w+)\}")


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    family: str = "other"
    description: str = ""
    system: str | None = None
    templates: list[str]

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

    @property
    def placeholders(self) -> set[str]:
        return {name for t in self.templates for name in _FIELD.findall(t)}

    def applies_to(self, item: Item) -> bool:
        """Belief conditions need an item with a known wrong answer."""
        return "incorrect" not in self.placeholders or item.incorrect is not None

    def template_index(self, item: Item) -> int:
        digest = hashlib.sha256(f"{item.id}|{self.id}".encode()).digest()
        return int.from_bytes(digest[:4], "little") % len(self.templates)

    def render(self, item: Item) -> Chat:
        template = self.templates[self.template_index(item)]
        values = {"question": item.input, "incorrect": item.incorrect or "", "correct": item.target or ""}
        text = _FIELD.sub(lambda m: values[m.group(1)], template)
        chat: Chat = [{"role": "system", "content": self.system}] if self.system else []
        chat.append({"role": "user", "content": text})
        return chat


def load_conditions(path: str | Path) -> dict[str, Condition]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PersonaguardError(f"condition file {path} not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PersonaguardError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("conditions"), list):
        raise PersonaguardError(f"{path}: expected a top-level 'conditions:' list")
    conditions: dict[str, Condition] = {}
    for i, entry in enumerate(raw["conditions"]):
        try:
            cond = Condition.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise PersonaguardError(f"{path}: conditions[{i}] field '{loc}': {err['msg']}") from None
        if cond.id in conditions:
            raise PersonaguardError(f"{path}: conditions[{i}]: duplicate condition id {cond.id!r}")
        conditions[cond.id] = cond
    return conditions


def builtin_conditions() -> dict[str, Condition]:
    return load_conditions(builtin_data() / "conditions" / "reliability.yaml")


def resolve_conditions(names: list[str], extra_file: str | Path | None = None) -> list[Condition]:
    """Built-in conditions plus any from the user's own YAML file, picked by id."""
    available = builtin_conditions()
    if extra_file:
        available.update(load_conditions(extra_file))
    missing = [n for n in names if n not in available]
    if missing:
        raise PersonaguardError(f"unknown condition(s) {missing}; available: {sorted(available)}")
    return [available[n] for n in names]
