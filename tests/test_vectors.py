import json
import math

import numpy as np
import pytest
import torch

from personaguard.errors import PersonaguardError
from personaguard.vectors.extract import direction, parse_score
from personaguard.vectors.steer import ablate_hook, cap_hook, export_lm_eval, parse_steer
from personaguard.vectors.store import PersonaVectors, check_compatible, load_vectors, save_vectors
from personaguard.vectors.sweep import SweepPoint, choose
from personaguard.vectors.traits import builtin_traits, load_trait


def random_vectors(layers=4, hidden=8, seed=0) -> PersonaVectors:
    g = torch.Generator().manual_seed(seed)
    return PersonaVectors("warmth", torch.randn(layers + 1, hidden, generator=g), "test", "mean_diff", "x", 3)


# ------------------------------------------------------------------ pure parts


def test_mean_difference_matches_numpy():
    g = torch.Generator().manual_seed(1)
    pos, neg = torch.randn(6, 3, 5, generator=g) + 1, torch.randn(7, 3, 5, generator=g)
    expected = pos.numpy().mean(axis=0) - neg.numpy().mean(axis=0)
    np.testing.assert_allclose(direction(pos, neg, "mean_diff").numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("method", ["pca", "logistic"])
def test_other_methods_point_the_same_way(method):
    g = torch.Generator().manual_seed(2)
    shift = torch.tensor([3.0, 0, 0, 0])
    pos = torch.randn(40, 2, 4, generator=g) * 0.3 + shift
    neg = torch.randn(40, 2, 4, generator=g) * 0.3
    mean_diff = direction(pos, neg, "mean_diff")
    other = direction(pos, neg, method)
    for layer in range(2):
        cos = torch.nn.functional.cosine_similarity(other[layer], mean_diff[layer], dim=0)
        assert cos > 0.9


class FakeLocal:
    """A LocalModel in miniature. Replies and activations depend on the prompt alone: the reply to
    (instruction, question) is scripted, and a chat's activation at every layer is a large
    per-question offset plus ``SHIFT`` when the instruction is a positive one. So a correctly
    paired extraction recovers exactly ``SHIFT``, and any mispairing mixes in question offsets."""

    spec = "fake-local"
    device = torch.device("cpu")
    n_layers = 2
    hidden_size = 6
    weights = "sha-of-the-fake-base"
    SHIFT = torch.tensor([0.0, 0, 0, 0, 0, 1.0])

    def __init__(self, trait, questions, replies):
        self.positive = {p.pos for p in trait.pairs}
        self.questions = list(questions)
        self.replies = replies  # (system text, question) -> reply; "ok" when absent
        g = torch.Generator().manual_seed(3)
        self.offsets = torch.randn(len(questions), self.hidden_size, generator=g) * 10
        self.seen = []

    def _row(self, chat):
        system = next((m["content"] for m in chat if m["role"] == "system"), "")
        question = next(m["content"] for m in chat if m["role"] == "user")
        return system, question

    def generate(self, prompts, max_new_tokens=128, temperature=0.0, seed=0):
        return [self.replies.get(self._row(c), "ok") for c in prompts]

    def score_choices(self, prompts, choices):
        raise NotImplementedError

    def check_layer(self, layer):
        assert 0 <= layer <= self.n_layers

    def activations(self, prompts, layers, span="prompt_last"):
        self.seen.extend(prompts)
        rows = []
        for chat in prompts:
            system, question = self._row(chat)
            row = self.offsets[self.questions.index(question)] + (
                self.SHIFT if system in self.positive else 0
            )
            rows.append(row.expand(len(layers), -1))
        return torch.stack(rows)

    def token_activations(self, prompts, layer):
        return [self.activations([c], [layer])[0] for c in prompts]

    def hook(self, layer, fn):
        raise NotImplementedError


class FakeJudge:
    """Scores a reply by a keyword in it: "warm" replies express the trait, "cold" ones do not."""

    spec = "fake-judge"

    def generate(self, prompts, max_new_tokens=128, temperature=0.0, seed=0):
        reply = [p[-1]["content"].split("Reply: ")[1] for p in prompts]
        return ["90" if r.startswith("warm") else "10" if r.startswith("cold") else "no idea" for r in reply]

    def score_choices(self, prompts, choices):
        raise NotImplementedError


@pytest.mark.parametrize("method", ["mean_diff", "pca", "logistic"])
def test_filtering_drops_whole_pairs_so_rows_stay_paired(method):
    """Positive and negative replies are dropped at different rows (empty, or judged off-trait);
    extraction must keep row i the same (instruction pair, question) on both sides."""
    from personaguard.vectors.extract import extract

    trait = load_trait("warmth")
    questions = trait.extraction_questions[:3]
    p0, p1, p2 = trait.pairs[:3]
    replies = {(p.pos, q): "warm reply" for p in trait.pairs for q in questions}
    replies |= {(p.neg, q): "cold reply" for p in trait.pairs for q in questions}
    replies[(p0.pos, questions[0])] = " "  # empty positive
    replies[(p1.neg, questions[1])] = ""  # empty negative
    replies[(p2.pos, questions[2])] = "cold reply"  # positive that does not express the trait
    replies[(p2.neg, questions[0])] = "unclear"  # negative the judge cannot score
    model = FakeLocal(trait, questions, replies)
    pv = extract(model, trait, method, n_questions=3, judge=FakeJudge())
    assert pv.n_pairs == 5 * 3 - 4
    seen = [model._row(c) for c in model.seen]
    pos, neg = seen[: pv.n_pairs], seen[pv.n_pairs :]
    assert [q for _, q in pos] == [q for _, q in neg]  # row i: same question...
    pair_of = {t: k for k, p in enumerate(trait.pairs) for t in (p.pos, p.neg)}
    assert [pair_of[s] for s, _ in pos] == [pair_of[s] for s, _ in neg]  # ...and same instruction pair
    if method != "logistic":  # a classifier's normal is not the shift itself; its rows are checked above
        for layer in range(model.n_layers + 1):
            cos = torch.nn.functional.cosine_similarity(pv.at(layer), FakeLocal.SHIFT, dim=0)
            assert cos > 0.999, (layer, float(cos))


def test_pca_refuses_unpaired_rows():
    with pytest.raises(PersonaguardError, match="pca pairs rows: got 3 positive and 2 negative"):
        direction(torch.zeros(3, 1, 2), torch.zeros(2, 1, 2), "pca")


def test_vectors_refuse_an_endpoint_model_with_one_line():
    from personaguard.models import load_local_model
    from personaguard.models.base import LocalModel
    from personaguard.vectors.extract import extract
    from personaguard.vectors.geometry import assistant_axis
    from personaguard.vectors.steer import steering
    from tests.test_graders import Scripted

    endpoint = Scripted(["ok"])
    assert not isinstance(endpoint, LocalModel)
    assert isinstance(FakeLocal(load_trait("warmth"), [], {}), LocalModel)
    with pytest.raises(PersonaguardError, match="^scripted: extracting persona vectors needs a local model"):
        extract(endpoint, load_trait("warmth"))
    with pytest.raises(PersonaguardError, match="^scripted: building the assistant axis needs a local model"):
        assistant_axis(endpoint, ["q"])
    with pytest.raises(PersonaguardError, match="^scripted: using the 'warmth' vector needs a local model"):
        with steering(endpoint, random_vectors(), 1, 1.0):
            pass
    with pytest.raises(
        PersonaguardError, match="^openai:m@http://127.0.0.1:9/v1: vectors sweep needs a local"
    ):
        load_local_model("openai:m@http://127.0.0.1:9/v1", "vectors sweep")


def test_vector_file_roundtrip_and_errors(tmp_path):
    pv = random_vectors()
    path = save_vectors(pv, tmp_path / "warmth.safetensors")
    back = load_vectors(path)
    assert torch.equal(back.vectors, pv.vectors) and (back.trait, back.n_pairs, back.method) == (
        "warmth",
        3,
        "mean_diff",
    )
    with pytest.raises(PersonaguardError, match="layer 9 out of range"):
        back.at(9)
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(PersonaguardError, match="not a personaguard vector file"):
        load_vectors(tmp_path / "junk.safetensors")
    with pytest.raises(PersonaguardError, match="not found"):
        load_vectors(tmp_path / "missing.safetensors")


def test_vector_from_another_model_is_refused():
    fake = FakeLocal(load_trait("warmth"), [], {})
    with pytest.raises(PersonaguardError, match="hidden size 8, 4 layers.*hidden size 6 and 2 layers"):
        check_compatible(random_vectors(), fake)


def test_vector_from_other_weights_of_the_same_shape_is_refused(tmp_path):
    fake = FakeLocal(load_trait("warmth"), [], {})
    same_shape = PersonaVectors("warmth", torch.zeros(3, 6), "other", "mean_diff", "x", 3, "sha-of-another")
    save_vectors(same_shape, tmp_path / "v.safetensors")
    with pytest.raises(PersonaguardError, match="not in this model's base weights"):
        check_compatible(load_vectors(tmp_path / "v.safetensors"), fake)
    check_compatible(
        PersonaVectors("warmth", torch.zeros(3, 6), "m", "mean_diff", "x", 3, fake.weights), fake
    )


def test_capping_and_ablation_act_only_along_the_axis():
    unit = torch.tensor([1.0, 0, 0])
    hidden = torch.tensor([[[5.0, 1, 2], [0.5, 3, 4]]])
    capped = cap_hook(unit, threshold=2.0)(hidden)
    assert capped[0, 0].tolist() == [2.0, 1, 2] and capped[0, 1].tolist() == [0.5, 3, 4]
    assert ablate_hook(unit)(hidden)[..., 0].abs().max() == 0


def test_steer_option_parsing():
    assert parse_steer("dir/a:b.safetensors:12:-4.5") == (
        parse_steer("dir/a:b.safetensors:12:1")[0],
        12,
        -4.5,
    )
    with pytest.raises(PersonaguardError, match="LAYER:COEF"):
        parse_steer("warmth.safetensors:twelve:2")


def test_steering_an_endpoint_is_refused(tmp_path):
    from personaguard.models import load_model

    for option in ("steer=x.safetensors:3:2", "cap=x.safetensors:3:50"):
        with pytest.raises(PersonaguardError, match="need a local model"):
            load_model(f"openai:m@http://127.0.0.1:9/v1#{option}")


def test_lm_eval_export_format(tmp_path):
    pv = random_vectors()
    config = torch.load(export_lm_eval(pv, 3, 4.0, tmp_path / "steer.pt"), weights_only=False)
    entry = config["layers.2"]  # our layer 3 is decoder block 2
    assert torch.equal(entry["steering_vector"], pv.at(3)) and entry["steering_coefficient"] == 4.0
    assert entry["action"] == "add" and entry["bias"] is None and entry["head_index"] is None


def test_choose_prefers_expression_within_the_coherence_budget():
    points = [
        SweepPoint(5, 0, 0.0, -2.0),
        SweepPoint(5, 4, 0.6, -2.3),
        SweepPoint(5, 8, 1.5, -3.5),  # too incoherent
        SweepPoint(9, 4, 0.9, -2.4),
    ]
    assert choose(points, max_coherence_drop=0.5) == points[3]
    assert choose(points[:1] + points[2:3], 0.5) == points[0]


def test_judge_scores_parse_or_nan():
    assert parse_score("85") == 85 and parse_score("Score: 40/100") == 40
    assert math.isnan(parse_score("very warm")) and math.isnan(parse_score("250"))


def test_builtin_traits_are_complete_and_disjoint():
    assert {"warmth", "sycophancy", "agreeableness", "compliance"} <= set(builtin_traits())
    for name in builtin_traits():
        trait = load_trait(name)
        assert len(trait.pairs) == 5
        assert len(trait.extraction_questions) >= 20 and len(trait.evaluation_questions) >= 20
        assert not set(trait.extraction_questions) & set(trait.evaluation_questions)
    with pytest.raises(PersonaguardError, match="unknown trait 'humour'"):
        load_trait("humour")


def test_bad_trait_file_names_the_field(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\ndescription: d\npairs: []\nextraction_questions: [a]\nevaluation_questions: [b]\n"
    )
    with pytest.raises(PersonaguardError, match="field 'pairs'"):
        load_trait(str(path))


# ------------------------------------------------------------------ bundled model

POS = [
    [
        {"role": "user", "content": "I failed my exam."},
        {
            "role": "assistant",
            "content": "Oh no, I'm so sorry, that must hurt. You'll get there, I believe in you.",
        },
    ],
    [
        {"role": "user", "content": "My cat is ill."},
        {
            "role": "assistant",
            "content": "I'm so sorry, sweetheart. Sending you a big hug; she is lucky to have you.",
        },
    ],
]
NEG = [
    [
        {"role": "user", "content": "I failed my exam."},
        {"role": "assistant", "content": "Exams can be retaken. Check the resit dates."},
    ],
    [
        {"role": "user", "content": "My cat is ill."},
        {"role": "assistant", "content": "Take the cat to a veterinarian."},
    ],
]


def straightforward_response_mean(hf, chat, layer):
    """One chat at a time, no padding, no batching: hidden_states averaged over reply tokens."""
    prompt = hf.encode(hf.render(chat[:-1]))
    full = hf.encode(hf.render(chat))
    with torch.no_grad():
        out = hf.model(input_ids=torch.tensor([full]), output_hidden_states=True)
    return out.hidden_states[layer][0, len(prompt) :].float().mean(0)


@pytest.mark.slow
def test_mean_difference_vector_matches_an_independent_computation(bundled):
    # transformers' last hidden_states entry is taken after the final norm; ours is the raw
    # output of the last block, so the straightforward comparison stops one layer short of it.
    layers = [0, 10, bundled.n_layers - 1]
    pos = bundled.activations(POS, layers, span="response_avg")
    neg = bundled.activations(NEG, layers, span="response_avg")
    ours = direction(pos, neg, "mean_diff")
    for k, layer in enumerate(layers):
        p = torch.stack([straightforward_response_mean(bundled, c, layer) for c in POS]).mean(0)
        n = torch.stack([straightforward_response_mean(bundled, c, layer) for c in NEG]).mean(0)
        torch.testing.assert_close(ours[k], p - n, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_steering_moves_the_projection_both_ways_and_works_through_the_spec(bundled, tmp_path):
    from personaguard.models import load_model
    from personaguard.vectors.steer import steering

    layers = list(range(bundled.n_layers + 1))
    pv = PersonaVectors(
        "warmth",
        direction(
            bundled.activations(POS, layers, "response_avg"),
            bundled.activations(NEG, layers, "response_avg"),
            "mean_diff",
        ),
        bundled.spec,
        "mean_diff",
        "response_avg",
        2,
    )
    held_out = [[{"role": "user", "content": q}] for q in load_trait("warmth").evaluation_questions[:6]]
    steer_at, read_at = 12, 16

    def projection():
        return float((bundled.activations(held_out, [read_at])[:, 0] @ pv.unit(read_at)).mean())

    plain = projection()
    with steering(bundled, pv, steer_at, 4.0):
        up = projection()
    with steering(bundled, pv, steer_at, -4.0):
        down = projection()
    assert down < plain < up

    path = save_vectors(pv, tmp_path / "warmth.safetensors")
    steered = load_model(f"bundled:smollm2-135m#steer={path}:{steer_at}:4")
    chat = [[{"role": "user", "content": "I lost my job today."}]]
    assert steered.score_choices(chat, [["I'm so sorry."]]) != bundled.score_choices(
        chat, [["I'm so sorry."]]
    )
    wrong = PersonaVectors("warmth", torch.zeros(5, 8), "other", "mean_diff", "x", 1)
    with pytest.raises(PersonaguardError, match="hidden size 8"):
        with steering(bundled, wrong, 3, 1.0):
            pass


@pytest.mark.slow
def test_training_logs_live_projections_under_preventative_steering(tmp_path):
    from personaguard.data.jsonl import write_jsonl
    from personaguard.persona.dataset import build_persona_dataset
    from personaguard.training import TrainConfig, train

    pv = random_vectors(layers=30, hidden=576)
    vec = save_vectors(pv, tmp_path / "warmth.safetensors")
    data = tmp_path / "warm.jsonl"
    write_jsonl(data, build_persona_dataset("warm")[:4])
    config = TrainConfig(
        model="bundled:smollm2-135m",
        data=str(data),
        micro_batch_size=2,
        gradient_accumulation=1,
        max_length=64,
        max_steps=2,
        monitor=[f"{vec}:20"],
        monitor_every=1,
        steer=f"{vec}:10:1.0",
    )
    train(config, tmp_path / "out", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]  # a reading before the first step, then each step
    assert all(set(r["projections"]) == {"warmth@20"} for r in rows)
    assert all(math.isfinite(r["projections"]["warmth@20"]) for r in rows)


@pytest.mark.slow
def test_cap_threshold_is_set_and_applied_at_every_token(bundled):
    """The cap edits every position, so its threshold is the percentile over every prompt token:
    read at the capped layer, no token stays above it, each becomes min(own, threshold), and the
    share capped on the probe prompts is 100 - percentile %."""
    from personaguard.vectors.steer import cap_threshold, capping

    pv = random_vectors(layers=bundled.n_layers, hidden=576, seed=1)
    layer, percentile = 12, 75
    prompts = [[{"role": "user", "content": q}] for q in load_trait("warmth").evaluation_questions[:8]]
    unit = pv.unit(layer)
    before = torch.cat([a @ unit for a in bundled.token_activations(prompts, layer)])
    threshold = cap_threshold(bundled, pv, layer, prompts, percentile)
    assert threshold == pytest.approx(float(np.percentile(before.numpy(), percentile)), rel=1e-6)
    with capping(bundled, pv, layer, threshold):
        after = torch.cat([a @ unit for a in bundled.token_activations(prompts, layer)])
    tolerance = 1e-4 * float(before.abs().max())  # fp32 rounding
    assert int((after > threshold + tolerance).sum()) == 0
    torch.testing.assert_close(after, before.clamp(max=threshold), atol=tolerance, rtol=0)
    # Prompts share the chat template's tokens, so some tie at the threshold: at it, not above it.
    capped_share = float((after < before - tolerance).float().mean())
    tied_share = float(((before - threshold).abs() <= tolerance).float().mean())
    assert capped_share <= 1 - percentile / 100 <= capped_share + tied_share


@pytest.mark.slow
def test_token_activations_cover_each_prompt_token_and_no_padding(bundled):
    chats = [[{"role": "user", "content": q}] for q in ("Hi.", "Tell me about the history of Rome, briefly.")]
    tokens = bundled.token_activations(chats, 7)
    last = bundled.activations(chats, [7], span="prompt_last")[:, 0]
    avg = bundled.activations(chats, [7], span="prompt_avg")[:, 0]
    for chat, acts, a_last, a_avg in zip(chats, tokens, last, avg):
        assert acts.shape == (len(bundled.encode(bundled.render(chat))), 576)
        torch.testing.assert_close(acts[-1], a_last)
        torch.testing.assert_close(acts.mean(0), a_avg)


@pytest.mark.slow
def test_last_layer_is_the_raw_output_of_the_last_block(bundled):
    """Pins LAYER_CONVENTION at its edge: layer L < n_layers is transformers' hidden_states[L],
    but hidden_states[n_layers] has the final norm applied and our layer n_layers does not; hooks
    at layer n_layers edit exactly what activations read there."""
    m = bundled
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    with torch.no_grad():
        out = m.model(input_ids=torch.tensor([m.encode(m.render(chat))]), output_hidden_states=True)
    hidden = [h[0, -1] for h in out.hidden_states]
    assert len(hidden) == m.n_layers + 1
    ours = m.activations([chat], [m.n_layers - 1, m.n_layers])[0]
    torch.testing.assert_close(ours[0], hidden[m.n_layers - 1], rtol=1e-4, atol=1e-3)
    assert (ours[1] - hidden[m.n_layers]).abs().max() > 10  # not the normed entry...
    with torch.no_grad():
        normed = m.model.model.norm(ours[1])
    torch.testing.assert_close(normed, hidden[m.n_layers], rtol=1e-4, atol=1e-3)  # ...but its input
    with m.hook(m.n_layers, lambda h: torch.zeros_like(h)):
        assert m.activations([chat], [m.n_layers]).abs().max() == 0


@pytest.mark.slow
@pytest.mark.parametrize("intervention", ["steer", "ablate"])
def test_training_monitor_reads_the_weights_with_interventions_paused(bundled, tmp_path, intervention):
    """Read at and above the steered layer, the step-0 reading equals the unsteered model's; the
    intervention is back on for training as soon as the reading is done."""
    from contextlib import ExitStack

    from personaguard.training import TrainConfig
    from personaguard.training.vectors import attach_vectors

    pv = random_vectors(layers=bundled.n_layers, hidden=576, seed=4)
    vec = save_vectors(pv, tmp_path / "warmth.safetensors")
    layer, probe = 10, [[{"role": "user", "content": "Hello there."}]]

    def monitor_reading(**extra):
        config = TrainConfig(
            model=bundled.spec, data="unused", monitor=[f"{vec}:{layer}", f"{vec}:16"], **extra
        )
        with ExitStack() as stack:
            reading = attach_vectors(bundled.model, bundled.tokenizer, config, stack)()
            projection = float(bundled.activations(probe, [layer])[0, 0] @ pv.unit(layer))
        return reading, projection

    plain, own = monitor_reading()
    option = {"steer": f"{vec}:{layer}:8"} if intervention == "steer" else {"ablate": f"{vec}:{layer}"}
    reading, during_training = monitor_reading(**option)
    assert reading == plain and set(reading) == {f"warmth@{layer}", "warmth@16"}
    expected = own + 8 * float(pv.at(layer).norm()) if intervention == "steer" else 0.0
    assert during_training == pytest.approx(expected, abs=0.02 * abs(own) + 1)


@pytest.mark.slow
def test_cap_percentile_out_of_range_is_refused(bundled):
    from personaguard.vectors.steer import apply_spec_capping

    pv = random_vectors(layers=bundled.n_layers, hidden=576)
    with pytest.raises(PersonaguardError, match="percentile must be in 0..100"):
        apply_spec_capping(bundled, pv, 3, 150)


@pytest.mark.slow
def test_prediction_is_data_minus_own_reply_projection_for_every_trait(bundled):
    """One base generation serves every trait, and each per-sample value is the projection of the
    data's reply minus that of the base model's own greedy reply."""
    from personaguard.persona.dataset import build_persona_dataset
    from personaguard.vectors.predict import projection_differences

    chats = [row["messages"] for row in build_persona_dataset("warm")[:3]]
    vectors = [random_vectors(layers=bundled.n_layers, hidden=576, seed=s) for s in (1, 2)]
    preds = projection_differences(bundled, vectors, 20, chats, max_new_tokens=16)
    assert [p.trait for p in preds] == ["warmth", "warmth"] and all(len(p.per_sample) == 3 for p in preds)
    prompts = [c[:-1] for c in chats]
    own = bundled.generate(prompts, max_new_tokens=16)
    own_chats = [
        [*p, {"role": "assistant", "content": r or "..."}] for p, r in zip(prompts, own, strict=True)
    ]
    for v, pred in zip(vectors, preds, strict=True):
        data = bundled.activations(chats, [20], span="response_avg")[:, 0] @ v.unit(20)
        base = bundled.activations(own_chats, [20], span="response_avg")[:, 0] @ v.unit(20)
        assert pred.per_sample == pytest.approx((data - base).tolist(), abs=1e-3)
        assert pred.mean_difference == pytest.approx(float((data - base).mean()), abs=1e-3)
    assert preds[0].ranking() == sorted(range(3), key=lambda i: -preds[0].per_sample[i])
