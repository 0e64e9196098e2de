"""The main job on the bundled model: the quick audit suite, then the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from personaguard.audit.suites import run_suite
from personaguard.report.build import build_report

BUNDLED = "bundled:smollm2-135m"


def run_demo(
    out: str | Path,
    limit: int = 100,
    on_results: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Audit the bundled model with the ``demo`` suite and write the report; returns the HTML path."""
    out = Path(out)
    results = run_suite("demo", BUNDLED, out / "base", limit=limit)
    for task_results in results.values():
        if on_results:
            on_results(task_results)
    _, html = build_report({f"base/{task}": out / "base" / task for task in results}, out / "report")
    return html
