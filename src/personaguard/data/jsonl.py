"""JSONL reading with errors that name the file and line: the one place for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from personaguard.errors import PersonaguardError


def read_objects(path: str | Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; ``what`` names the file in errors."""
    path = Path(path)
    if not path.is_file():
        raise PersonaguardError(f"{what} file {path} not found")
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PersonaguardError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise PersonaguardError(f"{path}:{lineno}: expected a JSON object per line")
            yield lineno, row
