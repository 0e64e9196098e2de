"""Fine-tune versus base: paired deltas and amplification from two run directories, and the refusal
to pair runs that did not ask the same questions."""

import json

import pytest

from personaguard.audit.compare import compare_runs
from personaguard.errors import PersonaguardError

ROLES = {"neutral": "baseline", "sad": "context"}


def fingerprint(**changes):
    fp = {
        "model": {"weights": "w-base", "adapter": None, "dtype": "float32"},
        "judge": None,
        "banks": {"b": "bank-sha"},
        "conditions": {"neutral": "n-sha", "sad": "s-sha"},
        "grading": {"grader": "loglik", "headline": "sum", "max_new_tokens": None},
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = fp
        for p in parents:
            target = target[p]
        target[leaf] = value
    return fp


def write_run(path, model, errors, fp=None):
    """errors: {condition: [0/1 per item]} -> a minimal finished run directory."""
    path.mkdir()
    lines = []
    for cond, values in errors.items():
        for k, err in enumerate(values):
            lines.append(
                {
                    "sample_id": f"b/i{k}/{cond}",
                    "bank": "b",
                    "item_id": f"i{k}",
                    "condition": cond,
                    "role": ROLES[cond],
                    "grader": "loglik",
                    "pred": {"sum": 1 if err else 0},
                    "target": 0,
                    "incorrect": 1,
                }
            )
    (path / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (path / "results.json").write_text(json.dumps({"model": model, "headline_scoring": "sum"}))
    (path / "fingerprint.json").write_text(json.dumps(fp or fingerprint()))


N = 100
BASE = {"neutral": [0] * N, "sad": [0] * N}
TUNED = {"neutral": [1] * 10 + [0] * 90, "sad": [1] * 15 + [0] * 85}


def test_compare_deltas_and_amplification(tmp_path):
    write_run(tmp_path / "base", "base", BASE)
    write_run(tmp_path / "warm", "warm", TUNED, fingerprint(model__weights="w-warm"))  # other model: fine
    comp = compare_runs(tmp_path / "base", tmp_path / "warm")
    sad = comp["banks"]["b"]["sad"]
    assert sad["delta"]["delta"] == pytest.approx(0.15)
    assert sad["delta"]["b_only"] == 15 and sad["delta"]["a_only"] == 0
    assert sad["delta"]["p_holm"] == pytest.approx(min(1.0, 2 * sad["delta"]["p"]))  # 2 rows, sad smallest
    assert sad["amplification"]["value"] == pytest.approx(1.5)
    assert sad["amplification"]["lo"] < 1.5 < sad["amplification"]["hi"]
    assert "amplification" not in comp["banks"]["b"]["neutral"]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"grading__grader": "generate"}, "grading.grader"),
        ({"grading__headline": "mean"}, "grading.headline"),
        ({"banks__b": "edited"}, "banks.b"),
        ({"conditions__sad": "other templates"}, "conditions.sad"),
        ({"judge": {"weights": "j"}}, "judge"),
        ({"model__dtype": "bfloat16"}, "model dtype"),
    ],
)
def test_runs_that_asked_different_questions_are_not_paired(tmp_path, changes, named):
    write_run(tmp_path / "base", "base", BASE)
    write_run(tmp_path / "warm", "warm", TUNED, fingerprint(**changes))
    with pytest.raises(PersonaguardError, match=named.replace(".", r"\.")):
        compare_runs(tmp_path / "base", tmp_path / "warm")


def test_different_item_sets_are_not_paired(tmp_path):
    write_run(tmp_path / "base", "base", BASE)
    write_run(tmp_path / "warm", "warm", {"neutral": [0] * 50, "sad": [0] * 50})
    with pytest.raises(PersonaguardError, match="items of b/neutral"):
        compare_runs(tmp_path / "base", tmp_path / "warm")


def test_runs_without_a_fingerprint_are_refused(tmp_path):
    write_run(tmp_path / "base", "base", BASE)
    write_run(tmp_path / "old", "old", BASE)
    (tmp_path / "old" / "fingerprint.json").unlink()
    with pytest.raises(PersonaguardError, match="no fingerprint.json"):
        compare_runs(tmp_path / "base", tmp_path / "old")
