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
    assert json.loads((tmp_path / "env.json").read_text())["versions"]["torch"]
