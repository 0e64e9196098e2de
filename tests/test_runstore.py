import json

import pytest

from personaguard.audit.runstore import RunStore
from personaguard.errors import PersonaguardError

CONFIG = {"model": "bundled:smollm2-135m", "limit": 3}


def test_append_and_resume_ids(tmp_path):
    with RunStore.open(tmp_path, CONFIG) as store:
        store.append([{"sample_id": "a"}, {"sample_id": "b", "response": 'quote " and \n newline'}])
    with RunStore.open(tmp_path, CONFIG) as store:
        assert store.done_ids() == {"a", "b"}
        assert store.records()[1]["response"] == 'quote " and \n newline'
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "env.json").is_file()


def test_torn_last_line_is_cut(tmp_path):
    with RunStore.open(tmp_path, CONFIG) as store:
        store.append([{"sample_id": "a"}])
    with (tmp_path / "samples.jsonl").open("a") as handle:
        handle.write('{"sample_id": "b", "resp')  # killed mid-write
    with RunStore.open(tmp_path, CONFIG) as store:
        assert store.done_ids() == {"a"}
        store.append([{"sample_id": "b"}])
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert [json.loads(line)["sample_id"] for line in lines] == ["a", "b"]


def test_second_writer_is_refused(tmp_path):
    with RunStore.open(tmp_path, CONFIG), pytest.raises(PersonaguardError, match="another"):
        with RunStore.open(tmp_path, CONFIG):
            pass


def test_changed_config_is_refused_but_limit_may_grow(tmp_path):
    with RunStore.open(tmp_path, CONFIG):
        pass
    with RunStore.open(tmp_path, {**CONFIG, "limit": 10}):
        pass
    with pytest.raises(PersonaguardError, match=r"different config \(fields \['model'\]\)"):
        with RunStore.open(tmp_path, {**CONFIG, "model": "hf:gpt2"}):
            pass


def test_env_json_has_versions_and_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    with RunStore.open(tmp_path, {"model": "openai:m@http://127.0.0.1:1/v1"}):
        pass
    text = "".join(p.read_text() for p in tmp_path.iterdir() if p.is_file())
    assert "sk-secret-value" not in text
    assert json.loads((tmp_path / "env.json").read_text())["history"][0]["versions"]["torch"]


def test_env_json_keeps_every_session(tmp_path):
    for _ in range(3):
        with RunStore.open(tmp_path, CONFIG):
            pass
    assert len(json.loads((tmp_path / "env.json").read_text())["history"]) == 3


FP = {"model": {"weights": "aaa", "adapter": "bbb", "dtype": "float32"}, "banks": {"factual": "ccc"}}


def test_changed_content_is_refused_naming_what_changed(tmp_path):
    with RunStore.open(tmp_path, CONFIG, FP):
        pass
    with RunStore.open(tmp_path, CONFIG, FP):  # same content: resumes
        pass
    changed = {**FP, "model": {**FP["model"], "adapter": "rewritten in place"}}
    with pytest.raises(PersonaguardError, match=r"changed since it started \(model\.adapter\)"):
        with RunStore.open(tmp_path, CONFIG, changed):
            pass


def test_results_are_strict_json(tmp_path):
    with RunStore.open(tmp_path, CONFIG) as store:
        store.write_results({"rate": float("nan"), "rows": [float("inf"), 0.5], "n": 3})
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"rate": None, "rows": [None, 0.5], "n": 3}
