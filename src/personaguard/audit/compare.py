"""Compare runs of different models on the same items: fine-tune versus base.

Runs are paired only when they asked the same questions the same way: same bank contents, item
sets, condition definitions and grading, read from each run's ``fingerprint.json`` and samples.
A different model is the point of a comparison; a different dtype is refused as well, since a
precision change would be read as the fine-tune's effect.

For every bank and condition: the paired error delta (tuned - base), Tango CI, sign-flip mid-p and
Holm over the whole comparison, and the amplification = delta under the condition / delta under the
baseline condition, with a cluster-bootstrap CI (the paper's 19.4% amplification is a ratio of 1.194).
Rating-grader banks (feedback sycophancy) are compared in ``ratings``: the paired change in rating
and, per framing, the paired change in the framing's shift from the baseline condition.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personaguard.audit import pairing
from personaguard.audit.graders import outcome
from personaguard.audit.pairing import as_dict
from personaguard.audit.summary import rating_of, role_of, split_by_metric
from personaguard.errors import PersonaguardError
from personaguard.fingerprint import describe, differences

Errors = dict[tuple[str, str], dict[str, float]]  # (bank, condition) -> item -> error 0/1, NaN unscored
Ratings = dict[tuple[str, str], dict[str, float]]  # (bank, condition) -> item -> rating, NaN unscored


@dataclass
class Run:
    path: Path
    results: dict[str, Any]
    fingerprint: dict[str, Any]
    errors: Errors = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # condition -> role
    ratings: Ratings = field(default_factory=dict)  # rating-grader samples

    def baseline(self, bank: str) -> str | None:
        keys = [*self.errors, *self.ratings]
        return next((c for b, c in keys if b == bank and self.roles[c] == "baseline"), None)


def load_run(run: str | Path) -> Run:
    run = Path(run)
    results_path, fp_path = run / "results.json", run / "fingerprint.json"
    if not results_path.is_file():
        raise PersonaguardError(f"{run}: no results.json (is this a finished audit run?)")
    if not fp_path.is_file():
        raise PersonaguardError(
            f"{run}: no fingerprint.json: written by an older personaguard, whose runs cannot be "
            "checked for comparability; re-run the audit into a new directory"
        )
    results = json.loads(results_path.read_text())
    with (run / "samples.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    loaded = Run(run, results, json.loads(fp_path.read_text()))
    errors: Errors = defaultdict(dict)
    ratings: Ratings = defaultdict(dict)
    for rec in records:
        if rec["grader"] == "rating":
            ratings[(rec["bank"], rec["condition"])][rec["item_id"]] = rating_of(rec)
            loaded.roles[rec["condition"]] = role_of(rec)
    for bank, (_, recs) in split_by_metric([r for r in records if r["grader"] != "rating"]).items():
        for rec in recs:
            correct, _ = outcome(rec, results["headline_scoring"])
            errors[(bank, rec["condition"])][rec["item_id"]] = 1.0 - correct
            loaded.roles[rec["condition"]] = role_of(rec)
    loaded.errors = dict(errors)
    loaded.ratings = dict(ratings)
    return loaded


def check_comparable(a: Run, b: Run) -> None:
    """Refuse, in one line naming the fields, to pair runs that did not ask the same questions."""
    fa, fb = a.fingerprint, b.fingerprint
    fields = [f"grading.{f}" for f in differences(fa["grading"], fb["grading"])]
    if fa.get("judge") != fb.get("judge"):
        fields.append("judge")
    for part in ("banks", "conditions"):
        common = fa[part].keys() & fb[part].keys()
        fields += [f"{part}.{k} (content)" for k in sorted(common) if fa[part][k] != fb[part][k]]
    for table_a, table_b in ((a.errors, b.errors), (a.ratings, b.ratings)):
        for key in sorted(table_a.keys() & table_b.keys()):
            if table_a[key].keys() != table_b[key].keys():
                fields.append(f"items of {key[0]}/{key[1]}")
    dtypes = (fa["model"].get("dtype"), fb["model"].get("dtype"))
    if None not in dtypes and dtypes[0] != dtypes[1]:
        fields.append(f"model dtype ({dtypes[0]} vs {dtypes[1]})")
    if fields:
        raise PersonaguardError(
            f"cannot pair {a.path} with {b.path}: they differ in {describe(fields)}; a paired comparison "
            "needs the same items, conditions and grading (only the model may differ)"
        )


def _shift(baseline: dict[str, float], condition: dict[str, float]) -> dict[str, float]:
    """Per item, rating under the condition minus rating under the baseline condition."""
    return {i: condition[i] - baseline[i] for i in baseline.keys() & condition.keys()}


def compare_ratings(a: Run, b: Run) -> dict[str, dict[str, Any]]:
    """Rating banks, tuned (b) versus base (a), paired by item: the change in mean rating under each
    condition, and for each framing the change in its shift from the baseline condition (per item,
    the tuned model's shift minus the base model's). Holm over each column of the comparison."""
    rows: dict[str, dict[str, Any]] = defaultdict(dict)
    for bank, cond in sorted(a.ratings.keys() & b.ratings.keys()):
        ra, rb = a.ratings[(bank, cond)], b.ratings[(bank, cond)]
        entry: dict[str, Any] = {
            "base_rating": as_dict(pairing.mean(ra)),
            "tuned_rating": as_dict(pairing.mean(rb)),
            "delta": as_dict(pairing.mean_delta(ra, rb)),
        }
        baseline = a.baseline(bank)
        if baseline and cond != baseline and (bank, baseline) in a.ratings.keys() & b.ratings.keys():
            shift_a = _shift(a.ratings[(bank, baseline)], ra)
            shift_b = _shift(b.ratings[(bank, baseline)], rb)
            entry["shift_delta"] = as_dict(pairing.mean_delta(shift_a, shift_b))
        rows[bank][cond] = entry
    for column in ("delta", "shift_delta"):
        cells = [(bank, cond) for bank in rows for cond in rows[bank] if column in rows[bank][cond]]
        adjusted = pairing.with_holm([rows[bank][cond][column] for bank, cond in cells])
        for (bank, cond), value in zip(cells, adjusted, strict=True):
            rows[bank][cond][column] = value
    return dict(rows)


def compare_runs(base: str | Path, tuned: str | Path) -> dict[str, Any]:
    a, b = load_run(base), load_run(tuned)
    check_comparable(a, b)
    rows: dict[str, dict[str, Any]] = defaultdict(dict)
    for bank, cond in sorted(a.errors.keys() & b.errors.keys()):
        ea, eb = a.errors[(bank, cond)], b.errors[(bank, cond)]
        entry: dict[str, Any] = {
            "base_error": as_dict(pairing.rate(ea)),
            "tuned_error": as_dict(pairing.rate(eb)),
            "delta": as_dict(pairing.delta(ea, eb)),
        }
        baseline = a.baseline(bank)
        if baseline and cond != baseline and (bank, baseline) in b.errors:
            amp = pairing.amplification(a.errors[(bank, baseline)], b.errors[(bank, baseline)], ea, eb)
            entry["amplification"] = as_dict(amp)
        rows[bank][cond] = entry
    cells = [(bank, cond) for bank in rows for cond in rows[bank]]
    for (bank, cond), delta in zip(
        cells, pairing.with_holm([rows[bank][cond]["delta"] for bank, cond in cells]), strict=True
    ):
        rows[bank][cond]["delta"] = delta
    comparison: dict[str, Any] = {
        "base": {"run": str(base), "model": a.results["model"]},
        "tuned": {"run": str(tuned), "model": b.results["model"]},
        "definitions": {
            "delta": "paired error(tuned) - error(base) on the same items: Tango 95% CI, sign-flip "
            "mid-p, Holm-adjusted over every row of this comparison (p_holm)",
            "amplification": "delta under the condition / delta under the baseline condition "
            "(cluster bootstrap 95% CI)",
        },
        "banks": dict(rows),
    }
    if ratings := compare_ratings(a, b):
        comparison["ratings"] = ratings
        comparison["definitions"] |= {
            "ratings.delta": "paired rating(tuned) - rating(base) on the same items: mean of per-item "
            "differences, t 95% CI, paired t-test, Holm over the rating rows",
            "ratings.shift_delta": "per item, the tuned model's shift from the baseline condition minus "
            "the base model's (rating points): mean, t 95% CI, paired t-test, Holm over the framings",
        }
    return comparison
