"""Write the report: Markdown for reading in a terminal or PR, HTML with embedded plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from personaguard.errors import PersonaguardError
from personaguard.report import plots
from personaguard.report.tables import (
    HEADERS,
    PRESSURE_HEADERS,
    condition_rows,
    markdown_table,
    pressure_rows,
)


def load_run(path: str | Path) -> dict[str, Any]:
    results = Path(path) / "results.json"
    if not results.is_file():
        raise PersonaguardError(f"{path}: no results.json (is this a finished audit run?)")
    return json.loads(results.read_text())


def build_report(runs: dict[str, str | Path], out: str | Path) -> tuple[Path, Path]:
    """Report on named runs ({label: run_dir}); returns the Markdown and HTML paths."""
    loaded = {name: load_run(path) for name, path in runs.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    banks = sorted({bank for r in loaded.values() for bank in r["banks"]})
    sections = []
    for name, results in loaded.items():
        sections.append(
            {
                "name": name,
                "model": results["model"],
                "grader": results["grader"],
                "scoring": results["headline_scoring"],
                "rows": [r.cells() for r in condition_rows(results)],
                "pressure": pressure_rows(results),
            }
        )
    md = ["# personaguard audit report", ""]
    for s in sections:
        md += [
            f"## {s['name']}",
            "",
            f"Model `{s['model']}`, grader `{s['grader']}`, headline scoring `{s['scoring']}`.",
            "",
            markdown_table(HEADERS, s["rows"]),
            "",
        ]
        if s["pressure"]:
            md += ["Multi-turn pressure:", "", markdown_table(PRESSURE_HEADERS, s["pressure"]), ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md))
    env = Environment(
        loader=PackageLoader("personaguard", "report/templates"), autoescape=select_autoescape(["html"])
    )
    html = env.get_template("report.html").render(
        sections=sections,
        headers=HEADERS,
        pressure_headers=PRESSURE_HEADERS,
        figures=[(bank, plots.error_bars(loaded, bank)) for bank in banks],
    )
    html_path = out / "report.html"
    html_path.write_text(html)
    return md_path, html_path
