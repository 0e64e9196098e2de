"""Where a local model runs and in which precision, from its spec options.

The instrument's default is float32 on any device: an adapter's effect is mostly below bf16
resolution (docs/AUDIT.md, Exact adapters). ``dtype=auto`` picks the fastest precision the device
computes natively, which is what training uses.
"""

from __future__ import annotations

import torch

from personaguard.errors import PersonaguardError
from personaguard.models.spec import ModelSpec


def resolve_device(option: str | None) -> str:
    """``cpu`` (default), ``cuda`` / ``cuda:N``, or ``auto`` (cuda when one is visible)."""
    device = option or "cpu"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PersonaguardError(f"device {device!r} asked for, but torch sees no CUDA device here")
    return device


def fast_dtype(device: str) -> torch.dtype:
    """bf16 where the hardware computes it natively (GPUs from Ampere on, CPUs with AVX512-BF16 or
    AMX, where it is about 3x faster than fp32); fp16 on older GPUs; fp32 otherwise."""
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        return torch.bfloat16
    return torch.float32


def resolve_dtype(spec: ModelSpec) -> torch.dtype:
    name = spec.option("dtype") or "float32"
    if name == "auto":
        return fast_dtype(resolve_device(spec.option("device")))
    return getattr(torch, name)
