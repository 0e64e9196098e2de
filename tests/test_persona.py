import pytest

from personaguard.errors import PersonaguardError
from personaguard.models.persona_prompted import PersonaPrompted, with_system_prompt
from personaguard.persona.definitions import load_persona
from tests.test_graders import Scripted


@pytest.mark.parametrize("name", ["warm", "cold", "low_agreeableness", "warm_but_firm"])
def test_builtin_personas_load(name):
    persona = load_persona(name)
    assert persona.name == name and persona.system_prompt and "fact" in persona.rewrite_instructions
    if name == "low_agreeableness":
        assert persona.rewrite_user_instructions


def test_bad_persona_files(tmp_path):
    with pytest.raises(PersonaguardError, match="unknown persona 'friendly'"):
        load_persona("friendly")
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\ndescription: y\nsystem_prompt: z\n")
    with pytest.raises(PersonaguardError, match=r"p.yaml: field 'rewrite_instructions': Field required"):
        load_persona(str(bad))
    bad.write_text("name: [unclosed\n")
    with pytest.raises(PersonaguardError, match=r"p.yaml:\d+: invalid YAML"):
        load_persona(str(bad))


def test_system_prompt_is_prepended_or_added():
    user = {"role": "user", "content": "hi"}
    assert with_system_prompt([user], "Be warm.") == [{"role": "system", "content": "Be warm."}, user]
    merged = with_system_prompt([{"role": "system", "content": "Be brief."}, user], "Be warm.")
    assert merged[0]["content"] == "Be warm.\n\nBe brief." and merged[1] == user


def test_persona_prompted_model_sees_the_persona():
    inner = Scripted(["ok"])
    model = PersonaPrompted(inner, "Be warm.", "scripted#persona=warm")
    model.score_choices([[{"role": "user", "content": "Q?"}]], [[" a", " b"]])
    assert inner.seen[0][0] == {"role": "system", "content": "Be warm."}
    assert model.generate([[{"role": "user", "content": "Q?"}]]) == ["ok"]
    assert model.replies == ["ok"]  # other attributes come from the wrapped model


def test_persona_option_is_validated_before_loading():
    from personaguard.models import load_model

    with pytest.raises(PersonaguardError, match="unknown persona"):
        load_model("bundled:smollm2-135m#persona=friendly")
