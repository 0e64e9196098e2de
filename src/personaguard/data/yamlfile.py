"""YAML reading with errors that name the file and line: the one place for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from personaguard.errors import PersonaguardError


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed document; ``what`` names the file in errors."""
    path = Path(path)
    if not path.is_file():
        raise PersonaguardError(f"{what} file {path} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PersonaguardError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None


M = TypeVar("M", bound=BaseModel)


def validated(cls: type[M], data: Any, where: str) -> M:
    """``cls`` built from ``data``, or an error naming ``where`` (file, entry) and the bad field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise PersonaguardError(f"{where}field '{loc}': {err['msg']}") from None
