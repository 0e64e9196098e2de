"""Re-grade a refusal-grader run's stored replies with another safety grader, without regenerating.

The new run lies next to the old one (``RUN.regraded-NAME`` unless told otherwise) and is an ordinary
run directory: its own config (the new ``safety_grader``), a fingerprint whose ``grading`` block names
the new grader (model, banks and conditions are the old run's: the replies are the old run's), the
re-graded samples and results. ``compare`` and ``report`` pair it like any run: two runs re-graded
with the same grader pair, and a re-graded run never pairs with one graded differently. Re-running
the same command resumes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from personaguard.audit.graders import safety_record
from personaguard.audit.runner import (
    AuditConfig,
    grading_fingerprint,
    plan,
    questions_fingerprint,
    results_of,
    settings_for,
)
from personaguard.audit.runstore import RunStore
from personaguard.audit.safety_graders import grade_cases
from personaguard.audit.safety_labels import SafetyCase
from personaguard.data.yamlfile import validated
from personaguard.errors import PersonaguardError
from personaguard.models import load_model

# What a re-graded record keeps from the old one: where the reply came from, and the reply.
KEPT = ("sample_id", "bank", "item_id", "condition", "role", "family", "template", "tier", "prompt")
CHUNK = 64


def _old_run(run: Path) -> tuple[AuditConfig, dict[str, Any], list[dict[str, Any]]]:
    config_path = run / "config.yaml"
    store = RunStore(run)
    fingerprint = store.fingerprint()
    if not config_path.is_file() or fingerprint is None or not (run / "samples.jsonl").is_file():
        raise PersonaguardError(
            f"{run}: not an audit run with config.yaml, fingerprint.json and samples.jsonl"
        )
    raw = yaml.safe_load(config_path.read_text()) or {}
    if raw.get("grader") != "refusal":
        raise PersonaguardError(
            f"{run}: grader {raw.get('grader')!r}; only refusal-grader runs can be re-graded"
        )
    raw.pop("safety_grader", None)  # runs before the three-way graders have none; it is replaced anyway
    return validated(AuditConfig, raw, f"{config_path}: "), fingerprint, store.records()


def _kind(record: dict[str, Any]) -> str:
    return "harmful" if record["choices"][record["target"]] == "refusal" else "benign"


def _requests(
    config: AuditConfig, fingerprint: dict[str, Any], records: list[dict[str, Any]]
) -> dict[str, str]:
    """sample_id -> the bare request. Records before the three-way graders did not store it: it is
    read back from the bank, which must be the content the run was made from."""
    requests = {r["sample_id"]: r["request"] for r in records if "request" in r}
    if len(requests) == len(records):
        return requests
    now = questions_fingerprint(config.banks, config.conditions, config.conditions_file)["banks"]
    changed = [b for b, sha in fingerprint["banks"].items() if now.get(b) != sha]
    if changed:
        raise PersonaguardError(
            f"bank(s) {changed} changed since this run was made, and its samples do not store their "
            "requests; re-grading would pair replies with the wrong requests"
        )
    return {u.sample_id: u.item.input for u in plan(config)} | requests


def regrade(
    run: str | Path, grader: str, out: str | Path | None = None, judge: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """Re-grade ``run`` with safety grader ``grader``; returns (new run dir, its results).

    The judge is ``judge``, else, for the judge grader, the old run's. Without one the re-graded run
    has no judge scoring, so re-grading with the rules or the probe never waits on a judge model.
    """
    run = Path(run)
    old, old_fingerprint, records = _old_run(run)
    judge = judge or (old.judge if grader == "judge" else None)
    config = validated(
        AuditConfig, {**old.model_dump(), "safety_grader": grader, "judge": judge}, "--grader: "
    )
    out = Path(out) if out else run.with_name(f"{run.name}.regraded-{grader}")
    if out.resolve() == run.resolve():
        raise PersonaguardError(f"{out}: choose an --out other than the run being re-graded")
    fingerprint = {
        **old_fingerprint,
        "judge": None,
        "grading": grading_fingerprint(config),
        "regraded_from": str(run.resolve()),
    }
    if config.judge:
        from personaguard.models.fingerprint import model_fingerprint

        fingerprint["judge"] = model_fingerprint(config.judge)
    requests = _requests(old, old_fingerprint, records)
    with RunStore.open(out, config.model_dump(mode="json"), fingerprint) as store:
        done = store.done_ids()
        todo = [r for r in records if r["sample_id"] not in done]
        if todo:
            settings = settings_for(config, load_model(config.judge) if config.judge else None)
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start : start + CHUNK]
                cases = [
                    SafetyCase(requests[r["sample_id"]], r["prompt"], r["response"] or "") for r in chunk
                ]
                verdicts = grade_cases(settings.safety, cases)
                store.append(
                    safety_record({k: r[k] for k in KEPT if k in r}, _kind(r), case, v)
                    for r, case, v in zip(chunk, cases, verdicts, strict=True)
                )
        results = results_of(config, store.records())
        store.write_results(results)
    return out, results
