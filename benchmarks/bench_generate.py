"""Generation: personaguard's engine versus transformers' ``generate()``, same prompts, same greedy
settings, same batch size, same dtype, in one process.

Both sides get the same left-padded batches of chat prompts (the held-out persona prompts, the
generation that warmth scoring, vector extraction and generative audits do). Runs alternate
(ours, theirs, ours, theirs, ...) so that load from other jobs falls on both alike. Prints new
tokens per second for each, the ratio, and how many replies are identical.

    python benchmarks/bench_generate.py [--model bundled:smollm2-135m] [--prompts 32]
                                        [--max-new-tokens 64] [--batch-size 16] [--repeats 2]

``--scaling`` instead prints what a decode step costs in personaguard's loop alone: ms per step at
1, 4, 16 and 64 rows in float32 and bfloat16 (32 new tokens, after a short warm-up), and the
share of a float32 batch-16 generation that ``torch.profiler`` puts in ``aten::mm``. The README
explains the ratio above with these figures.
"""

from __future__ import annotations

import argparse
import time

import torch


def hf_generate(engine, prompts, max_new_tokens: int, batch_size: int) -> list[str]:
    """transformers' own loop: left padding, greedy, stop at EOS."""
    tok = engine.tokenizer
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    texts = []
    for start in range(0, len(prompts), batch_size):
        rendered = [engine.render(chat) for chat in prompts[start : start + batch_size]]
        batch = tok(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = engine.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=sorted(engine.eos_ids),
            )
        new = out[:, batch["input_ids"].shape[1] :]
        for row in new.tolist():
            cut = next((j for j, t in enumerate(row) if t in engine.eos_ids), len(row))
            texts.append(tok.decode(row[:cut], skip_special_tokens=True))
    return texts


def scaling(model: str, prompts: list) -> None:
    from torch.profiler import ProfilerActivity, profile

    from personaguard.models import load_model

    for dtype in ("float32", "bfloat16"):
        for rows in (1, 4, 16, 64):
            engine = load_model(f"{model}#batch_size={rows},dtype={dtype}")
            batch = prompts[:rows]
            engine.generate(batch, max_new_tokens=4)  # warm-up
            start = time.perf_counter()
            texts = engine.generate(batch, max_new_tokens=32)
            seconds = time.perf_counter() - start
            produced = sum(len(engine.encode(t)) for t in texts)
            print(
                f"{dtype:8s} {rows:3d} rows: {1000 * seconds / 32:6.1f} ms/step, "
                f"{produced / seconds:7.1f} new tokens/s ({produced} tokens in {seconds:.2f} s)"
            )
    engine = load_model(f"{model}#batch_size=16,dtype=float32")
    engine.generate(prompts[:16], max_new_tokens=4)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        engine.generate(prompts[:16], max_new_tokens=32)
    ops = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ops)
    mm = sum(e.self_cpu_time_total for e in ops if e.key == "aten::mm")
    print(f"float32, 16 rows: aten::mm is {100 * mm / total:.1f} % of self CPU time under torch.profiler")


def main() -> None:
    from personaguard.models import load_model
    from personaguard.persona.dataset import build_persona_dataset

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bundled:smollm2-135m")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scaling", action="store_true", help="ms per decode step by rows and dtype")
    args = parser.parse_args()
    rows = build_persona_dataset("neutral", "heldout")[: max(args.prompts, 64 if args.scaling else 0)]
    prompts = [[m for m in row["messages"] if m["role"] != "assistant"][:1] for row in rows]
    if args.scaling:
        scaling(args.model, prompts)
        return
    engine = load_model(f"{args.model}#batch_size={args.batch_size}")
    print(
        f"{args.model}, {engine.dtype}, {len(prompts)} prompts, batch {args.batch_size}, "
        f"greedy, up to {args.max_new_tokens} new tokens, {torch.get_num_threads()} threads"
    )
    runs = {
        "personaguard": lambda: engine.generate(prompts, max_new_tokens=args.max_new_tokens),
        "transformers": lambda: hf_generate(engine, prompts, args.max_new_tokens, args.batch_size),
    }
    for run in runs.values():  # warm-up
        run()
    seconds = dict.fromkeys(runs, 0.0)
    texts: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            texts[name] = run()
            seconds[name] += time.perf_counter() - start
    for name in runs:  # new tokens counted the same way for both: the replies re-encoded
        produced = args.repeats * sum(len(engine.encode(t)) for t in texts[name])
        print(f"{name:13s} {produced / seconds[name]:8.1f} new tokens/s ({seconds[name]:.1f} s)")
    same = sum(a == b for a, b in zip(texts["personaguard"], texts["transformers"], strict=True))
    speedup = seconds["transformers"] / seconds["personaguard"]
    print(
        f"speed-up: {speedup:.2f}x (wall time for the same prompts); identical replies: {same}/{len(prompts)}"
    )


if __name__ == "__main__":
    main()
