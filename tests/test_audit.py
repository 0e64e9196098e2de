"""The audit end to end on the bundled model: outputs, resume, kill-and-resume equivalence."""

import json
import subprocess
import sys
import textwrap

import pytest

from personaguard.audit.runner import AuditConfig, run_audit
from personaguard.audit.safety_labels import OUTCOMES

pytestmark = pytest.mark.slow


def config(mini_items, **kw):
    return AuditConfig(model="bundled:smollm2-135m", banks=[str(mini_items)], chunk_size=8, **kw)


def sample_ids(run):
    return [json.loads(line)["sample_id"] for line in (run / "samples.jsonl").open()]


def test_audit_writes_run_and_resumes_without_duplicates(tmp_path, mini_items, bundled):
    run = tmp_path / "run"
    results = run_audit(config(mini_items), run, model=bundled, progress=False)
    for name in ("config.yaml", "env.json", "samples.jsonl", "results.json"):
        assert (run / name).is_file()
    ids = sample_ids(run)
    assert len(ids) == len(set(ids)) == 12 * 4
    conds = results["banks"]["mini_items"]["scorings"]["mean"]["conditions"]
    assert set(conds) == {"neutral", "incorrect_belief", "incorrect_mention", "correct_belief"}
    assert conds["neutral"]["error_rate"]["n"] == 12
    assert "delta_error_vs_neutral" in conds["incorrect_belief"]
    # second run: nothing to do, so no model is needed and nothing is appended
    again = run_audit(config(mini_items), run, model=None, progress=False)
    assert sample_ids(run) == ids
    assert again == results


KILLER = textwrap.dedent("""
    import os, signal, sys
    from personaguard.audit.runner import AuditConfig, run_audit
    cfg = AuditConfig(model="bundled:smollm2-135m", banks=[sys.argv[1]], chunk_size=8)
    def die(index):
        if index == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    run_audit(cfg, sys.argv[2], progress=False, on_chunk=die)
""")


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, mini_items, bundled):
    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(mini_items), str(killed)],
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(sample_ids(killed)) == 3 * 8  # three chunks landed before the kill
    assert not (killed / "results.json").exists()
    # simulate a torn write on top of the kill
    with (killed / "samples.jsonl").open("a") as handle:
        handle.write('{"sample_id": "torn')
    resumed = run_audit(config(mini_items), killed, model=bundled, progress=False)
    clean = run_audit(config(mini_items), tmp_path / "clean", model=bundled, progress=False)
    assert resumed == clean
    assert sorted(sample_ids(killed)) == sorted(sample_ids(tmp_path / "clean"))


def test_refusal_grader_on_open_requests(tmp_path, bundled):
    from tests.conftest import DATA

    cfg = AuditConfig(
        model="bundled:smollm2-135m",
        banks=[str(DATA / "mini_requests.jsonl")],
        conditions=["direct", "grief"],
        grader="refusal",
        max_new_tokens=24,
    )
    results = run_audit(cfg, tmp_path / "run", model=bundled, progress=False)
    assert results["headline_scoring"] == "rules" == results["safety_grader"]
    # the bank mixes harmful (h-) and benign (b-) requests: each gets its own metric
    harmful, benign = results["banks"]["mini_requests/harmful"], results["banks"]["mini_requests/benign"]
    assert (harmful["metric"], benign["metric"]) == ("attack_success_rate", "over_refusal_rate")
    for bank in (harmful, benign):
        conds = bank["scorings"]["rules"]["conditions"]
        assert set(conds) == {"direct", "grief"}
        assert bank["scorings"]["rules"]["baseline_condition"] == "direct"
        for entry in conds.values():  # the three outcome shares add up to every scored reply
            assert sum(entry["outcomes"][o]["k"] for o in OUTCOMES) == entry["error_rate"]["n"] == 2
    records = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").open()]
    assert len(records) == 8
    fingerprint = json.loads((tmp_path / "run" / "fingerprint.json").read_text())
    assert fingerprint["grading"]["safety_grader"]["name"] == "rules"
    for r in records:
        assert r["choices"] == list(OUTCOMES) and isinstance(r["response"], str)
        assert r["pred"]["rules"] in range(3) and r["request"] in r["prompt"][-1]["content"]
        assert OUTCOMES[r["target"]] == ("compliance" if r["item_id"].startswith("b-") else "refusal")


def test_a_vector_file_rewritten_in_place_is_refused_on_resume(tmp_path, mini_items, bundled):
    """The spec string is unchanged, but the content behind it is not: resuming would mix models."""
    import torch

    from personaguard.errors import PersonaguardError
    from personaguard.vectors.store import PersonaVectors, save_vectors

    vectors = tmp_path / "warmth.safetensors"
    save_vectors(
        PersonaVectors("warmth", torch.zeros(31, 576), "test", "mean_diff", "response_avg", 1), vectors
    )
    cfg = AuditConfig(
        model=f"bundled:smollm2-135m#steer={vectors}:20:0",
        banks=[str(mini_items)],
        conditions=["neutral"],
        limit=2,
    )
    run_audit(cfg, tmp_path / "run", model=bundled, progress=False)
    run_audit(cfg, tmp_path / "run", model=bundled, progress=False)  # unchanged: resumes
    save_vectors(
        PersonaVectors("warmth", torch.ones(31, 576), "test", "mean_diff", "response_avg", 1), vectors
    )
    with pytest.raises(PersonaguardError, match=r"changed since it started \(model\.steer\.vectors\)"):
        run_audit(cfg.model_copy(update={"limit": 3}), tmp_path / "run", model=bundled, progress=False)
