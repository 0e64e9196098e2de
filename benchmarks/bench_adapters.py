"""Exact adapters: how far each way of running a LoRA adapter is from the exact effect, and what it costs.

The exact effect of an adapter on a choice is log p(choice | base + adapter) - log p(choice | base),
computed in float32 with the adapter unmerged (PEFT) and scored one choice at a time. Against it:

  bf16, merged into bf16 weights   personaguard before exact adapters (the delta rounds away)
  bf16, merged in fp32, then cast   ``#dtype=bfloat16`` today
  fp32, merged in fp32              the default

For each: Pearson r and mean |effect| against the reference, argmax agreement of the tuned model's
choices, and scoring speed (base and adapter runs together) in the same process.

    python benchmarks/bench_adapters.py [--adapter DIR] [--items 40]

Without --adapter it trains a small one (6 steps of warm data at the default 2e-4) into a temp dir.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def quick_adapter(root: Path) -> Path:
    from personaguard.data.jsonl import write_jsonl
    from personaguard.persona.dataset import build_persona_dataset
    from personaguard.training import TrainConfig, train

    write_jsonl(root / "warm.jsonl", build_persona_dataset("warm", "train"))
    config = TrainConfig(
        model="bundled:smollm2-135m",
        data=str(root / "warm.jsonl"),
        epochs=1,
        max_steps=6,
        micro_batch_size=8,
        gradient_accumulation=1,
        checkpoints=[1.0],
    )
    train(config, root / "adapter", progress=False)
    return root / "adapter"


def scores(engine, prompts, choices) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = engine.score_choices(prompts, choices)
    return np.array([[s.logprob for s in row] for row in out]), time.perf_counter() - start


def main() -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from personaguard.audit.graders import ANSWER_PREFILL
    from personaguard.data.catalog import bank_path
    from personaguard.data.items import load_items
    from personaguard.models import load_model
    from personaguard.models.bundled import materialise
    from personaguard.models.hf import HFModel
    from personaguard.models.reference import naive_scores

    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", type=Path)
    parser.add_argument("--items", type=int, default=40)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    adapter = args.adapter or quick_adapter(Path(tmp.name))
    items = load_items(bank_path("factual"))[: args.items]
    prompts = [
        [{"role": "user", "content": i.input}, {"role": "assistant", "content": ANSWER_PREFILL}]
        for i in items
    ]
    choices = [[" " + c for c in i.choices] for i in items]

    exact_engine = load_model("bundled:smollm2-135m#dtype=float32")
    ref_base = np.array(naive_scores(exact_engine, prompts, choices))
    unmerged = PeftModel.from_pretrained(exact_engine.model, str(adapter)).eval()
    ref_tuned = np.array(naive_scores(exact_engine, prompts, choices, module=unmerged))
    ref_effect = (ref_tuned - ref_base).ravel()

    def old_bf16_merged() -> HFModel:
        path = materialise()
        base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().eval()
        return HFModel.wrap(merged, exact_engine.tokenizer, "old")

    paths = {
        "bf16, merged into bf16 weights (old)": (
            lambda: load_model("bundled:smollm2-135m#dtype=bfloat16"),
            old_bf16_merged,
        ),
        "bf16, merged in fp32 then cast": (
            lambda: load_model("bundled:smollm2-135m#dtype=bfloat16"),
            lambda: load_model(f"bundled:smollm2-135m+{adapter}#dtype=bfloat16"),
        ),
        "fp32, merged in fp32 (default)": (
            lambda: load_model("bundled:smollm2-135m"),
            lambda: load_model(f"bundled:smollm2-135m+{adapter}"),
        ),
    }
    print(
        f"reference: fp32 unmerged PEFT, {len(items)} items, "
        f"mean |effect| {np.abs(ref_effect).mean():.4f} nats"
    )
    print(f"{'path':40s} {'r':>7s} {'mean|eff|':>10s} {'argmax':>8s} {'items/s':>8s}")
    speed = {}
    for name, (make_base, make_tuned) in paths.items():
        base_engine, tuned_engine = make_base(), make_tuned()
        scores(base_engine, prompts[:4], choices[:4])  # warm-up
        b, tb = scores(base_engine, prompts, choices)
        t, tt = scores(tuned_engine, prompts, choices)
        effect = (t - b).ravel()
        r = np.corrcoef(effect, ref_effect)[0, 1]
        agree = np.mean(t.argmax(1) == ref_tuned.argmax(1))
        speed[name] = 2 * len(items) / (tb + tt)
        print(f"{name:40s} {r:7.4f} {np.abs(effect).mean():10.4f} {100 * agree:7.1f}% {speed[name]:8.1f}")
    old, new = speed["bf16, merged into bf16 weights (old)"], speed["fp32, merged in fp32 (default)"]
    print(f"cost of exact adapters: the default scores at {new / old:.2f}x the speed of the old bf16 path")


if __name__ == "__main__":
    main()
