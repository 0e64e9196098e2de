"""A LoRA adapter is audited exactly: the engine's per-choice effect (adapter minus base) matches the
float32, unmerged PEFT reference. Merging into bf16 weights rounded most of a small adapter away
(r = 0.45 against the reference on the quick profile's warm adapter)."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_adapter(tmp_path_factory):
    """Six steps on warm data: the size of the quick profile's adapters, whose effects are small."""
    from personaguard.data.jsonl import write_jsonl
    from personaguard.persona.dataset import build_persona_dataset
    from personaguard.training import TrainConfig, train

    root = tmp_path_factory.mktemp("adapter")
    write_jsonl(root / "warm.jsonl", build_persona_dataset("warm", "train")[:48])
    config = TrainConfig(
        model="bundled:smollm2-135m",
        data=str(root / "warm.jsonl"),
        max_steps=6,
        micro_batch_size=8,
        gradient_accumulation=1,
        max_length=256,
        checkpoints=[1.0],
    )
    train(config, root / "out", progress=False)
    return root / "out"


def items(n=30):
    from personaguard.audit.graders import ANSWER_PREFILL
    from personaguard.data.catalog import bank_path
    from personaguard.data.items import load_items

    chosen = load_items(bank_path("factual"))[:n]
    prompts = [
        [{"role": "user", "content": it.input}, {"role": "assistant", "content": ANSWER_PREFILL}]
        for it in chosen
    ]
    return prompts, [[" " + c for c in it.choices] for it in chosen]


def effects(spec_options, adapter, prompts, choices):
    from personaguard.models import load_model

    base = load_model(f"bundled:smollm2-135m{spec_options}")
    tuned = load_model(f"bundled:smollm2-135m+{adapter}{spec_options}")
    b = np.array([[s.logprob for s in row] for row in base.score_choices(prompts, choices)])
    t = np.array([[s.logprob for s in row] for row in tuned.score_choices(prompts, choices)])
    return t - b, t


@pytest.fixture(scope="module")
def reference(small_adapter):
    """float32 base, and the same base with the adapter unmerged (PEFT), scored naively."""
    import torch
    from peft import PeftModel

    from personaguard.models import load_model
    from personaguard.models.reference import naive_scores

    prompts, choices = items()
    engine = load_model("bundled:smollm2-135m#dtype=float32")
    base = np.array(naive_scores(engine, prompts, choices))
    unmerged = PeftModel.from_pretrained(engine.model, str(small_adapter)).eval()
    assert next(p for n, p in unmerged.named_parameters() if "lora_A" in n).dtype == torch.float32
    tuned = np.array(naive_scores(engine, prompts, choices, module=unmerged))
    return tuned - base, tuned


def test_adapter_effects_match_the_float32_unmerged_reference(small_adapter, reference):
    prompts, choices = items()
    ref_effect, ref_tuned = reference
    effect, tuned = effects("", small_adapter, prompts, choices)  # the default: float32
    assert np.abs(ref_effect).mean() > 0.01  # the adapter does something to measure
    assert np.corrcoef(effect.ravel(), ref_effect.ravel())[0, 1] >= 0.99
    assert np.mean(tuned.argmax(1) == ref_tuned.argmax(1)) >= 0.99


def test_bf16_would_lose_the_effect(small_adapter, reference):
    """Why float32 is the default: the same check fails at bf16 (kernels round the small delta away)."""
    prompts, choices = items()
    effect, _ = effects("#dtype=bfloat16", small_adapter, prompts, choices)
    assert np.corrcoef(effect.ravel(), reference[0].ravel())[0, 1] < 0.9
