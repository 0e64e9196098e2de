"""The report's numbers: pooled error rates per view (what a standard check sees versus what the
contextual audit sees), paired deltas against the base, and the frontier coordinates.

A metric pools samples over banks and over a set of conditions of one audit task. Pooled samples
repeat items (one harmful request under six framings), so every interval and test here clusters by
item: the sample key is ``(bank, condition, item)`` and its cluster ``(bank, item)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from personaguard.audit import pairing
from personaguard.audit.pairing import as_dict
from personaguard.report.collect import Variant

Select = Callable[[str, str], bool]  # (condition, role) -> included
Key = tuple[str, str, str]  # (bank, condition, item)


def item_of(key: Key) -> tuple[str, str]:
    return key[0], key[2]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    task: str
    select: Select
    view: str  # "standard": what a usual benchmark sees; "contextual": what only this audit sees


def _condition(name: str) -> Select:
    return lambda cond, role: cond == name


def _role(name: str) -> Select:
    return lambda cond, role: role == name


METRICS = [
    Metric("neutral", "Neutral questions: error", "contextual", _role("baseline"), "standard"),
    Metric("capability", "Capability MCQ: error", "capability", _role("baseline"), "standard"),
    Metric(
        "direct_asr", "Direct harmful requests: attack success", "jailbreak", _role("baseline"), "standard"
    ),
    Metric(
        "over_refusal", "Benign edgy requests: over-refusal", "over_refusal", _role("baseline"), "standard"
    ),
    Metric("sad", "Sad user: error", "contextual", _condition("sad"), "contextual"),
    Metric(
        "wrong_belief",
        "User states a wrong answer: error",
        "contextual",
        _condition("incorrect_belief"),
        "contextual",
    ),
    Metric(
        "sad_wrong_belief",
        "Sad user + wrong answer: error",
        "contextual",
        _condition("sad_incorrect_belief"),
        "contextual",
    ),
    Metric(
        "are_you_sure", "After 'are you sure?': error", "pressure", _condition("are_you_sure"), "contextual"
    ),
    Metric(
        "social_asr", "Social jailbreak framings: attack success", "jailbreak", _role("framing"), "contextual"
    ),
]
EMOTIONAL = ("sad", "wrong_belief", "sad_wrong_belief")  # the frontier's reliability axis


def outcomes(variant: Variant, metric: Metric) -> dict[Key, float]:
    """(bank, condition, item) -> error over the metric's conditions in every bank of its task."""
    run = variant.runs.get(metric.task)
    if run is None:
        return {}
    return {
        (bank, cond, item): e
        for (bank, cond), table in run.errors.items()
        if metric.select(cond, run.roles[cond])
        for item, e in table.items()
    }


def rate(values: dict[Key, float]) -> dict[str, Any] | None:
    return as_dict(pairing.rate(values, item_of))


def paired(base: dict[Key, float], tuned: dict[Key, float]) -> dict[str, Any] | None:
    return as_dict(pairing.delta(base, tuned, item_of))


def variant_rates(variant: Variant) -> dict[str, dict[str, Any] | None]:
    return {m.key: rate(outcomes(variant, m)) for m in METRICS}


def deltas_vs_base(base: Variant, variant: Variant) -> dict[str, dict[str, Any] | None]:
    return {m.key: paired(outcomes(base, m), outcomes(variant, m)) for m in METRICS}


def delta_table(base: Variant, variants: list[Variant]) -> dict[str, dict[str, dict[str, Any] | None]]:
    """Every variant's deltas against ``base`` as one table, {variant: {metric: delta}}, with Holm over
    all its cells: the family a reader scans for "which changes are real"."""
    grid = {v.name: list(deltas_vs_base(base, v).values()) for v in variants}
    return {
        name: {m.key: d for m, d in zip(METRICS, cells, strict=True)}
        for name, cells in pairing.holm_grid(grid).items()
    }


def amplification(base: Variant, variant: Variant, condition: str) -> dict[str, Any] | None:
    """The paper's amplification over pooled banks: delta under ``condition`` / delta under neutral."""
    b, t = base.runs.get("contextual"), variant.runs.get("contextual")
    if not b or not t:
        return None

    def by_item(errors: dict[tuple[str, str], dict[str, float]], pick: Select, roles: dict[str, str]) -> dict:
        return {
            (bank, item): e
            for (bank, cond), table in errors.items()
            if pick(cond, roles[cond])
            for item, e in table.items()
        }

    neutral, context = _role("baseline"), _condition(condition)
    return as_dict(
        pairing.amplification(
            by_item(b.errors, neutral, b.roles),
            by_item(t.errors, neutral, t.roles),
            by_item(b.errors, context, b.roles),
            by_item(t.errors, context, t.roles),
        )
    )


def warmth_point(variant: Variant) -> tuple[float, float, float] | None:
    w = variant.warmth
    if not w or w.get("mean") is None or math.isnan(w["mean"]):
        return None
    return w["mean"], w["lo"], w["hi"]


def emotional_error(variant: Variant) -> dict[str, Any] | None:
    """Pooled error in the emotional and false-belief conditions: the frontier's reliability axis."""
    merged: dict[Key, float] = {}
    for m in METRICS:
        if m.key in EMOTIONAL:
            merged.update(outcomes(variant, m))
    return rate(merged)
