import pytest
import torch

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


SYSTEM = {"role": "system", "content": "Be warm."}


def test_persona_reaches_every_prompt_of_a_local_model_and_nothing_else_passes_through():
    from personaguard.models.base import LocalModel
    from personaguard.models.persona_prompted import persona_prompted
    from personaguard.vectors.traits import load_trait
    from tests.test_vectors import FakeLocal

    inner = FakeLocal(load_trait("warmth"), ["Q?"], {})
    model = persona_prompted(inner, "Be warm.", "fake#persona=warm")
    assert isinstance(model, LocalModel)
    chat = [{"role": "user", "content": "Q?"}]
    torch.testing.assert_close(model.activations([chat], [1]), inner.activations([[SYSTEM, *chat]], [1]))
    model.token_activations([chat], 1)
    assert inner.seen == [[SYSTEM, *chat]] * 3
    assert (model.n_layers, model.hidden_size, model.device) == (2, 6, torch.device("cpu"))
    endpoint = persona_prompted(Scripted(["ok"]), "Be warm.", "scripted#persona=warm")
    assert not isinstance(endpoint, LocalModel) and not hasattr(endpoint, "activations")


@pytest.mark.slow
def test_persona_spec_activations_include_the_persona(bundled):
    from personaguard.models import load_model

    chats = [[{"role": "user", "content": "I lost my job today."}]]
    prompted = load_model("bundled:smollm2-135m#persona=warm")
    persona = with_system_prompt(chats[0], load_persona("warm").system_prompt)
    expected = bundled.activations([persona], [12], span="prompt_avg")
    assert torch.equal(prompted.activations(chats, [12], span="prompt_avg"), expected)
    assert not torch.equal(bundled.activations(chats, [12], span="prompt_avg"), expected)


def test_persona_option_is_validated_before_loading():
    from personaguard.models import load_model

    with pytest.raises(PersonaguardError, match="unknown persona"):
        load_model("bundled:smollm2-135m#persona=friendly")
