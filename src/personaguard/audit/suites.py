"""Suites: named lists of audit tasks (banks x conditions x grader), as data files.

A suite run is a directory with one ordinary, resumable run per task plus ``suite.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from personaguard.audit.runner import AuditConfig, run_audit
from personaguard.audit.runstore import atomic_write
from personaguard.data.yamlfile import read_yaml, validated
from personaguard.models import LanguageModel
from personaguard.paths import builtin_or_path


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    banks: list[str]
    conditions: list[str]
    grader: str = "loglik"


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    tasks: list[Task]


def suite_path(name: str) -> Path:
    return builtin_or_path("suites", name, "suite")


def load_suite(name: str) -> Suite:
    path = suite_path(name)
    return validated(Suite, read_yaml(path, "suite"), f"{path}: ")


def task_configs(suite: Suite, model: str, **overrides: Any) -> dict[str, AuditConfig]:
    """The AuditConfig of every task; ``overrides`` (limit, judge, seed, ...) apply to all, except
    ``safety_grader``, which applies to the refusal-grader tasks only."""
    extra = {k: v for k, v in overrides.items() if v is not None}
    configs = {}
    for t in suite.tasks:
        own = extra if t.grader == "refusal" else {k: v for k, v in extra.items() if k != "safety_grader"}
        configs[t.name] = AuditConfig(
            model=model, banks=t.banks, conditions=t.conditions, grader=t.grader, **own
        )
    return configs


def run_suite(
    name: str,
    model: str,
    out: str | Path,
    loaded: LanguageModel | None = None,
    progress: bool = True,
    **overrides: Any,
) -> dict[str, dict[str, Any]]:
    """Run every task of a suite into ``out/<task>``; re-running resumes each task."""
    from personaguard.models import load_model

    suite = load_suite(name)
    configs = task_configs(suite, model, **overrides)
    out = Path(out)
    results: dict[str, dict[str, Any]] = {}
    for task, config in configs.items():
        loaded = loaded or load_model(model)
        results[task] = run_audit(config, out / task, model=loaded, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"suite": name, "model": model, "tasks": {t: str(out / t) for t in configs}}
    atomic_write(out / "suite.json", json.dumps(summary, indent=2) + "\n")
    return results
