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
    fake = type(
        "M", (), {"n_layers": 30, "model": type("X", (), {"config": type("C", (), {"hidden_size": 576})})}
    )
    with pytest.raises(PersonaguardError, match="hidden size 8, 4 layers.*hidden size 576 and 30 layers"):
        check_compatible(random_vectors(), fake)


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
def test_mean_difference_vector_matches_an_independent_computation(bundled_fp32):
    # transformers' last hidden_states entry is taken after the final norm; ours is the raw
    # output of the last block, so the straightforward comparison stops one layer short of it.
    layers = [0, 10, bundled_fp32.n_layers - 1]
    pos = bundled_fp32.activations(POS, layers, span="response_avg")
    neg = bundled_fp32.activations(NEG, layers, span="response_avg")
    ours = direction(pos, neg, "mean_diff")
    for k, layer in enumerate(layers):
        p = torch.stack([straightforward_response_mean(bundled_fp32, c, layer) for c in POS]).mean(0)
        n = torch.stack([straightforward_response_mean(bundled_fp32, c, layer) for c in NEG]).mean(0)
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
def test_capping_through_the_spec_holds_projections_at_the_percentile(bundled, tmp_path):
    """The cap acts at the layer it reads, so each projection becomes min(own, threshold)."""
    from personaguard.models import load_model

    pv = random_vectors(layers=bundled.n_layers, hidden=576, seed=1)
    path = save_vectors(pv, tmp_path / "warmth.safetensors")
    layer = 12
    prompts = [[{"role": "user", "content": q}] for q in load_trait("warmth").evaluation_questions]
    before = bundled.activations(prompts, [layer])[:, 0] @ pv.unit(layer)
    threshold = float(np.percentile(before.numpy(), 25))
    capped = load_model(f"bundled:smollm2-135m#cap={path}:{layer}:25")
    after = capped.activations(prompts, [layer])[:, 0] @ pv.unit(layer)
    assert int((before > threshold + 1e-3).sum()) >= len(prompts) // 2  # the cap bites on most prompts
    tolerance = 0.01 * float(before.abs().max()) + 0.05  # bf16 hidden states
    assert torch.allclose(after, before.clamp(max=threshold), atol=tolerance)


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
