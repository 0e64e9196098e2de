"""The HF engine on the bundled model: correctness against a naive reference, batch invariance."""

import pytest
import torch

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


def naive_scores(model, prompts, choices):
    """One full forward per (prompt, choice), no cache, no batching: the reference."""
    out = []
    for chat, row in zip(prompts, choices):
        context = model.render(chat)
        scores = []
        for choice in row:
            ctx = model.encode(context)
            cont = model.encode(context + choice)[len(ctx) :]
            ids = torch.tensor([ctx + cont])
            with torch.no_grad():
                logp = torch.log_softmax(model.model(input_ids=ids).logits.float(), -1)[0]
            scores.append(sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)))
        out.append(scores)
    return out


def test_prefix_shared_scoring_matches_naive_reference(bundled_fp32):
    ours = bundled_fp32.score_choices(PROMPTS, CHOICES)
    reference = naive_scores(bundled_fp32, PROMPTS, CHOICES)
    for row, ref in zip(ours, reference):
        assert [s.logprob for s in row] == pytest.approx(ref, abs=2e-3)
    assert [s.n_tokens for s in ours[1]][2] > 1  # a multi-token choice was exercised


@pytest.mark.parametrize("fixture", ["bundled_fp32", "bundled"])
def test_scores_do_not_depend_on_batch_size(fixture, request):
    model = request.getfixturevalue(fixture)
    prompts = PROMPTS * 6  # 18 prompts of three lengths
    choices = CHOICES * 6
    model.batch_size = 1
    one = model.score_choices(prompts, choices)
    model.batch_size = 16
    sixteen = model.score_choices(prompts, choices)
    # No padding is ever used, so rows differ only by GEMM blocking (fp32: ~1e-6; bf16: exact).
    for a, b in zip(one, sixteen):
        assert [s.logprob for s in a] == pytest.approx([s.logprob for s in b], abs=1e-4)
        assert [s.n_tokens for s in a] == [s.n_tokens for s in b]


def test_generation_does_not_depend_on_batch_size(bundled_fp32):
    prompts = [p[:-1] for p in PROMPTS] * 3
    bundled_fp32.batch_size = 1
    one = bundled_fp32.generate(prompts, max_new_tokens=12)
    bundled_fp32.batch_size = 16
    many = bundled_fp32.generate(prompts, max_new_tokens=12)
    assert one == many
    assert "Canberra" in one[0]


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
