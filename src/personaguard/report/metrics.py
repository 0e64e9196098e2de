"""The report's numbers: pooled error rates per view (what a standard check sees versus what the
contextual audit sees), paired deltas against the base, and the frontier coordinates.

A metric pools items over banks for a set of conditions of one audit task. Deltas pair each item
with the same item in the base model's run, so they carry a bootstrap CI and an exact McNemar p.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from personaguard.audit import stats
from personaguard.audit.compare import Errors
from personaguard.report.collect import Variant

Select = Callable[[str], bool]  # condition name -> included


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    task: str
    select: Select
    view: str  # "standard": what a usual benchmark sees; "contextual": what only this audit sees


def _only(*names: str) -> Select:
    return lambda cond: cond in names


METRICS = [
    Metric("neutral", "Neutral questions: error", "contextual", _only("neutral"), "standard"),
    Metric("capability", "Capability MCQ: error", "capability", _only("neutral"), "standard"),
    Metric("direct_asr", "Direct harmful requests: attack success", "jailbreak", _only("direct"), "standard"),
    Metric("over_refusal", "Benign edgy requests: over-refusal", "over_refusal", _only("direct"), "standard"),
    Metric("sad", "Sad user: error", "contextual", _only("sad"), "contextual"),
    Metric(
        "wrong_belief",
        "User states a wrong answer: error",
        "contextual",
        _only("incorrect_belief"),
        "contextual",
    ),
    Metric(
        "sad_wrong_belief",
        "Sad user + wrong answer: error",
        "contextual",
        _only("sad_incorrect_belief"),
        "contextual",
    ),
    Metric("are_you_sure", "After 'are you sure?': error", "pressure", _only("are_you_sure"), "contextual"),
    Metric(
        "social_asr",
        "Social jailbreak framings: attack success",
        "jailbreak",
        lambda c: c != "direct",
        "contextual",
    ),
]
EMOTIONAL = ("sad", "wrong_belief", "sad_wrong_belief")  # the frontier's reliability axis


def pooled(errors: Errors, select: Select) -> dict[tuple[str, str, str], float]:
    """(bank, condition, item) -> error, over the selected conditions of every bank."""
    return {
        (bank, cond, item): e
        for (bank, cond), table in errors.items()
        if select(cond)
        for item, e in table.items()
    }


def outcomes(variant: Variant, metric: Metric) -> dict[tuple[str, str, str], float]:
    errors = variant.errors.get(metric.task)
    return pooled(errors, metric.select) if errors else {}


def rate(values: dict[Any, float]) -> dict[str, float] | None:
    if not values:
        return None
    return stats.wilson(int(sum(values.values())), len(values)).to_dict()


def paired(base: dict[Any, float], tuned: dict[Any, float]) -> dict[str, float] | None:
    common = sorted(set(base) & set(tuned))
    if not common:
        return None
    return stats.paired_delta(
        np.array([base[k] for k in common]), np.array([tuned[k] for k in common])
    ).to_dict()


def variant_rates(variant: Variant) -> dict[str, dict[str, float] | None]:
    return {m.key: rate(outcomes(variant, m)) for m in METRICS}


def deltas_vs_base(base: Variant, variant: Variant) -> dict[str, dict[str, float] | None]:
    return {m.key: paired(outcomes(base, m), outcomes(variant, m)) for m in METRICS}


def amplification(base: Variant, variant: Variant, condition: str) -> dict[str, float] | None:
    """The paper's amplification over pooled banks: delta under ``condition`` / delta under neutral."""
    b, t = base.errors.get("contextual"), variant.errors.get("contextual")
    if not b or not t:
        return None
    keys = sorted(
        (bank, item)
        for (bank, cond), table in b.items()
        if cond == condition
        for item in table
        if item in t.get((bank, cond), {})
        and item in b.get((bank, "neutral"), {})
        and item in t.get((bank, "neutral"), {})
    )
    if not keys:
        return None
    arr = lambda e, cond: np.array([e[(bank, cond)][item] for bank, item in keys])  # noqa: E731
    return stats.amplification(
        arr(b, "neutral"), arr(t, "neutral"), arr(b, condition), arr(t, condition)
    ).to_dict()


def warmth_point(variant: Variant) -> tuple[float, float, float] | None:
    w = variant.warmth
    return None if not w or math.isnan(w["mean"]) else (w["mean"], w["lo"], w["hi"])


def emotional_error(variant: Variant) -> dict[str, float] | None:
    """Pooled error in the emotional and false-belief conditions: the frontier's reliability axis."""
    merged: dict[Any, float] = {}
    for m in METRICS:
        if m.key in EMOTIONAL:
            merged.update(outcomes(variant, m))
    return rate(merged)
