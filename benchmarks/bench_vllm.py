"""Choice scoring through a real vLLM server vs the HF engine, in one run.

Same items (the built-in factual bank under two conditions, prompts exactly as the loglik grader
builds them), same materialised bundled model, float32 everywhere unless --dtype says otherwise.
Prints items/s and prompt tokens/s for: personaguard's HF engine; personaguard through vLLM at 1, 8
and 32 concurrent connections; lm-eval's ``local-completions`` against the same server. Then the
ratios, which are what to quote: the machine may be shared, and every figure in one run is slowed
alike. Also per-item argmax agreement and max |Δ loglik| of each endpoint path against the HF engine.

    make vllm   # once: the server's own venv
    python benchmarks/bench_vllm.py [--items 40] [--dtype float32] [--threads 2] [--url URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from personaguard.audit.graders import loglik_requests
from personaguard.audit.runner import AuditConfig, plan
from personaguard.models import Chat, ChoiceScore, load_model
from personaguard.models.bundled import materialise
from personaguard.models.choice_tokens import split_choice
from personaguard.models.openai_compat import OpenAIModel
from personaguard.models.spec import parse_spec
from personaguard.models.vllm_server import VLLMServer

Scores = list[list[float]]


def workload(items: int) -> tuple[list[Chat], list[list[str]]]:
    units = plan(
        AuditConfig(
            model="bundled:smollm2-135m",
            banks=["factual"],
            limit=items,
            conditions=["neutral", "incorrect_belief"],
        )
    )
    return loglik_requests([u.prompt for u in units], [u.item for u in units])


SERVER_COUNTERS = (
    "vllm:iteration_tokens_total_sum",  # tokens over all engine steps
    "vllm:iteration_tokens_total_count",  # engine steps
    "vllm:request_queue_time_seconds_sum",  # seconds requests waited for a batch slot
)


def server_counters(url: str | None) -> dict[str, float]:
    """A few counters from vLLM's Prometheus /metrics, summed over labels."""
    if url is None:
        return {}
    totals = dict.fromkeys(SERVER_COUNTERS, 0.0)
    for line in httpx.get(url.removesuffix("/v1") + "/metrics", timeout=10).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.split("{")[0] in totals:
            totals[name.split("{")[0]] += float(value)
    return totals


def timed(
    label: str, n_items: int, n_tokens: int, run: Callable[[], Scores], url: str | None = None
) -> tuple[float, Scores]:
    """Wall time, client CPU time and (for a server) engine steps and tokens per step."""
    before, cpu0, start = server_counters(url), time.process_time(), time.perf_counter()
    scores = run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    rate = n_items / seconds
    line = f"{label:<34} {seconds:7.1f} s  {rate:6.2f} items/s  {n_tokens / seconds:6.0f} prompt tok/s"
    line += f"  client CPU {cpu:5.1f} s"
    after = server_counters(url)
    if after:
        tokens, steps, queued = (after[k] - before[k] for k in SERVER_COUNTERS)
        per_step = tokens / max(steps, 1)
        line += f"  engine steps {steps:4.0f} ({per_step:5.0f} tok/step)  queued {queued:6.1f} req-s"
    print(line)
    return rate, scores


def logprobs(rows: Sequence[Sequence[ChoiceScore]]) -> Scores:
    return [[s.logprob for s in row] for row in rows]


def agreement(ref: Scores, other: Scores) -> str:
    argmax = [max(range(len(r)), key=r.__getitem__) for r in (*ref, *other)]
    n = len(ref)
    same = sum(a == b for a, b in zip(argmax[:n], argmax[n:], strict=True))
    delta = max(abs(a - b) for r, o in zip(ref, other, strict=True) for a, b in zip(r, o, strict=True))
    return f"argmax agreement {same}/{n}, max |Δ loglik| {delta:.2e}"


