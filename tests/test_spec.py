import pytest

from personaguard.errors import PersonaguardError
from personaguard.models.spec import ModelSpec, parse_spec


def test_bundled():
    spec = parse_spec("bundled:smollm2-135m")
    assert spec == ModelSpec("bundled", "smollm2-135m")
    assert str(spec) == "bundled:smollm2-135m"


def test_hf_hub_id_with_options():
    spec = parse_spec("hf:HuggingFaceTB/SmolLM2-135M-Instruct#dtype=float32,batch_size=4")
    assert spec.scheme == "hf" and spec.name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert spec.options == {"dtype": "float32", "batch_size": "4"}
    assert parse_spec(str(spec)) == spec


def test_hf_with_adapter(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    spec = parse_spec(f"hf:/models/base+{tmp_path}")
    assert spec.name == "/models/base" and spec.adapter == str(tmp_path)


def test_openai():
    spec = parse_spec("openai:llama-3@http://127.0.0.1:8000/v1/#max_connections=4")
    assert spec.name == "llama-3" and spec.base_url == "http://127.0.0.1:8000/v1"
    assert spec.option("max_connections") == "4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gguf:model", "unknown scheme 'gguf'"),
        ("nocolon", "unknown scheme"),
        ("bundled:gpt5", "unknown bundled model"),
        ("hf:", "expected 'hf:<hub-id-or-path>'"),
        ("hf:base+", "must be followed by an adapter dir"),
        ("hf:base+/no/such/adapter", "adapter directory '/no/such/adapter' not found"),
        ("openai:model", "expected 'openai:<model>@<base_url>'"),
        ("openai:model@localhost:8000", "http(s) base URL"),
        ("bundled:smollm2-135m#dtpye=float32", "unknown option 'dtpye'"),
        ("bundled:smollm2-135m#dtype", "is not key=value"),
    ],
)
def test_bad_specs(text, message):
    with pytest.raises(PersonaguardError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(text)
