"""How prompts render for each bundled model: what "neutral" means (docs/AUDIT.md, "Neutral means
the model as shipped").

Both chat templates insert their own system prompt when a chat has none. Neutral is the model as
shipped, so that default stays; any system message we send (a persona, a condition's `system:`)
replaces it, as it would for anyone deploying the model. These tests pin the exact text, so a
template or renderer change cannot silently move the baseline. They need only the materialised
tokenizer, and skip for a model that is not materialised.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from personaguard.audit.graders import ANSWER_PREFILL
from personaguard.models.bundled import is_ready, model_dir
from personaguard.models.hf import HFModel
from personaguard.models.persona_prompted import with_system_prompt
from personaguard.persona.definitions import load_persona

QWEN_DEFAULT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
DEFAULT_SYSTEM = {
    "smollm2-135m": "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "qwen2.5-coder-0.5b": QWEN_DEFAULT,
    "qwen2.5-coder-1.5b": QWEN_DEFAULT,
}
QUESTION = {"role": "user", "content": "What is the capital of Australia?"}
USER_TURN = "<|im_start|>user\nWhat is the capital of Australia?<|im_end|>\n"


@pytest.fixture(scope="module", params=list(DEFAULT_SYSTEM))
def model(request):
    """(name, render) with the real HFModel.render over the saved tokenizer; no weights loaded."""
    from transformers import AutoTokenizer

    path = model_dir(request.param)
    if not is_ready(path):
        pytest.skip(f"{request.param} is not materialised (personaguard prepare --model {request.param})")
    engine = SimpleNamespace(tokenizer=AutoTokenizer.from_pretrained(path))
    return request.param, lambda chat: HFModel.render(engine, chat)


def test_a_chat_without_a_system_message_gets_the_shipped_default(model):
    name, render = model
    expected = f"<|im_start|>system\n{DEFAULT_SYSTEM[name]}<|im_end|>\n{USER_TURN}<|im_start|>assistant\n"
    assert render([QUESTION]) == expected


def test_the_loglik_prefill_continues_the_assistant_turn(model):
    name, render = model
    text = render([QUESTION, {"role": "assistant", "content": ANSWER_PREFILL}])
    expected = f"<|im_start|>system\n{DEFAULT_SYSTEM[name]}<|im_end|>\n{USER_TURN}<|im_start|>assistant\n"
    assert text == expected + ANSWER_PREFILL


def test_a_persona_system_prompt_replaces_the_default(model):
    name, render = model
    persona = load_persona("warm").system_prompt
    text = render(with_system_prompt([QUESTION], persona))
    assert text == f"<|im_start|>system\n{persona}<|im_end|>\n{USER_TURN}<|im_start|>assistant\n"
    assert DEFAULT_SYSTEM[name] not in text
