"""Trait definitions (YAML): contrastive system instructions plus extraction and evaluation
questions, kept disjoint so a vector is never judged on the prompts it was built from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from personaguard.data.yamlfile import read_yaml, validated
from personaguard.paths import builtin_names, builtin_or_path


class TraitPair(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pos: str = Field(min_length=1)
    neg: str = Field(min_length=1)


class Trait(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    pairs: list[TraitPair] = Field(min_length=1)
    extraction_questions: list[str] = Field(min_length=1)
    evaluation_questions: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _disjoint(self) -> Trait:
        shared = set(self.extraction_questions) & set(self.evaluation_questions)
        if shared:
            raise ValueError(f"extraction and evaluation questions overlap: {sorted(shared)[0]!r}")
        return self


def builtin_traits() -> list[str]:
    return builtin_names("traits")


def load_trait(name: str) -> Trait:
    path = builtin_or_path("traits", name, "trait")
    return validated(Trait, read_yaml(path, "trait"), f"{path}: ")
