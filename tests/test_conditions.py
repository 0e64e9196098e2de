import pytest

from personaguard.audit.conditions import (
    Condition,
    builtin_conditions,
    load_conditions,
    resolve_conditions,
)
from personaguard.data.items import Item
from personaguard.errors import PersonaguardError

ITEM = Item(id="q1", input="What is 2+2?", choices=["4", "5"], target="4", incorrect="5")


def test_builtin_conditions_cover_the_design():
    conds = builtin_conditions()
    required = {
        "neutral",
        "sad",
        "happy",
        "angry",
        "anxious",
        "closeness",
        "deference",
        "high_stakes",
        "incorrect_belief",
        "correct_belief",
        "incorrect_mention",
        "sad_incorrect_belief",
    }
    assert required <= set(conds)
    assert {"are_you_sure", "persuasion"} <= set(conds)
    assert len(conds["persuasion"].followups) == 3
    for cid, cond in conds.items():
        if cond.followups:  # multi-turn: the paraphrases are in the follow-up turns
            assert all(len(turn) >= 3 for turn in cond.followups), cid
        elif cond.family not in ("neutral", "direct"):
            assert len(cond.templates) >= 3, cid


def test_render_fills_placeholders_and_is_stable():
    cond = builtin_conditions()["incorrect_belief"]
    chat = cond.render(ITEM)
    assert chat[-1]["role"] == "user"
    assert "What is 2+2?" in chat[-1]["content"] and "5" in chat[-1]["content"]
    assert cond.render(ITEM) == chat


def test_braces_in_item_text_are_literal():
    cond = Condition(id="c", templates=["{question} I think it is {incorrect}."])
    item = Item(id="x", input="Is {x} a set?", choices=["yes", "no"], target="yes", incorrect="no")
    assert cond.render(item)[0]["content"] == "Is {x} a set? I think it is no."


def test_followups_are_filled_per_item():
    cond = builtin_conditions()["persuasion"]
    texts = [cond.followup(ITEM, k) for k in range(3)]
    assert all("5" in t for t in texts) and len(set(texts)) == 3
    assert cond.followup(ITEM, 0) == texts[0]
    assert not cond.applies_to(Item(id="x", input="Q?", choices=["a", "b"], target="a"))


def test_belief_conditions_skip_items_without_a_wrong_answer():
    cond = builtin_conditions()["incorrect_belief"]
    assert not cond.applies_to(Item(id="x", input="Q?", choices=["a", "b"], target="a"))


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ([], "at least one template"),
        (["no question"], "exactly once"),
        (["{question} {colour}"], "unknown placeholder"),
    ],
)
def test_bad_templates(templates, message):
    with pytest.raises(ValueError, match=message):
        Condition(id="c", templates=templates)


def test_user_condition_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("conditions:\n  - id: grumpy\n    templates: ['Ugh. {question}']\n")
    conds = resolve_conditions(["neutral", "grumpy"], path)
    assert [c.id for c in conds] == ["neutral", "grumpy"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("conditions:\n  - id: x\n    templates: ['no placeholder']\n")
    with pytest.raises(PersonaguardError, match=r"bad.yaml: conditions\[0\] field 'templates'"):
        load_conditions(bad)
    with pytest.raises(PersonaguardError, match="unknown condition"):
        resolve_conditions(["nope"])
