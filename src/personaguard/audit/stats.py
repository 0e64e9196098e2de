"""Statistics for paired audits: Wilson intervals, paired bootstrap, exact McNemar, amplification.

All functions are pure and take 0/1 outcome arrays aligned by item, so the same items under two
conditions (or two models) are compared pairwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binom

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    k: int
    n: int
    rate: float
    lo: float
    hi: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Delta:
    """Mean of (b - a) over paired items, with a bootstrap CI and the exact McNemar p-value."""

    n: int
    delta: float
    lo: float
    hi: float
    p_mcnemar: float
    a_only: int  # items where a is 1 and b is 0
    b_only: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def wilson(k: int, n: int, z: float = Z95) -> Rate:
    """Wilson score interval; well-behaved at 0, n and small n, unlike the normal approximation."""
    if n == 0:
        return Rate(k, n, math.nan, math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Rate(k, n, p, max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Two-sided exact McNemar p on the discordant pairs (binomial test at 1/2)."""
    a_only = int(np.sum((a == 1) & (b == 0)))
    b_only = int(np.sum((a == 0) & (b == 1)))
    m = a_only + b_only
    if m == 0:
        return 1.0, a_only, b_only
    p = 2 * binom.cdf(min(a_only, b_only), m, 0.5)
    return float(min(1.0, p)), a_only, b_only


def _bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def paired_delta(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> Delta:
    """Delta = mean(b) - mean(a) with a 95% percentile bootstrap over items."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired arrays must have the same length")
    n = len(a)
    if n == 0:
        return Delta(0, math.nan, math.nan, math.nan, math.nan, 0, 0)
    diff = b - a
    boots = diff[_bootstrap_indices(n, n_boot, seed)].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p, a_only, b_only = mcnemar_exact(a, b)
    return Delta(n, float(diff.mean()), float(lo), float(hi), p, a_only, b_only)


@dataclass(frozen=True)
class Ratio:
    value: float
    lo: float
    hi: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def amplification(
    base_neutral: np.ndarray,
    tuned_neutral: np.ndarray,
    base_context: np.ndarray,
    tuned_context: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
) -> Ratio:
    """(tuned - base) error delta under context / the same delta under neutral, bootstrapped.

    All four arrays are error indicators aligned on the same items. Bootstrap replicates whose
    neutral delta is zero are dropped (the ratio is undefined there).
    """
    arrays = [np.asarray(x, dtype=float) for x in (base_neutral, tuned_neutral, base_context, tuned_context)]
    n = len(arrays[0])
    if any(len(x) != n for x in arrays):
        raise ValueError("amplification needs four arrays over the same items")
    d_neutral = arrays[1] - arrays[0]
    d_context = arrays[3] - arrays[2]
    value = d_context.mean() / d_neutral.mean() if d_neutral.mean() != 0 else math.nan
    idx = _bootstrap_indices(n, n_boot, seed)
    num = d_context[idx].mean(axis=1)
    den = d_neutral[idx].mean(axis=1)
    ok = den != 0
    if ok.sum() < n_boot // 2:
        return Ratio(float(value), math.nan, math.nan)
    lo, hi = np.percentile(num[ok] / den[ok], [2.5, 97.5])
    return Ratio(float(value), float(lo), float(hi))
