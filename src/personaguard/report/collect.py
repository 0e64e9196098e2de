"""Gather what a report shows from disk: a study directory (``study.json``), a suite run
(``suite.json``) or a single audit run (``results.json``). Everything downstream is pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personaguard.audit.compare import Errors, Run, check_comparable, load_run
from personaguard.errors import PersonaguardError
from personaguard.study_layout import AUDIT_KINDS, StudyLayout


@dataclass
class Variant:
    name: str
    spec: str
    kind: str  # base | adapter | steered | run
    runs: dict[str, Run] = field(default_factory=dict)  # task -> audit run
    warmth: dict[str, Any] | None = None
    train_log: list[dict[str, Any]] = field(default_factory=list)
    train_summary: dict[str, Any] | None = None

    def errors(self, task: str) -> Errors:
        run = self.runs.get(task)
        return run.errors if run else {}

    def results(self, task: str) -> dict[str, Any] | None:
        run = self.runs.get(task)
        return run.results if run else None


@dataclass
class ReportData:
    sources: list[str]
    variants: list[Variant]
    study: dict[str, Any] | None = None
    sweep: dict[str, Any] | None = None
    shift: dict[str, Any] | None = None

    @property
    def base(self) -> Variant:
        return next((v for v in self.variants if v.kind == "base"), self.variants[0])


def _add_task(variant: Variant, task: str, run: Path) -> None:
    variant.runs[task] = load_run(run)


def _add_suite(variant: Variant, suite_dir: Path) -> None:
    suite = json.loads((suite_dir / "suite.json").read_text())
    for task in suite["tasks"]:
        if (suite_dir / task / "results.json").is_file():  # tasks of an interrupted suite are skipped
            _add_task(variant, task, suite_dir / task)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )


def _from_study(root: Path) -> ReportData:
    layout = StudyLayout(root)
    study = layout.read_manifest()
    variants = []
    for name, info in study.get("variants", {}).items():
        v = Variant(name, info["spec"], info["kind"])
        for kind in AUDIT_KINDS:
            if (layout.audit(name, kind) / "suite.json").is_file():
                _add_suite(v, layout.audit(name, kind))
        if layout.warmth(name).is_file():
            v.warmth = json.loads(layout.warmth(name).read_text())
        v.train_log = _read_jsonl(layout.adapter(name) / "train_log.jsonl")
        summary = layout.adapter(name) / "train_summary.json"
        v.train_summary = json.loads(summary.read_text()) if summary.is_file() else None
        variants.append(v)
    read = lambda p: json.loads(p.read_text()) if p.is_file() else None  # noqa: E731
    return _checked(ReportData([str(root)], variants, study, read(layout.sweep), read(layout.shift)))


def _checked(data: ReportData) -> ReportData:
    """Every variant is paired with the base task by task, so each pair must be comparable."""
    for v in data.variants:
        if v is not data.base:
            for task in v.runs.keys() & data.base.runs.keys():
                check_comparable(data.base.runs[task], v.runs[task])
    return data


def collect(runs: Mapping[str, str | Path] | Sequence[str | Path]) -> ReportData:
    """One study directory, or any number of audit/suite run directories (each one variant; the
    first is the base the others are compared with), optionally named {label: dir}."""
    labels = list(runs) if isinstance(runs, Mapping) else [None] * len(runs)
    paths = [Path(p) for p in (runs.values() if isinstance(runs, Mapping) else runs)]
    if not paths:
        raise PersonaguardError("report needs at least one run or study directory")
    studies = [p for p in paths if (p / "study.json").is_file()]
    if studies:
        if len(paths) > 1:
            raise PersonaguardError("give one study directory, or several audit runs, not a mix")
        return _from_study(studies[0])
    variants = []
    for i, (label, path) in enumerate(zip(labels, paths, strict=True)):
        v = Variant(label or path.name, "", "base" if i == 0 else "run")
        if (path / "suite.json").is_file():
            _add_suite(v, path)
            v.spec = json.loads((path / "suite.json").read_text())["model"]
        elif (path / "results.json").is_file():
            _add_task(v, path.name, path)
            v.spec = v.runs[path.name].results["model"]
        else:
            raise PersonaguardError(
                f"{path}: not a study, suite or audit run (no study.json, suite.json or results.json)"
            )
        variants.append(v)
    names = [v.name for v in variants]
    if len(set(names)) != len(names):  # e.g. runs/a/contextual and runs/b/contextual
        for v, label, p in zip(variants, labels, paths, strict=True):
            v.name = label or f"{p.parent.name}/{p.name}"
    return _checked(ReportData([str(p) for p in paths], variants))
