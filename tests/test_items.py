import json

import pytest

from personaguard.data.catalog import builtin_banks
from personaguard.data.items import load_items, stable_subset
from personaguard.errors import PersonaguardError

GOOD = {"id": "a", "input": "Q?", "choices": ["x", "y"], "target": "x", "incorrect": "y"}


def write(tmp_path, rows):
    path = tmp_path / "items.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_good_file(tmp_path):
    items = load_items(write(tmp_path, [GOOD, {**GOOD, "id": "b"}]))
    assert [i.id for i in items] == ["a", "b"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", r"items.jsonl:2: invalid JSON"),
        ({**GOOD, "choices": ["x", " "]}, r"items.jsonl:2: field 'choices\[1\]'|:2: .*choices\[1\] is empty"),
        ({**GOOD, "target": "z"}, r"items.jsonl:2: .*target 'z' is not one of the choices"),
        ({**GOOD, "incorrect": "x"}, r"items.jsonl:2: .*incorrect must differ from target"),
        ({"id": "b", "choices": ["x"], "target": "x"}, r"items.jsonl:2: field 'input': Field required"),
        ({**GOOD, "colour": "red"}, r"items.jsonl:2: field 'colour': Extra inputs"),
        (GOOD, r"items.jsonl:2: field 'id': duplicate id 'a' \(first on line 1\)"),
        ([1, 2], r"items.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path, bad, message):
    with pytest.raises(PersonaguardError, match=message):
        load_items(write(tmp_path, [GOOD, bad]))


def test_missing_file(tmp_path):
    with pytest.raises(PersonaguardError, match="not found"):
        load_items(tmp_path / "nope.jsonl")


def test_stable_subset_is_deterministic_and_bounded(mini_items):
    items = load_items(mini_items)
    first = [i.id for i in stable_subset(items, 5)]
    assert first == [i.id for i in stable_subset(list(reversed(items)), 5)]
    assert len(first) == 5
    assert stable_subset(items, None) == items


def test_builtin_banks_are_valid():
    banks = builtin_banks()
    assert banks, "no built-in banks found"
    for path in banks.values():
        assert load_items(path)


def test_over_refusal_items_expect_compliance():
    items = load_items(builtin_banks()["over_refusal"])
    assert len(items) >= 300 and all(it.target == "compliance" for it in items)
