"""Multiple-choice scoring throughput: personaguard vs lm-evaluation-harness, side by side.

Same items (the built-in factual bank), same materialised model directory, same dtype, same
CPU, same process. Prints items/s for each, the ratio, per-item argmax agreement, max |Δ loglik|,
and personaguard's achieved FLOP/s against a matmul peak measured in this run, in the same dtype.

    python benchmarks/bench_scoring.py [--items 400] [--batch-size 16] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from personaguard.audit.graders import ANSWER_PREFILL
from personaguard.data.catalog import bank_path
from personaguard.data.items import load_items
from personaguard.models import load_model
from personaguard.models.bundled import materialise


def matmul_peak(
    dtype: torch.dtype,
    device: str = "cpu",
    sizes: tuple[int, ...] = (2048, 3072, 4096),
    repeats: int = 5,
    budget_s: float = 15.0,
) -> tuple[float, int]:
    """(FLOP/s, size) of the fastest single square matmul in ``dtype``: each size is warmed up
    first (thread pool, page faults, packing buffers) and timed several times, and the best
    repeat counts, since on a busy machine any repeat can only be slowed down, never sped up.
    Each size stops after ``budget_s`` so a slow dtype (bf16 without hardware support) ends."""
    best = (0.0, 0)
    for n in sizes:
        a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
        out = torch.empty(n, n, dtype=dtype, device=device)
        sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
        torch.matmul(a, b, out=out)
        sync()
        deadline = time.perf_counter() + budget_s
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b, out=out)
            sync()
            best = max(best, (2 * n**3 / (time.perf_counter() - start), n))
            if time.perf_counter() > deadline:
                break
    return best


class FlopCounter:
    """Counts forward FLOPs from the tokens entering the body and the positions reaching lm_head."""

    def __init__(self, model: torch.nn.Module) -> None:
        emb = model.get_input_embeddings()
        head = model.get_output_embeddings()
        self.tokens = 0
        self.logit_rows = 0
        self.body_params = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n)
        self.head_params = head.weight.numel()
        emb.register_forward_hook(lambda _m, i, _o: self._add_tokens(i[0].numel()))
        head.register_forward_hook(lambda _m, _i, o: self._add_rows(o.shape[0] * o.shape[1]))

    def _add_tokens(self, n: int) -> None:
        self.tokens += n

    def _add_rows(self, n: int) -> None:
        self.logit_rows += n

    @property
    def flops(self) -> float:
        return 2.0 * (self.body_params * self.tokens + self.head_params * self.logit_rows)


def compare(a: list[list[float]], b: list[list[float]]) -> tuple[float, float]:
    """(share of items with the same argmax, max |difference|) between two score tables."""
    best = lambda row: max(range(len(row)), key=row.__getitem__)  # noqa: E731
    same = sum(best(x) == best(y) for x, y in zip(a, b, strict=True))
    diff = max(abs(u - v) for x, y in zip(a, b, strict=True) for u, v in zip(x, y, strict=True))
    return same / len(a), diff


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)

    path = str(materialise())
    items = load_items(bank_path("factual"))[: args.items]
    ours = load_model(f"hf:{path}#dtype={args.dtype},batch_size={args.batch_size},device={args.device}")
    prompts = [
        [{"role": "user", "content": it.input}, {"role": "assistant", "content": ANSWER_PREFILL}]
        for it in items
    ]
    choices = [[" " + c for c in it.choices] for it in items]

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=path, dtype=args.dtype, device=args.device, batch_size=args.batch_size)
    requests = [
        Instance("loglikelihood", doc={}, arguments=(ours.render(p), c), idx=j)
        for p, row in zip(prompts, choices, strict=True)
        for j, c in enumerate(row)
    ]
    counter = FlopCounter(ours.model)
    # warm-up both on a few items so one-time costs do not count
    ours.score_choices(prompts[:4], choices[:4])
    lm.loglikelihood(requests[:8], disable_tqdm=True)
    counter.tokens = counter.logit_rows = 0

    start = time.perf_counter()
    ours_scores = ours.score_choices(prompts, choices)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = lm.loglikelihood(requests, disable_tqdm=True)
    t_theirs = time.perf_counter() - start

    flat = iter(ll for ll, _greedy in theirs)
    theirs_rows = [[next(flat) for _ in row] for row in ours_scores]
    ours_rows = [[s.logprob for s in row] for row in ours_scores]
    agree, max_diff = compare(ours_rows, theirs_rows)

    peak, peak_size = matmul_peak(getattr(torch, args.dtype), args.device)
    n = len(items)
    print(
        f"items: {n} ({len(requests)} loglikelihood requests), dtype {args.dtype}, "
        f"batch size {args.batch_size}, threads {torch.get_num_threads()}"
    )
    print(f"lm-eval HFLM       {n / t_theirs:8.1f} items/s   ({t_theirs:.1f} s)")
    print(f"personaguard       {n / t_ours:8.1f} items/s   ({t_ours:.1f} s)")
    print(f"speed-up           {t_theirs / t_ours:8.2f}x")
    print(f"argmax agreement   {100 * agree:8.2f} %")
    print(f"max |Δ loglik|     {max_diff:8.4f}")
    if args.dtype != "float32":
        # How far is each low-precision implementation from the fp32 answer?
        ref_model = load_model(f"hf:{path}#dtype=float32,batch_size={args.batch_size},device={args.device}")
        ref = [[s.logprob for s in row] for row in ref_model.score_choices(prompts, choices)]
        for name, rows in (("personaguard", ours_rows), ("lm-eval", theirs_rows)):
            same, diff = compare(rows, ref)
            print(
                f"{name:>12} vs fp32 reference: argmax agreement {100 * same:.2f} %, "
                f"max |Δ loglik| {diff:.3f}"
            )
    achieved = counter.flops / t_ours
    print(
        f"personaguard FLOP/s {achieved / 1e9:7.1f} GFLOP/s = {100 * achieved / peak:.1f}% of a "
        f"{args.dtype} matmul peak of {peak / 1e9:.1f} GFLOP/s measured here (best {peak_size}² matmul)"
    )
    if achieved > peak:
        print("warning: above the measured peak, so the peak run was disturbed; rerun on an idle machine")


if __name__ == "__main__":
    main()
