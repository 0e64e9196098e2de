import json
import math

import numpy as np
import pytest

from personaguard.errors import PersonaguardError
from personaguard.models.base import ChoiceScore
from personaguard.persona.warmth import (
    MAX_CHARS,
    WarmthPhrases,
    describe_shift,
    last_exchange,
    load_phrases,
    log_mean_exp,
    paired_shift,
    score_conversations,
    score_file,
    summarise,
    warmth_scores,
)

PHRASES = WarmthPhrases(warm=("Oh, dear friend,", "Sweetheart,"), cold=("To whom it may concern:",))


class FakeModel:
    """Returns a log-prob from a table keyed by (opener, choice) and records every call."""

    spec = "fake:warmth"

    def __init__(self, table):
        self.table = table
        self.calls = []

    def score_choices(self, prompts, choices):
        self.calls.append((prompts, choices))
        return [
            [ChoiceScore(self.table[(p[-1]["content"], c)], 3) for c in row]
            for p, row in zip(prompts, choices, strict=True)
        ]

    def generate(self, prompts, max_new_tokens=128, temperature=0.0, seed=0):
        raise AssertionError("warmth never generates")


def test_log_mean_exp_is_stable_and_exact():
    assert log_mean_exp(np.array([-1000.0, -1000.0])) == pytest.approx(-1000.0)
    assert log_mean_exp(np.array([math.log(1), math.log(3)])) == pytest.approx(math.log(2))


def test_score_is_log_ratio_of_mean_probabilities():
    table = {
        ("Oh, dear friend,", " Hi."): -400.0,
        ("Sweetheart,", " Hi."): -402.0,
        ("To whom it may concern:", " Hi."): -405.0,
    }
    [score] = warmth_scores(FakeModel(table), ["hello"], ["Hi."], PHRASES)
    expected = math.log((math.exp(-400.0 + 400) + math.exp(-402.0 + 400)) / 2) - 400 - (-405.0)
    assert score == pytest.approx(expected)


def test_prompt_shape_truncation_and_single_call():
    long_reply = "  " + "x" * (MAX_CHARS + 50)
    replies = ["Fine.", long_reply]
    table = {(w, " " + r.strip()[:MAX_CHARS]): -1.0 for w in (*PHRASES.warm, *PHRASES.cold) for r in replies}
    model = FakeModel(table)
    scores = warmth_scores(model, ["q1", "q2"], replies, PHRASES)
    assert scores == pytest.approx([0.0, 0.0])
    assert len(model.calls) == 1
    prompts, choices = model.calls[0]
    assert len(prompts) == 2 * 3
    assert prompts[0] == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "Oh, dear friend,"},
    ]
    assert [p[-1]["content"] for p in prompts[3:]] == [*PHRASES.warm, *PHRASES.cold]
    assert all(p[0]["content"] == "q2" for p in prompts[3:])
    assert choices[0] == [" Fine."]
    assert choices[3] == [" " + "x" * MAX_CHARS]


def test_rows_are_scored_independently():
    table = {
        ("Oh, dear friend,", " a"): -1.0,
        ("Sweetheart,", " a"): -1.0,
        ("To whom it may concern:", " a"): -3.0,
        ("Oh, dear friend,", " b"): -5.0,
        ("Sweetheart,", " b"): -5.0,
        ("To whom it may concern:", " b"): -2.0,
    }
    assert warmth_scores(FakeModel(table), ["u", "u"], ["a", "b"], PHRASES) == pytest.approx([2.0, -3.0])


def test_bad_inputs():
    model = FakeModel({})
    with pytest.raises(PersonaguardError, match="reply 1 is empty"):
        warmth_scores(model, ["u", "u"], ["ok", "  "], PHRASES)
    with pytest.raises(PersonaguardError, match="2 user turns but 1 replies"):
        warmth_scores(model, ["u", "u"], ["ok"], PHRASES)
    assert warmth_scores(model, [], [], PHRASES) == []
    assert model.calls == []


def test_conversations_use_last_assistant_turn_and_its_user_turn(tmp_path):
    chat = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "unanswered"},
    ]
    assert last_exchange(chat) == ("second", "two")
    table = {(w, c): -1.0 for w in (*PHRASES.warm, *PHRASES.cold) for c in (" two", " hi")}
    model = FakeModel(table)
    assert score_conversations(model, [chat], PHRASES) == [0.0]
    assert model.calls[0][0][0][0]["content"] == "second"

    path = tmp_path / "data.jsonl"
    rows = [chat, [{"role": "user", "content": "u"}, {"role": "assistant", "content": "hi"}]]
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows))
    assert score_file(model, path, limit=1, phrases=PHRASES) == [0.0]
    assert len(score_file(model, path, phrases=PHRASES)) == 2


