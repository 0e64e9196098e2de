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


@pytest.mark.parametrize(("fixture", "tol"), [("bundled_fp32", 1e-4), ("bundled", 0.0)])
def test_scores_do_not_depend_on_batch_size_or_neighbours(fixture, tol, request):
    model = request.getfixturevalue(fixture)
    prompts, choices = factual_prompts()  # many prompt and choice lengths
    model.batch_size = 1
    one = model.score_choices(prompts, choices)
    model.batch_size = 16
    sixteen = model.score_choices(prompts, choices)
    model.batch_size = 7
    shuffled = model.score_choices(prompts[::-1], choices[::-1])[::-1]
    model.batch_size = 16
    # Row widths depend only on the row, so bf16 is bit-identical and fp32 differs by GEMM blocking.
    for a, b, c in zip(one, sixteen, shuffled):
        assert [s.logprob for s in a] == pytest.approx([s.logprob for s in b], abs=tol, rel=0)
        assert [s.logprob for s in a] == pytest.approx([s.logprob for s in c], abs=tol, rel=0)


@pytest.mark.parametrize("fixture", ["bundled_fp32", "bundled"])
def test_generation_does_not_depend_on_batch_size(fixture, request):
    model = request.getfixturevalue(fixture)
    prompts = [p[:-1] for p in factual_prompts(13)[0]]  # left padding within width buckets
    model.batch_size = 1
    one = model.generate(prompts, max_new_tokens=12)
    model.batch_size = 16
    many = model.generate(prompts, max_new_tokens=12)
    assert one == many
    assert "Canberra" in one[-3]


def test_activations_do_not_depend_on_batch_size(bundled):
    chats = [p[:-1] for p in factual_prompts(24)[0]]
    bundled.batch_size = 1
    one = bundled.activations(chats, layers=[5, 20], span="prompt_avg")
    bundled.batch_size = 16
    many = bundled.activations(chats, layers=[5, 20], span="prompt_avg")
    assert torch.equal(one, many)


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
