"""Pair outcomes by key before any statistics: the one place where two sets of graded samples meet.

Outcomes are mappings from a sample key (an item id, or ``(bank, condition, item)`` when banks and
conditions are pooled) to 0/1, or to a rating for ``mean``/``mean_delta``; NaN where unscored. Only
keys scored on both sides are paired. The ``cluster`` function names the independent unit of each
key, so repeated samples of one item (under several conditions or framings) are never counted as
independent evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from personaguard.audit import stats

K = TypeVar("K", bound=Hashable)
Outcomes = Mapping[Any, float]
ClusterOf = Callable[[Any], Hashable] | None


def as_dict(
    result: stats.Rate | stats.Delta | stats.Ratio | stats.Mean | stats.MeanDelta | None,
) -> dict[str, Any] | None:
    return result.to_dict() if result is not None else None


def _scored(*tables: Outcomes) -> list[Any]:
    common = set(tables[0]).intersection(*tables[1:])
    return sorted(k for k in common if not any(math.isnan(t[k]) for t in tables))


def _labels(keys: list[Any], cluster: ClusterOf) -> list[Hashable] | None:
    return [cluster(k) for k in keys] if cluster else None


def rate(values: Outcomes, cluster: ClusterOf = None) -> stats.Rate | None:
    keys = _scored(values)
    return stats.rate([values[k] for k in keys], _labels(keys, cluster)) if keys else None


def delta(a: Outcomes, b: Outcomes, cluster: ClusterOf = None) -> stats.Delta | None:
    """b - a on the keys both sides scored."""
    keys = _scored(a, b)
    if not keys:
        return None
    return stats.paired_delta([a[k] for k in keys], [b[k] for k in keys], _labels(keys, cluster))


def mean(values: Outcomes) -> stats.Mean | None:
    """Mean of a continuous outcome (a rating) over the scored keys, t interval; one key per item."""
    keys = _scored(values)
    return stats.mean_ci([values[k] for k in keys]) if keys else None


def mean_delta(a: Outcomes, b: Outcomes) -> stats.MeanDelta | None:
    """b - a of a continuous outcome on the keys both sides scored: per-key differences, paired t."""
    keys = _scored(a, b)
    if not keys:
        return None
    return stats.paired_mean_delta([a[k] for k in keys], [b[k] for k in keys])


def amplification(
    base_neutral: Outcomes,
    tuned_neutral: Outcomes,
    base_context: Outcomes,
    tuned_context: Outcomes,
    cluster: ClusterOf = None,
) -> stats.Ratio | None:
    """The fine-tune's delta under a context over its delta under neutral, on common keys."""
    keys = _scored(base_neutral, tuned_neutral, base_context, tuned_context)
    if not keys:
        return None
    arrays = [[t[k] for k in keys] for t in (base_neutral, tuned_neutral, base_context, tuned_context)]
    return stats.amplification(*arrays, clusters=_labels(keys, cluster))


def with_holm(deltas: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
    """Add ``p_holm`` (Holm over this list, one family) to each delta dict."""
    adjusted = stats.holm([d["p"] if d else None for d in deltas])
    return [None if d is None else {**d, "p_holm": p} for d, p in zip(deltas, adjusted, strict=True)]


def holm_grid(grid: dict[str, list[dict[str, Any] | None]]) -> dict[str, list[dict[str, Any] | None]]:
    """Holm over every cell of a table (one family), keeping the {column: [cells]} shape."""
    flat = with_holm([d for cells in grid.values() for d in cells])
    out, k = {}, 0
    for name, cells in grid.items():
        out[name] = flat[k : k + len(cells)]
        k += len(cells)
    return out
