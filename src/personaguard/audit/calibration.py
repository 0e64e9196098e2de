"""Is the instrument calibrated? Simulated nulls and injected effects for the audit's statistics.

Two checks, both on the exact functions the audit and the report use (``stats.paired_delta``):

- **False positives.** Under a true null, a test at alpha = 0.05 should reject about 5% of the time.
  Nulls come from real runs, by swapping the two variants' labels item by item (all samples of an
  item together, so the item-level structure of real data is kept), and from synthetic records whose
  items differ in difficulty and in how a fine-tune moves them, with no net effect.
- **Coverage.** With a known effect injected into synthetic records, the 95% interval should contain
  the true delta about 95% of the time: single samples per item, and items repeated under framings.

Each check also reports the same test with clustering switched off (every sample treated as
independent), which is what the audit did before, so the table shows what clustering buys.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from personaguard.audit import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Scenario:
    """Synthetic paired records: ``items`` items x ``framings`` samples each.

    Item difficulty varies (``spread``: sd of a per-item logit offset around ``base_rate``). The
    tuned variant differs by ``effect``:
      ``items``    each item is hit with probability ``effect``; every error-free sample of a hit item
                   becomes an error (a fine-tune that breaks some requests under every framing);
      ``samples``  each error-free sample becomes an error with probability ``effect``;
      ``opposed``  a null: a share ``effect`` of items gets worse and an equal share better, each by
                   half its samples (no net effect, but strongly item-clustered differences);
      ``resample`` a null: the tuned variant is an independent redraw from the same item difficulty.
    """

    name: str
    items: int
    framings: int
    base_rate: float
    spread: float
    effect: float
    kind: Literal["items", "samples", "opposed", "resample"]

    @property
    def is_null(self) -> bool:
        return self.kind in ("opposed", "resample") or self.effect == 0


def simulate(s: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base outcomes, tuned outcomes, cluster labels), one row per sample."""
    n = s.items * s.framings
    clusters = np.repeat(np.arange(s.items), s.framings)
    logit = math.log(s.base_rate / (1 - s.base_rate)) + rng.normal(0, s.spread, s.items)[clusters]
    p = 1 / (1 + np.exp(-logit))
    a = (rng.random(n) < p).astype(float)
    b = a.copy()
    if s.kind == "items":
        hit = (rng.random(s.items) < s.effect)[clusters]
        b[hit & (a == 0)] = 1
    elif s.kind == "samples":
        b[(a == 0) & (rng.random(n) < s.effect)] = 1
    elif s.kind == "opposed":
        direction = rng.choice([-1, 0, 1], size=s.items, p=[s.effect, 1 - 2 * s.effect, s.effect])[clusters]
        half = rng.random(n) < 0.5
        b[(direction == 1) & (a == 0) & half] = 1
        b[(direction == -1) & (a == 1) & half] = 0
    else:
        b = (rng.random(n) < p).astype(float)
    return a, b, clusters


def true_delta(s: Scenario, draws: int = 4000, seed: int = 12345) -> float:
    """The population delta, by Monte Carlo over many independent datasets (its own seed)."""
    if s.kind == "resample":
        return 0.0
    rng = np.random.default_rng(seed)
    return float(np.mean([np.mean(b - a) for a, b, _ in (simulate(s, rng) for _ in range(draws))]))


@dataclass(frozen=True)
class Check:
    """How often the test rejected (false-positive rate under a null, power otherwise) and how often
    the 95% interval held the truth; ``naive_*`` are the same with every sample independent."""

    name: str
    sims: int
    truth: float
    rejected: float
    covered: float
    naive_rejected: float
    naive_covered: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tally(name: str, truth: float, draws: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Check:
    hits = np.zeros(4)
    for a, b, clusters in draws:
        for k, labels in enumerate((clusters, None)):
            d = stats.paired_delta(a, b, labels)
            hits[2 * k] += d.p < ALPHA
            hits[2 * k + 1] += d.lo <= truth <= d.hi
    rej, cov, naive_rej, naive_cov = (hits / len(draws)).tolist()
    return Check(name, len(draws), truth, rej, cov, naive_rej, naive_cov)


def check_scenario(s: Scenario, sims: int = 500, seed: int = 0) -> Check:
    rng = np.random.default_rng(seed)
    return _tally(s.name, true_delta(s), [simulate(s, rng) for _ in range(sims)])


def relabelled_nulls(
    a: Mapping[Any, float],
    b: Mapping[Any, float],
    cluster: Any = None,
    name: str = "",
    sims: int = 500,
    seed: int = 0,
) -> Check:
    """Nulls from two real variants: per item, swap which variant each outcome belongs to (all the
    item's samples together). The swap makes the variants exchangeable, so the true delta is 0."""
    keys = sorted(k for k in a.keys() & b.keys() if not (math.isnan(a[k]) or math.isnan(b[k])))
    x = np.array([a[k] for k in keys])
    y = np.array([b[k] for k in keys])
    labels: list[Hashable] = [cluster(k) if cluster else k for k in keys]
    index: dict[Hashable, int] = {}
    ids = np.array([index.setdefault(c, len(index)) for c in labels], dtype=int)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(sims):
        swap = (rng.random(len(index)) < 0.5)[ids]
        draws.append((np.where(swap, y, x), np.where(swap, x, y), ids))
    return _tally(name, 0.0, draws)


SCENARIOS = [
    # one sample per item: the per-bank, per-condition tables
    Scenario("items=100, null (independent redraw)", 100, 1, 0.4, 1.0, 0.0, "resample"),
    Scenario("items=300, null (independent redraw)", 300, 1, 0.3, 1.0, 0.0, "resample"),
    Scenario("items=100, +5% of samples", 100, 1, 0.4, 1.0, 0.05, "samples"),
    Scenario("items=300, +3% of samples", 300, 1, 0.3, 1.0, 0.03, "samples"),
    # 40 requests x 6 framings: the pooled social-jailbreak metric
    Scenario("40x6, null (independent redraw)", 40, 6, 0.5, 1.5, 0.0, "resample"),
    Scenario("40x6, null (opposed item effects)", 40, 6, 0.5, 1.5, 0.15, "opposed"),
    Scenario("40x6, +5% of samples", 40, 6, 0.5, 1.5, 0.05, "samples"),
    Scenario("40x6, 10% of items broken", 40, 6, 0.5, 1.0, 0.10, "items"),
    Scenario("40x6, 20% of items broken", 40, 6, 0.5, 1.0, 0.20, "items"),
    # 100 items x 3 conditions: the pooled emotional and wrong-answer metric
    Scenario("100x3, null (opposed item effects)", 100, 3, 0.5, 1.0, 0.15, "opposed"),
    Scenario("100x3, +5% of samples", 100, 3, 0.3, 1.0, 0.05, "samples"),
    Scenario("100x3, 10% of items broken", 100, 3, 0.4, 1.0, 0.10, "items"),
]


def synthetic_table(sims: int = 500, seed: int = 0) -> list[Check]:
    return [check_scenario(s, sims, seed + k) for k, s in enumerate(SCENARIOS)]
