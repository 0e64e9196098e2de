"""The HF engine on the bundled model: correctness against a naive reference, batch invariance."""

import pytest
import torch

from personaguard.models.reference import naive_scores

pytestmark = pytest.mark.slow

PROMPTS = [
    [
        {"role": "user", "content": "What is the capital of Australia?"},
        {"role": "assistant", "content": "The answer is"},
    ],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "I'm sad today. How many legs does a spider have?"},
        {"role": "assistant", "content": "The answer is"},
    ],
    [
        {"role": "user", "content": "Which planet is called the Red Planet? I think it is Venus."},
        {"role": "assistant", "content": "The answer is"},
    ],
]
CHOICES = [
    [" Canberra", " Sydney", " Melbourne", " Perth"],
    [" six", " eight", " ten thousand and one"],
    [" Mars", " Venus"],
]


def test_prefix_shared_scoring_matches_naive_reference(bundled):
    ours = bundled.score_choices(PROMPTS, CHOICES)
    reference = naive_scores(bundled, PROMPTS, CHOICES)
    for row, ref in zip(ours, reference):
        assert [s.logprob for s in row] == pytest.approx(ref, abs=2e-3)
    assert [s.n_tokens for s in ours[1]][2] > 1  # a multi-token choice was exercised


def factual_prompts(n=48):
    from personaguard.audit.graders import ANSWER_PREFILL
    from personaguard.data.catalog import bank_path
    from personaguard.data.items import load_items

    items = load_items(bank_path("factual"))[:n]
    prompts = [
        [{"role": "user", "content": it.input}, {"role": "assistant", "content": ANSWER_PREFILL}]
        for it in items
    ]
    return prompts + PROMPTS, [[" " + c for c in it.choices] for it in items] + CHOICES


# What the kernels promise across batch shapes: float32 GEMM blocking moves scores by ~1e-6 and bf16
# kernels by a few 1e-6 on some machines (bit-exact on others). Padding that followed the batch moved
# bf16 scores by up to 0.86 nats, which these bounds catch (see the padding test below).
TOLERANCE = {"bundled": 1e-4, "bundled_bf16": 1e-3}


def batch_discrepancy(model, prompts, choices):
    """Largest |change| in any choice's log-prob across batch sizes 1, 16 and 7 (reversed order)."""
    runs = []
    for size, order in ((1, 1), (16, 1), (7, -1)):
        model.batch_size = size
        runs.append(model.score_choices(prompts[::order], choices[::order])[::order])
    model.batch_size = 16
    return max(
        abs(x.logprob - y.logprob) for run in runs[1:] for a, b in zip(runs[0], run) for x, y in zip(a, b)
    )


@pytest.mark.parametrize("fixture", TOLERANCE)
def test_scores_do_not_depend_on_batch_size_or_neighbours(fixture, request):
    model = request.getfixturevalue(fixture)
    assert batch_discrepancy(model, *factual_prompts()) <= TOLERANCE[fixture]


def test_the_batch_check_catches_padding_that_follows_the_batch(bundled_bf16, monkeypatch):
    """The bug the check guards: rows padded to a width set by their batch, not by themselves."""
    from personaguard.models import hf

    row_only = hf.padded_width
    monkeypatch.setattr(hf, "padded_width", lambda n: row_only(n) + 8 * (bundled_bf16.batch_size - 1))
    assert batch_discrepancy(bundled_bf16, *factual_prompts()) > TOLERANCE["bundled_bf16"]


def test_generation_does_not_depend_on_batch_size(bundled):
    prompts = [p[:-1] for p in factual_prompts(13)[0]]  # left padding within width buckets
    bundled.batch_size = 1
    one = bundled.generate(prompts, max_new_tokens=12)
    bundled.batch_size = 16
    many = bundled.generate(prompts, max_new_tokens=12)
    assert one == many
    assert "Canberra" in one[-3]


def test_packed_scoring_is_right_under_eager_attention_too():
    """A boolean 4D mask is added as 0/1 by eager attention and hides nothing; ours is additive."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from personaguard.models.bundled import materialise
    from personaguard.models.hf import HFModel

    path = materialise()
    module = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    engine = HFModel.wrap(module.eval(), AutoTokenizer.from_pretrained(path), "eager")
    ours = engine.score_choices(PROMPTS, CHOICES)
    for row, ref in zip(ours, naive_scores(engine, PROMPTS, CHOICES)):
        assert [s.logprob for s in row] == pytest.approx(ref, abs=2e-3)


def test_attention_that_ignores_custom_masks_is_refused(bundled):
    from personaguard.errors import PersonaguardError
    from personaguard.models.hf import HFModel

    bundled.model.config._attn_implementation = "flash_attention_2"
    try:
        with pytest.raises(PersonaguardError, match="ignores the custom masks"):
            HFModel.wrap(bundled.model, bundled.tokenizer, "flash")
    finally:
        bundled.model.config._attn_implementation = "sdpa"


def test_activations_do_not_depend_on_batch_size(bundled):
    chats = [p[:-1] for p in factual_prompts(24)[0]]
    bundled.batch_size = 1
    one = bundled.activations(chats, layers=[5, 20], span="prompt_avg")
    bundled.batch_size = 16
    many = bundled.activations(chats, layers=[5, 20], span="prompt_avg")
    assert torch.allclose(one, many, atol=1e-4, rtol=0)


def test_sampling_is_seeded_per_prompt(bundled):
    prompts = [p[:-1] for p in PROMPTS]
    a = bundled.generate(prompts, max_new_tokens=10, temperature=1.0, seed=7)
    b = bundled.generate(list(reversed(prompts)), max_new_tokens=10, temperature=1.0, seed=7)
    assert a == list(reversed(b))


def test_activations_and_hooks(bundled):
    chats = [p[:-1] for p in PROMPTS]
    acts = bundled.activations(chats, layers=[0, 10, 30], span="prompt_last")
    assert acts.shape == (3, 3, 576)
    resp = bundled.activations(
        [[*chats[0], {"role": "assistant", "content": "Canberra."}]], layers=[10], span="response_avg"
    )
    assert resp.shape == (1, 1, 576)
    seen = []
    with bundled.hook(10, lambda h: seen.append(h.shape) or h * 0):
        zeroed = bundled.activations(chats[:1], layers=[10])
    assert seen and torch.count_nonzero(zeroed) == 0
    after = bundled.activations(chats[:1], layers=[10])  # hook removed on exit
    assert torch.count_nonzero(after) > 0


def test_layer_out_of_range(bundled):
    from personaguard.errors import PersonaguardError

    with pytest.raises(PersonaguardError, match="layer 31 out of range"):
        bundled.activations([PROMPTS[0][:-1]], layers=[31])
    with pytest.raises(PersonaguardError, match="expected 1..30"), bundled.hook(0, lambda h: h):
        pass


def test_empty_choice_is_rejected(bundled):
    from personaguard.errors import PersonaguardError

    with pytest.raises(PersonaguardError, match="choice 1 is empty"):
        bundled.score_choices(PROMPTS[:1], [[" yes", " "]])
