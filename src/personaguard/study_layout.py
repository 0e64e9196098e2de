"""Where a study keeps each artefact: the one map that the study pipeline writes and the report reads
(a module of its own, below both, so that neither package imports the other back)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personaguard.errors import PersonaguardError

AUDIT_KINDS = ("reliability", "safety")


@dataclass(frozen=True)
class StudyLayout:
    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "study.json"

    def vectors(self, trait: str) -> Path:
        return self.root / "vectors" / f"{trait}.safetensors"

    @property
    def sweep(self) -> Path:
        return self.root / "vectors" / "sweep.json"

    @property
    def shift(self) -> Path:
        return self.root / "vectors" / "shift.json"

    def data(self, persona: str) -> Path:
        return self.root / "data" / f"{persona}.train.jsonl"

    @property
    def heldout(self) -> Path:
        return self.root / "data" / "neutral.heldout.jsonl"

    def adapter(self, variant: str) -> Path:
        return self.root / "train" / variant

    def audit(self, variant: str, kind: str) -> Path:
        return self.root / "audit" / variant / kind

    def warmth(self, variant: str) -> Path:
        return self.root / "warmth" / f"{variant}.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest.is_file():
            raise PersonaguardError(f"{self.root}: no study.json (is this a study directory?)")
        return json.loads(self.manifest.read_text())
