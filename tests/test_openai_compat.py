"""The OpenAI-compatible client against real servers on loopback: a tiny stdlib stub for error
paths, and `transformers serve` on the materialised bundled model for the real thing."""

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from personaguard.errors import PersonaguardError
from personaguard.models import load_model
from personaguard.models.openai_compat import OpenAIModel
from personaguard.models.spec import parse_spec
from tests.servers import Stub, free_port

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def reply(text):
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def make(url, extra=""):
    model = OpenAIModel(parse_spec(f"openai:m@{url}#retries=3{extra}"), backoff=0.01)
    return model


def test_retries_429_and_5xx_then_succeeds():
    stub = Stub([(429, {}), (503, {}), (200, reply("Paris."))])
    try:
        assert make(stub.url).generate([CHAT]) == ["Paris."]
        assert len(stub.requests) == 3
    finally:
        stub.close()


def test_rejected_key_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    stub = Stub([(401, {"error": "bad key"})])
    try:
        with pytest.raises(PersonaguardError, match=r"rejected the API key \(HTTP 401\)") as info:
            make(stub.url).generate([CHAT])
        assert "sk-wrong-key" not in str(info.value)
        assert stub.requests[0][1]["Authorization"] == "Bearer sk-wrong-key"
        assert len(stub.requests) == 1  # no retry on auth errors
    finally:
        stub.close()


def test_other_4xx_is_not_retried():
    stub = Stub([(400, {"error": "bad request"})])
    try:
        with pytest.raises(PersonaguardError, match="HTTP 400"):
            make(stub.url).generate([CHAT])
        assert len(stub.requests) == 1
    finally:
        stub.close()


def test_unreachable_endpoint():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(PersonaguardError, match="cannot reach endpoint"):
        make(url).generate([CHAT])


def test_concurrency_is_bounded():
    stub = Stub([(200, reply("ok"))])
    try:
        model = make(stub.url, ",max_connections=2")
        assert model.generate([CHAT] * 6) == ["ok"] * 6
        assert len(stub.requests) == 6
    finally:
        stub.close()


def test_scoring_needs_a_tokenizer_and_says_why():
    stub = Stub([(200, {"choices": [{"text": " Paris"}]})])
    try:
        with pytest.raises(PersonaguardError, match="#tokenizer=.*generative grader"):
            make(stub.url).score_choices([CHAT], [[" Paris", " Lyon"]])
        assert stub.requests == []  # failed before sending anything
    finally:
        stub.close()


def test_scoring_sends_token_ids_and_sums_the_choice_span():
    """The prompt goes as the token ids the local engine scores (no server-side tokenising, so no
    second BOS); the choice is read by position from the echoed prompt log-probs."""
    from transformers import AutoTokenizer

    from personaguard.models.bundled import materialise
    from personaguard.models.choice_tokens import split_choice

    path = materialise()
    tok = AutoTokenizer.from_pretrained(str(path))
    chat = [*CHAT, {"role": "assistant", "content": "The answer is"}]
    context = tok.apply_chat_template(chat, tokenize=False, continue_final_message=True)
    ctx, cont = split_choice(lambda t: tok(t, add_special_tokens=False).input_ids, context, " Paris")
    n = len(ctx) + len(cont)
    echoed = [None, *(-float(k) for k in range(1, n)), -0.5]  # prompt tokens, then the generated one
    stub = Stub([(200, {"choices": [{"logprobs": {"token_logprobs": echoed}}]})])
    try:
        [[score]] = make(stub.url, f",tokenizer={path}").score_choices([chat], [[" Paris"]])
        assert stub.requests[0][2]["prompt"] == ctx + cont and stub.requests[0][2]["echo"] is True
        assert score.n_tokens == len(cont)
        assert score.logprob == -sum(range(len(ctx), n))
    finally:
        stub.close()


def test_scoring_without_echoed_prompt_logprobs_says_why(tmp_path):
    from personaguard.models.bundled import materialise

    stub = Stub([(200, {"choices": [{"text": "x", "logprobs": {"token_logprobs": [-0.5]}}]})])
    try:
        with pytest.raises(PersonaguardError, match="did not return prompt logprobs.*generative"):
            make(stub.url, f",tokenizer={materialise()}").score_choices([CHAT], [[" Paris"]])
    finally:
        stub.close()


def test_a_server_refusing_token_id_prompts_gets_the_scoring_hint():
    from personaguard.models.bundled import materialise

    stub = Stub([(400, {"detail": "prompt must be a string."})])
    try:
        with pytest.raises(
            PersonaguardError, match=r"HTTP 400.*must be a string.*cannot score choices.*generative"
        ):
            make(stub.url, f",tokenizer={materialise()}").score_choices([CHAT], [[" Paris"]])
        assert len(stub.requests) == 1
    finally:
        stub.close()


@pytest.fixture(scope="module")
def served_model():
    from personaguard.models.bundled import materialise

    path = materialise()
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = os.path.join(os.path.dirname(sys.executable), "transformers")
    proc = subprocess.Popen(
        [cli, "serve", str(path), "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("transformers serve did not come up in 180 s")
    yield f"openai:{path}@{base}/v1", str(path)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_transformers_serve_generation(served_model):
    spec, _ = served_model
    model = load_model(spec)
    out = model.generate(
        [CHAT, [{"role": "user", "content": "Name a colour of the sky."}]], max_new_tokens=16
    )
    assert len(out) == 2 and "Paris" in out[0]


@pytest.mark.slow
def test_transformers_serve_cannot_score_and_says_so(served_model):
    spec, path = served_model
    model = load_model(f"{spec}#tokenizer={path}")
    with pytest.raises(PersonaguardError, match=r"cannot score choices.*generative"):
        model.score_choices(
            [[*CHAT, {"role": "assistant", "content": "The answer is"}]], [[" Paris", " Lyon"]]
        )


@pytest.mark.slow
def test_audit_through_the_endpoint(served_model, tmp_path, mini_items):
    from personaguard.audit.runner import AuditConfig, run_audit

    spec, _ = served_model
    cfg = AuditConfig(
        model=spec,
        banks=[str(mini_items)],
        grader="generate",
        limit=4,
        conditions=["neutral", "incorrect_belief"],
        max_new_tokens=24,
    )
    results = run_audit(cfg, tmp_path / "run", progress=False)
    neutral = results["banks"]["mini_items"]["scorings"]["match"]["conditions"]["neutral"]
    assert neutral["error_rate"]["n"] + neutral["error_rate"]["unscored"] == 4
    records = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").open()]
    assert all(r["response"] for r in records)
