"""Shared fixtures. Integration tests share one load of the bundled model per session."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def bundled():
    """The instrument's default: float32."""
    from personaguard.models import load_model

    return load_model("bundled:smollm2-135m")


@pytest.fixture(scope="session")
def bundled_bf16():
    """The opt-in speed path."""
    from personaguard.models import load_model

    return load_model("bundled:smollm2-135m#dtype=bfloat16")


@pytest.fixture
def mini_items() -> Path:
    return DATA / "mini_items.jsonl"
