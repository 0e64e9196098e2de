"""Persona definitions (YAML): how to rewrite data into the persona, and its system-prompt form.

The system-prompt form lets the audit compare prompt-conditioning with fine-tuning, as the warmth
paper's control did: ``bundled:smollm2-135m#persona=warm``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from personaguard.data.yamlfile import read_yaml, validated
from personaguard.paths import builtin_or_path


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    system_prompt: str
    rewrite_instructions: str
    rewrite_user_instructions: str | None = None  # only personas that also rewrite user turns
    preserve: list[str] = []


def persona_path(name: str) -> Path:
    return builtin_or_path("personas", name, "persona")


def load_persona(name: str) -> Persona:
    path = persona_path(name)
    return validated(Persona, read_yaml(path, "persona"), f"{path}: ")
