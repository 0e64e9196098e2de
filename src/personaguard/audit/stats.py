"""Statistics for paired, item-clustered audits.

Samples repeat items: one question under several conditions, one harmful request under six
framings. Samples of the same item are correlated, so every interval and test here takes a cluster
label per sample (its item) and treats clusters, not samples, as the independent units:

- rates: Wilson score interval on the Rao-Scott effective sample size (n / design effect);
- paired differences: Tango's score interval, on the same effective size. Unlike the percentile
  bootstrap it stays honest when discordant pairs are few (no more ``[+0.0, +0.0]``);
- p-values: the exact sign-flip (randomisation) distribution of the per-cluster sums of
  differences, mid-p. With one pair per cluster this is the mid-p McNemar test;
- ratios (amplification): a cluster bootstrap;
- Holm's step-down adjustment over each table of tests.

With one sample per cluster every correction is exactly 1, so unclustered data gets the textbook
methods. ``docs/AUDIT.md`` (Calibration) shows the false-positive rates and coverage these reach.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054
Clusters = Sequence[Hashable] | None  # one label per sample; None = every sample its own cluster


@dataclass(frozen=True)
class Rate:
    k: int
    n: int
    rate: float
    lo: float
    hi: float
    clusters: int
    deff: float  # design effect: variance under clustering / variance if samples were independent

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Delta:
    """mean(b - a) over paired samples: Tango interval and sign-flip mid-p, both cluster-aware."""

    n: int
    clusters: int
    delta: float
    lo: float
    hi: float
    p: float
    a_only: int  # pairs where a is 1 and b is 0
    b_only: int
    deff: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _cluster_ids(n: int, clusters: Clusters) -> np.ndarray:
    if clusters is None:
        return np.arange(n)
    if len(clusters) != n:
        raise ValueError(f"{len(clusters)} cluster labels for {n} samples")
    index: dict[Hashable, int] = {}
    return np.array([index.setdefault(c, len(index)) for c in clusters], dtype=int)


MIN_INFORMATIVE = 5  # below this neither the exact sign-flip test nor a sandwich variance works
DEFF_MIN = 0.5  # the estimate's noise must not claim much more than independent samples give


def design_effect(values: np.ndarray, ids: np.ndarray, iid_variance: float, informative: int) -> float:
    """Cluster-robust (sandwich) variance of the mean of ``values`` over ``iid_variance``.

    It is kept within [0.5, largest cluster]: no clustering can cost more than treating each cluster
    as one sample, and the estimate's noise should not buy much more than independent samples give.
    ``informative`` counts the clusters that carry the signal (hold a discordant pair, or the rarer
    outcome). With fewer than MIN_INFORMATIVE of them the variance cannot be estimated (a sandwich
    over 3 such clusters saw no clustering where there was plenty), so the worst case is assumed:
    every sample of a cluster moves together (deff = mean cluster size). The bounds were chosen by
    the coverage simulations and relabelled real nulls of ``personaguard calibrate`` (docs/AUDIT.md).
    """
    n = len(values)
    sizes = np.bincount(ids)
    k = len(sizes)
    if k < 2 or sizes.max() == 1:
        return 1.0
    if informative < MIN_INFORMATIVE:
        return float(sizes.mean())
    if iid_variance <= 0:
        return 1.0
    sums = np.bincount(ids, weights=values)
    robust = k / (k - 1) * np.sum((sums - sizes * values.mean()) ** 2) / n**2
    return float(min(max(robust / iid_variance, DEFF_MIN), sizes.max()))


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval; counts may be fractional (effective sizes)."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def rate(values: Sequence[float] | np.ndarray, clusters: Clusters = None) -> Rate:
    """Share of 1s with a Wilson interval on the effective sample size n / deff."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Rate(0, 0, math.nan, math.nan, math.nan, 0, math.nan)
    ids = _cluster_ids(n, clusters)
    p = float(x.mean())
    rarer = x if p <= 0.5 else 1 - x
    informative = int(np.count_nonzero(np.bincount(ids, weights=rarer)))
    deff = design_effect(x, ids, p * (1 - p) / n, informative)
    lo, hi = wilson(x.sum() / deff, n / deff)
    return Rate(int(x.sum()), n, p, lo, hi, int(ids.max()) + 1, deff)


@dataclass(frozen=True)
class Mean:
    """A mean of per-item values (one value per item, so items are the units) with a t interval."""

    mean: float
    lo: float
    hi: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def mean_ci(values: Sequence[float] | np.ndarray) -> Mean:
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Mean(math.nan, math.nan, math.nan, 0)
    if n == 1:
        return Mean(float(x[0]), math.nan, math.nan, 1)
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Mean(float(x.mean()), float(x.mean()) - half, float(x.mean()) + half, n)


