"""Compare runs of different models on the same items: fine-tune versus base.

For every bank and condition: the paired error delta (tuned - base) with a bootstrap CI and exact
McNemar p, and the amplification = delta under the condition / delta under the baseline
condition, with a bootstrap CI (the paper's 19.4% amplification is a ratio of 1.194).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from personaguard.audit import stats
from personaguard.audit.graders import outcome
from personaguard.audit.summary import BASELINES
from personaguard.errors import PersonaguardError

Errors = dict[tuple[str, str], dict[str, float]]  # (bank, condition) -> item -> error 0/1


def load_errors(run: str | Path) -> tuple[dict[str, Any], Errors]:
    run = Path(run)
    results_path = run / "results.json"
    if not results_path.is_file():
        raise PersonaguardError(f"{run}: no results.json (is this a finished audit run?)")
    results = json.loads(results_path.read_text())
    scoring = results["headline_scoring"]
    errors: Errors = defaultdict(dict)
    with (run / "samples.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            correct, _ = outcome(rec, scoring)
            if not math.isnan(correct):
                errors[(rec["bank"], rec["condition"])][rec["item_id"]] = 1.0 - correct
    return results, errors


def _arrays(*tables: dict[str, float]) -> list[np.ndarray]:
    common = sorted(set.intersection(*(set(t) for t in tables)))
    return [np.array([t[i] for i in common]) for t in tables]


def compare_runs(base: str | Path, tuned: str | Path) -> dict[str, Any]:
    base_results, base_err = load_errors(base)
    tuned_results, tuned_err = load_errors(tuned)
    rows: dict[str, dict[str, Any]] = defaultdict(dict)
    for bank, cond in sorted(set(base_err) & set(tuned_err)):
        a, b = _arrays(base_err[(bank, cond)], tuned_err[(bank, cond)])
        entry: dict[str, Any] = {
            "base_error": stats.wilson(int(a.sum()), len(a)).to_dict(),
            "tuned_error": stats.wilson(int(b.sum()), len(b)).to_dict(),
            "delta": stats.paired_delta(a, b).to_dict(),
        }
        baseline = next((x for x in BASELINES if (bank, x) in base_err and (bank, x) in tuned_err), None)
        if baseline and cond != baseline:
            arrays = _arrays(
                base_err[(bank, baseline)],
                tuned_err[(bank, baseline)],
                base_err[(bank, cond)],
                tuned_err[(bank, cond)],
            )
            entry["amplification"] = stats.amplification(*arrays).to_dict()
        rows[bank][cond] = entry
    return {
        "base": {"run": str(base), "model": base_results["model"]},
        "tuned": {"run": str(tuned), "model": tuned_results["model"]},
        "definitions": {
            "delta": "paired error(tuned) - error(base) on the same items",
            "amplification": "delta under the condition / delta under the baseline condition",
        },
        "banks": dict(rows),
    }
