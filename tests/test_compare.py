"""Fine-tune versus base: paired deltas and amplification from two run directories."""

import json

import pytest

from personaguard.audit.compare import compare_runs


def write_run(path, model, errors):
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
                    "pred": {"sum": 1 if err else 0},
                    "target": 0,
                    "incorrect": 1,
                }
            )
    (path / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (path / "results.json").write_text(json.dumps({"model": model, "headline_scoring": "sum"}))


def test_compare_deltas_and_amplification(tmp_path):
    n = 100
    base = {"neutral": [0] * n, "sad": [0] * n}
    tuned = {"neutral": [1] * 10 + [0] * 90, "sad": [1] * 15 + [0] * 85}
    write_run(tmp_path / "base", "base", base)
    write_run(tmp_path / "warm", "warm", tuned)
    comp = compare_runs(tmp_path / "base", tmp_path / "warm")
    sad = comp["banks"]["b"]["sad"]
    assert sad["delta"]["delta"] == pytest.approx(0.15)
    assert sad["delta"]["b_only"] == 15 and sad["delta"]["a_only"] == 0
    assert sad["amplification"]["value"] == pytest.approx(1.5)
    assert sad["amplification"]["lo"] < 1.5 < sad["amplification"]["hi"]
    assert "amplification" not in comp["banks"]["b"]["neutral"]