def lm_eval_scorer(name: str, url: str, tokenizer: str, contexts: list[str], choices: list[list[str]]):
    """lm-eval's own client for OpenAI-compatible completions, 8 concurrent requests."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    lm = LocalCompletionsAPI(
        model=name,
        base_url=f"{url}/completions",
        tokenizer=tokenizer,
        tokenizer_backend="huggingface",
        num_concurrent=8,
        max_length=2048,
    )
    requests = [
        Instance("loglikelihood", {}, (ctx, choice), k)
        for k, (ctx, choice) in enumerate(
            (c, x) for c, row in zip(contexts, choices, strict=True) for x in row
        )
    ]

    def run() -> Scores:
        flat = iter(lp for lp, _ in lm.loglikelihood(requests, disable_tqdm=True))
        return [[next(flat) for _ in row] for row in choices]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40, help="factual items (x2 conditions)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--threads", type=int, default=None, help="vLLM compute threads (default: vLLM's)")
    parser.add_argument("--python", default=None, help="the vLLM venv's python (default .venv-vllm)")
    parser.add_argument("--url", default=None, help="use this running server (serving the bundled model)")
    parser.add_argument("--skip-lm-eval", action="store_true")
    args = parser.parse_args()

    model_dir = str(materialise())
    prompts, choices = workload(args.items)
    hf = load_model(f"bundled:smollm2-135m#dtype={args.dtype}")
    contexts = [hf.render(p) for p in prompts]  # type: ignore[attr-defined]
    encode = hf.encode  # type: ignore[attr-defined]
    n_tokens = sum(
        sum(map(len, split_choice(encode, ctx, c)))
        for ctx, row in zip(contexts, choices, strict=True)
        for c in row
    )
    once = sum(  # what the HF engine computes: each prompt once, then every choice's tokens
        len(split_choice(encode, ctx, row[0])[0]) + sum(len(split_choice(encode, ctx, c)[1]) for c in row)
        for ctx, row in zip(contexts, choices, strict=True)
    )
    n = len(prompts)
    print(f"{n} prompts, {sum(map(len, choices))} choices, {n_tokens} prompt tokens sent in all")
    print(
        f"tokens computed per item: {n_tokens / n:.0f} by the server (one echo request per choice, "
        f"each recomputing the prompt), {once / n:.0f} by the HF engine (each prompt once)"
    )
    print(
        f"cpus: {len(os.sched_getaffinity(0))}, load average now: {os.getloadavg()[0]:.1f} (shared machine)"
    )

    server = None
    if args.url:
        url = args.url.rstrip("/")
        name = httpx.get(f"{url}/models").json()["data"][0]["id"]
    else:
        server = VLLMServer(model_dir, python=args.python, dtype=args.dtype, threads=args.threads)
        server.start(progress=lambda line: print(line, file=sys.stderr, flush=True))
        url, name = server.url, server.name
    try:
        rates: dict[str, float] = {}
        endpoint_scores: dict[str, Scores] = {}
        hf.score_choices(prompts[:4], choices[:4])  # warm-up
        rates["hf"], hf_scores = timed(
            "HF engine (in process)", n, n_tokens, lambda: logprobs(hf.score_choices(prompts, choices))
        )
        for conns in (1, 8, 32):
            spec = f"openai:{name}@{url}#tokenizer={model_dir},max_connections={conns}"
            client = OpenAIModel(parse_spec(spec))
            client.score_choices(prompts[:4], choices[:4])  # warm-up: tokenizer load, server's first shapes
            key = f"vllm x{conns}"
            rates[key], endpoint_scores[key] = timed(
                f"personaguard -> vLLM, {conns:>2} conns",
                n,
                n_tokens,
                lambda c=client: logprobs(c.score_choices(prompts, choices)),
                url,
            )
        if not args.skip_lm_eval:
            run = lm_eval_scorer(name, url, model_dir, contexts, choices)
            rates["lm-eval"], endpoint_scores["lm-eval"] = timed(
                "lm-eval local-completions, 8 conns", n, n_tokens, run, url
            )
        reference = hf_scores
        if args.dtype != "float32":  # agreement is always judged against the float32 instrument
            reference = logprobs(load_model("bundled:smollm2-135m").score_choices(prompts, choices))
        print()
        for key, rate in rates.items():
            if key != "hf":
                versus = agreement(reference, endpoint_scores[key])
                print(f"{key:<10} / HF engine: {rate / rates['hf']:.2f}x   vs HF float32: {versus}")
        if "lm-eval" in rates:
            print(f"personaguard x8 / lm-eval x8: {rates['vllm x8'] / rates['lm-eval']:.2f}x")
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()
