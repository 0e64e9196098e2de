"""The main job on the bundled model: audit, then report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from personaguard.audit.runner import AuditConfig, run_audit
from personaguard.report.build import build_report

BUNDLED = "bundled:smollm2-135m"


def run_demo(
    out: str | Path,
    limit: int = 100,
    on_results: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Audit the bundled model on the factual bank and write the report; returns the HTML path."""
    out = Path(out)
    config = AuditConfig(model=BUNDLED, banks=["factual"], limit=limit)
    results = run_audit(config, out / "base")
    if on_results:
        on_results(results)
    _, html = build_report({"base": out / "base"}, out / "report")
    return html
