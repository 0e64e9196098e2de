"""How big a study is: a profile is data (builtin ``quick`` and ``full``, or any YAML path), so a
user can scale the same pipeline up or down without touching code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from personaguard.data.yamlfile import read_yaml, validated
from personaguard.paths import builtin_names, builtin_or_path


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuditSize(Strict):
    suite: str
    limit: int = Field(ge=1, description="items per bank")


class WarmthSize(Strict):
    prompts: int = Field(ge=2, description="held-out seed prompts each variant answers")
    max_new_tokens: int = Field(ge=8)


class VectorSize(Strict):
    traits: list[str] = Field(min_length=1)
    questions: int = Field(ge=2, description="extraction questions per instruction pair")
    max_new_tokens: int = Field(ge=8)
    probe_layer: int = Field(ge=0, description="where shifts and training-time projections are read")
    shift_questions: int = Field(ge=2)


class SweepSize(Strict):
    trait: str
    layers: list[int] = Field(min_length=1)
    coefs: list[float] = Field(min_length=1)
    questions: int = Field(ge=2)
    max_new_tokens: int = Field(ge=8)


class Steer(Strict):
    """A vector by trait name; ``layer`` None means the layer the sweep chose."""

    trait: str
    coef: float
    layer: int | None = None


class Variant(Strict):
    """A model to compare with the base: a LoRA adapter trained on ``persona`` data (optionally with
    preventative steering), or the base model steered at inference time."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    persona: str | None = None
    train_steer: Steer | None = None
    steer: Steer | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Variant:
        if (self.persona is None) == (self.steer is None):
            raise ValueError("a variant has either 'persona' (trained) or 'steer' (inference-time), not both")
        if self.train_steer and not self.persona:
            raise ValueError("'train_steer' needs 'persona': it steers while training that data")
        return self


class Profile(Strict):
    description: str = ""
    base: str = Field("bundled:smollm2-135m", description="the base model's spec; sizes are tuned to it")
    reliability: AuditSize
    safety: AuditSize
    warmth: WarmthSize
    vectors: VectorSize
    sweep: SweepSize
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides")
    variants: list[Variant] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Profile:
        names = [v.name for v in self.variants]
        if "base" in names or len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique and not 'base', got {names}")
        traits = set(self.vectors.traits)
        used = {s.trait for v in self.variants for s in (v.steer, v.train_steer) if s} | {self.sweep.trait}
        if used - traits:
            raise ValueError(f"traits {sorted(used - traits)} are used but not in vectors.traits")
        return self


def builtin_profiles() -> list[str]:
    return builtin_names("profiles")


def load_profile(name: str | Path) -> Profile:
    path = builtin_or_path("profiles", name, "profile")
    return validated(Profile, read_yaml(path, "profile"), f"{path}: ")
