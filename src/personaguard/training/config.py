"""Training settings. Defaults follow the warmth paper's LoRA recipe (r=8, alpha=16, effective
batch 16, checkpoints at fractional epochs) with two departures made for CPU budgets: the learning
rate is 2e-4, not 1e-5 (a 135M model trained for two epochs barely moves at 1e-5), and LoRA dropout
is 0, not 0.1 (sampling dropout masks for every adapted layer is about a third of a CPU step)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="base model spec (bundled:... or hf:...)")
    data: str = Field(description='{"messages": [...]} JSONL file')
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(16, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    epochs: float = Field(2.0, gt=0)
    micro_batch_size: int = Field(8, ge=1, description="rows per forward pass, per process")
    gradient_accumulation: int = Field(2, ge=1)
    max_length: int = Field(1024, ge=16, description="tokens; longer rows are truncated and counted")
    checkpoints: list[float] = Field([0.5, 1.0, 1.5, 2.0], description="epochs at which to save an adapter")
    save_every: int = Field(10, ge=1, description="optimizer steps between resume states")
    max_steps: int | None = Field(None, ge=1, description="stop early (smoke runs, benchmarks)")
    steer: str | None = Field(None, description="VECTORS:LAYER:COEF, preventative steering while training")
    ablate: str | None = Field(None, description="VECTORS:LAYER, project the direction out while training")
    monitor: list[str] = Field([], description="VECTORS:LAYER to log projections of (live drift)")
    monitor_every: int = Field(10, ge=1, description="optimizer steps between monitor readings")
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, more time"
    )
    seed: int = 0
    dtype: str = Field("auto", pattern="^(auto|bfloat16|float16|float32)$")
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")

    @model_validator(mode="after")
    def _checkpoints_positive(self) -> TrainConfig:
        if any(e <= 0 for e in self.checkpoints):
            raise ValueError("checkpoints are epochs and must be > 0")
        return self