@dataclass(frozen=True)
class MeanDelta:
    """mean(b - a) over pairs of values (one pair per item, so items are the units): the t
    interval of the per-item differences and the paired t-test's two-sided p."""

    delta: float
    lo: float
    hi: float
    n: int
    p: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def paired_mean_delta(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> MeanDelta:
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError("paired arrays must have the same length")
    d = y - x
    m = mean_ci(d)
    if m.n < 2:
        return MeanDelta(m.mean, m.lo, m.hi, m.n, math.nan)
    sd = float(d.std(ddof=1))
    if sd == 0:  # every item moved by the same amount: certain if it moved, no evidence if not
        return MeanDelta(m.mean, m.lo, m.hi, m.n, 1.0 if m.mean == 0 else 0.0)
    from scipy.stats import t

    p = float(2 * t.sf(abs(m.mean) / (sd / math.sqrt(m.n)), m.n - 1))
    return MeanDelta(m.mean, m.lo, m.hi, m.n, p)


def _tango_z(up: float, down: float, n: float, d0: float) -> float:
    """Tango's score statistic for H0: delta = d0, where delta = (up - down) / n."""
    a = 2 * n
    b = -up - down + (2 * n - up + down) * d0
    c = -down * d0 * (1 - d0)
    q = (math.sqrt(max(b * b - 4 * a * c, 0.0)) - b) / (2 * a)  # constrained MLE of P(down cell)
    var = n * (2 * q + d0 * (1 - d0))
    diff = up - down - n * d0
    if var <= 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def tango_interval(up: float, down: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Score interval for a paired difference (Tango 1998), by bisection on the monotone statistic.
    ``up``/``down`` are the discordant counts that raise/lower the difference; may be fractional."""
    if n <= 0:
        return math.nan, math.nan
    est = (up - down) / n

    def solve(target: float, lo: float, hi: float) -> float:
        """The d0 in [lo, hi] where the (decreasing) statistic crosses ``target``, else an end."""
        if _tango_z(up, down, n, lo) <= target:
            return lo
        if _tango_z(up, down, n, hi) >= target:
            return hi
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _tango_z(up, down, n, mid) > target else (lo, mid)
        return (lo + hi) / 2

    return solve(z, -1.0, est), solve(-z, est, 1.0)


def sign_flip_p(cluster_sums: Sequence[int] | np.ndarray) -> float:
    """Two-sided mid-p of sum(D_j) under independent random signs of each cluster's integer sum D_j.

    Exact: clusters with equal |D| contribute |D| * (2 * Binomial(count, 1/2) - count), and these
    distributions are convolved. One pair per cluster gives the mid-p McNemar test.
    """
    sums = np.abs(np.asarray(cluster_sums, dtype=int))
    sums = sums[sums > 0]
    if len(sums) == 0:
        return 1.0
    observed = abs(int(np.sum(np.asarray(cluster_sums, dtype=int))))
    total = int(sums.sum())
    dist = np.zeros(2 * total + 1)
    dist[total] = 1.0  # index total <-> sum 0
    for magnitude, count in zip(*np.unique(sums, return_counts=True), strict=True):
        k = np.arange(count + 1)
        log_pmf = np.array(
            [math.lgamma(count + 1) - math.lgamma(i + 1) - math.lgamma(count - i + 1) for i in k]
        ) - count * math.log(2)
        step = np.zeros(2 * int(magnitude) * count + 1)
        step[2 * int(magnitude) * k] = np.exp(log_pmf)  # offset -magnitude*count .. +magnitude*count
        dist = np.convolve(dist, step)[int(magnitude) * count : int(magnitude) * count + 2 * total + 1]
    values = np.abs(np.arange(-total, total + 1))
    p = dist[values > observed].sum() + 0.5 * dist[values == observed].sum()
    return float(min(1.0, p / dist.sum()))


def paired_delta(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, clusters: Clusters = None
) -> Delta:
    """Delta = mean(b) - mean(a) over pairs of 0/1 outcomes aligned by sample."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError("paired arrays must have the same length")
    n = len(x)
    if n == 0:
        return Delta(0, 0, math.nan, math.nan, math.nan, math.nan, 0, 0, math.nan)
    ids = _cluster_ids(n, clusters)
    d = y - x
    a_only = int(np.sum((x == 1) & (y == 0)))
    b_only = int(np.sum((x == 0) & (y == 1)))
    iid_var = ((a_only + b_only) / n - d.mean() ** 2) / n
    informative = int(np.count_nonzero(np.bincount(ids, weights=np.abs(d))))
    deff = design_effect(d, ids, iid_var, informative)
    lo, hi = tango_interval(b_only / deff, a_only / deff, n / deff)
    cluster_sums = np.bincount(ids, weights=d).round().astype(int)
    return Delta(
        n, int(ids.max()) + 1, float(d.mean()), lo, hi, sign_flip_p(cluster_sums), a_only, b_only, deff
    )


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values over one family; None (no test) stays None."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p))
    m = len(tested)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


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
    clusters: Clusters = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> Ratio:
    """(tuned - base) error delta under context / the same delta under neutral, cluster-bootstrapped.

    All four arrays are error indicators aligned on the same samples. Replicates whose neutral delta
    is zero are dropped (the ratio is undefined there); with fewer than half left there is no CI.
    """
    arrays = [np.asarray(v, dtype=float) for v in (base_neutral, tuned_neutral, base_context, tuned_context)]
    n = len(arrays[0])
    if any(len(v) != n for v in arrays):
        raise ValueError("amplification needs four arrays over the same samples")
    ids = _cluster_ids(n, clusters)
    k = int(ids.max()) + 1 if n else 0
    num_c = np.bincount(ids, weights=arrays[3] - arrays[2], minlength=k)
    den_c = np.bincount(ids, weights=arrays[1] - arrays[0], minlength=k)
    value = num_c.sum() / den_c.sum() if den_c.sum() != 0 else math.nan
    if k == 0:
        return Ratio(math.nan, math.nan, math.nan)
    draws = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
    num, den = num_c[draws].sum(axis=1), den_c[draws].sum(axis=1)
    ok = den != 0
    if ok.sum() < n_boot // 2:
        return Ratio(float(value), math.nan, math.nan)
    lo, hi = np.percentile(num[ok] / den[ok], [2.5, 97.5])
    return Ratio(float(value), float(lo), float(hi))
