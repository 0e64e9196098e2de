"""The library warnings we know to be noise for a personaguard user, silenced in one place and by
exact message, so that any other warning still shows.

Each entry says who emits it and why it is harmless here. Remove an entry when the call behind it
changes; never widen one to a whole category or module.
"""

from __future__ import annotations

import logging
import warnings

# (category, regex matched against the start of the message)
KNOWN_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # transformers >= 5.x deprecates the ``past_key_values=`` argument of ``forward`` in favour of
    # ``cache=``; the engine's prefix cache and generation loop still pass it (models/hf.py).
    (
        FutureWarning,
        r"`past_key_values` is deprecated and will be removed in version [\d.]+ for `\w+\.forward`\. "
        r"Use `cache` instead\.",
    ),
    # PEFT reads ``model.is_gradient_checkpointing`` when it wraps a model (training, adapters).
    (
        FutureWarning,
        r"`is_gradient_checkpointing` is deprecated and will be removed in v6\. "
        r"Use `is_activation_checkpointing` instead\.",
    ),
)

# logger name -> exact messages: transformers says the same through its logger, once per process.
KNOWN_LOG_MESSAGES: dict[str, frozenset[str]] = {
    "transformers.utils.generic": frozenset(
        {"`past_key_values`/`cache_params` are deprecated. Use `cache` instead."}
    ),
}


class _DropKnown(logging.Filter):
    def __init__(self, messages: frozenset[str]) -> None:
        super().__init__()
        self.messages = messages

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.messages


_LOG_FILTERS = {name: _DropKnown(messages) for name, messages in KNOWN_LOG_MESSAGES.items()}


def silence_known_warnings() -> None:
    """Install the filters; calling it again changes nothing (used by the CLI and model loading)."""
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, log_filter in _LOG_FILTERS.items():
        logging.getLogger(name).addFilter(log_filter)
