"""Shared fixtures. Integration tests share one load of the bundled model per session."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def bundled():
    from personaguard.models import load_model

    return load_model("bundled:smollm2-135m")


@pytest.fixture(scope="session")
def bundled_fp32():
    from personaguard.models import load_model

    return load_model("bundled:smollm2-135m#dtype=float32")


@pytest.fixture
def mini_items() -> Path:
    return DATA / "mini_items.jsonl"
