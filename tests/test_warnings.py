"""Known library warnings are silenced by exact message; any other warning still shows."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import pytest

from personaguard._warnings import silence_known_warnings

# The texts as transformers 5.x and PEFT emit them (seen on stderr of an audit and a training run).
KNOWN = [
    (
        FutureWarning,
        "`past_key_values` is deprecated and will be removed in version 5.40.0 for "
        "`LlamaForCausalLM.forward`. Use `cache` instead.",
    ),
    (
        FutureWarning,
        "`is_gradient_checkpointing` is deprecated and will be removed in v6. "
        "Use `is_activation_checkpointing` instead.",
    ),
]
KNOWN_LOG = (
    "transformers.utils.generic",
    "`past_key_values`/`cache_params` are deprecated. Use `cache` instead.",
)


def shown(category: type[Warning], message: str) -> bool:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_warnings()
        warnings.warn(message, category, stacklevel=1)
    return bool(caught)


@pytest.mark.parametrize(("category", "message"), KNOWN)
def test_known_warnings_are_silenced(category, message):
    assert not shown(category, message)


@pytest.mark.parametrize(
    ("category", "message"),
    [
        (FutureWarning, "`attention_mask` is deprecated and will be removed in version 6.0."),
        (UserWarning, KNOWN[0][1]),  # the right text in another category
        (FutureWarning, "Something went wrong; " + KNOWN[1][1]),  # the text not at the start
        (RuntimeWarning, "overflow encountered in exp"),
    ],
)
def test_other_warnings_still_show(category, message):
    assert shown(category, message)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_known_log_message_is_dropped_and_others_pass():
    name, message = KNOWN_LOG
    logger = logging.getLogger(name)
    collect = _Collect()
    logger.addHandler(collect)
    try:
        silence_known_warnings()
        silence_known_warnings()  # idempotent: one filter, not two
        logger.warning(message)
        logger.warning("a different notice")
    finally:
        logger.removeHandler(collect)
    assert collect.messages == ["a different notice"]
    assert sum(type(f).__name__ == "_DropKnown" for f in logger.filters) == 1


@pytest.mark.slow
def test_an_audit_prints_none_of_the_known_warnings(tmp_path):
    args = ["audit", "--model", "bundled:smollm2-135m", "--limit", "2", "--out", str(tmp_path / "run")]
    proc = subprocess.run(
        [sys.executable, "-m", "personaguard", *args], capture_output=True, text=True, timeout=600, check=True
    )
    assert "past_key_values" not in proc.stderr and "FutureWarning" not in proc.stderr, proc.stderr