def test_builtin_phrases():
    phrases = load_phrases()
    for side in (phrases.warm, phrases.cold):
        assert 8 <= len(side) <= 12
        assert all(p.strip() == p and p for p in side)
    assert not set(phrases.warm) & set(phrases.cold)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping with lists 'warm' and 'cold'"),
        ("warm: [a]\n", "field 'cold': expected a non-empty list of strings"),
        ("warm: []\ncold: [b]\n", "field 'warm': expected a non-empty list of strings"),
        ("warm: a\ncold: [b]\n", "field 'warm': expected a non-empty list of strings"),
        ("warm: [a, 3]\ncold: [b]\n", r"field 'warm\[1\]': expected non-empty text"),
        ("warm: [a]\ncold: ['  ']\n", r"field 'cold\[0\]': expected non-empty text"),
        ("warm: [a]\ncold: [b]\nneutral: [c]\n", "field 'neutral': unknown"),
        ("warm: [a\ncold: [b]\n", "invalid YAML"),
    ],
)
def test_phrase_file_errors_name_file_and_field(tmp_path, text, message):
    path = tmp_path / "phrases.yaml"
    path.write_text(text)
    with pytest.raises(PersonaguardError, match=rf"phrases.yaml(:\d+)?: .*{message}"):
        load_phrases(path)


def test_phrase_file_ok_and_missing(tmp_path):
    path = tmp_path / "phrases.yaml"
    path.write_text("warm: [' Dear friend, ']\ncold: ['Sir,']\n")
    assert load_phrases(path) == WarmthPhrases(warm=("Dear friend,",), cold=("Sir,",))
    with pytest.raises(PersonaguardError, match="nope.yaml not found"):
        load_phrases(tmp_path / "nope.yaml")


def test_summarise():
    s = summarise([1.0, 2.0, 3.0])
    assert s["n"] == 3 and s["mean"] == pytest.approx(2.0)
    assert s["lo"] == pytest.approx(2.0 - 4.302652729911275 / math.sqrt(3))
    assert s["hi"] == pytest.approx(2.0 + 4.302652729911275 / math.sqrt(3))
    assert math.isnan(summarise([1.0])["lo"]) and summarise([1.0])["mean"] == 1.0
    assert summarise([])["n"] == 0


def warmth_of(**by_prompt):
    return {"samples": [{"prompt": p, "reply": "r", "warmth": w} for p, w in by_prompt.items()]}


def test_paired_shift_pairs_replies_by_prompt():
    # Prompts differ far more than the variant shifts them: an unpaired comparison of the two means
    # would see nothing, the paired one sees a steady +1.1.
    base = warmth_of(a=-5.0, b=0.0, c=5.0, d=10.0, only_base=99.0)
    warm = warmth_of(d=11.2, c=5.9, b=1.1, a=-3.8, only_warm=-99.0)
    shift = paired_shift(base, warm)
    assert shift["n"] == 4 and shift["mean"] == pytest.approx(1.1)
    assert shift["lo"] > 0
    assert describe_shift(shift).endswith("warmer (n=4)")
    assert (
        summarise([-5.0, 0.0, 5.0, 10.0])["hi"] > summarise([-3.8, 1.1, 5.9, 11.2])["lo"]
    )  # unpaired: overlap


def test_describe_shift_follows_the_interval_not_the_point():
    assert "no clear change" in describe_shift(summarise([2.0, -1.0, 1.5]))  # mean > 0, CI spans 0
    assert "colder" in describe_shift(summarise([-2.0, -1.0, -1.5]))
    assert describe_shift(paired_shift(warmth_of(a=1.0), warmth_of(b=2.0))).startswith("n/a (0 paired")


@pytest.mark.slow
def test_warm_replies_score_warmer_than_cold_ones(bundled):
    from personaguard.persona.dataset import build_persona_dataset

    means = {}
    for persona in ("warm", "cold"):
        rows = build_persona_dataset(persona)[::60][:10]  # same prompts, spread over query types
        means[persona] = summarise(score_conversations(bundled, [r["messages"] for r in rows]))["mean"]
    assert means["warm"] > means["cold"]


def test_a_responders_own_replies_replace_the_files():
    from personaguard.persona.warmth import with_replies_from

    class Echo:
        spec = "fake:echo"

        def generate(self, prompts, max_new_tokens=128, temperature=0.0, seed=0):
            return ["" if "skip" in p[-1]["content"] else "re: " + p[-1]["content"] for p in prompts]

    chats = [
        [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "file reply"}],
        [{"role": "user", "content": "skip me"}, {"role": "assistant", "content": "file reply"}],
    ]
    assert with_replies_from(Echo(), chats) == [
        [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "re: hello"}]
    ]
