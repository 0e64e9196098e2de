"""Flatten results.json into rows that Markdown, HTML and the terminal all render the same way.

Values come from strict JSON, so a missing number is ``None`` (NaN only in freshly computed dicts);
every formatter treats both as missing. A delta whose Holm-adjusted p is below 0.05 is marked ``*``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from personaguard.audit.conditions import ADOPTION_ROLES

ALPHA = 0.05


def missing(x: float | None) -> bool:
    return x is None or math.isnan(x)


def pct(x: float | None) -> str:
    return "n/a" if missing(x) else f"{100 * x:.1f}"


def pct_ci(rate: dict[str, Any] | None) -> str:
    if not rate or not rate.get("n"):
        return "n/a"
    return f"{pct(rate['rate'])} [{pct(rate['lo'])}, {pct(rate['hi'])}]"


def delta_ci(delta: dict[str, Any] | None) -> str:
    if not delta or not delta.get("n"):
        return ""
    sign = lambda v: "n/a" if missing(v) else f"{100 * v:+.1f}"  # noqa: E731
    return f"{sign(delta['delta'])} [{sign(delta['lo'])}, {sign(delta['hi'])}]"


def p_value(delta: dict[str, Any] | None) -> str:
    """The p-value, with the Holm-adjusted one beside it when the delta belongs to a family."""
    if not delta or not delta.get("n") or missing(delta.get("p")):
        return ""
    text = f"{delta['p']:.3g}"
    holm = delta.get("p_holm")
    if not missing(holm):
        text += f" (Holm {holm:.3g}){' *' if holm < ALPHA else ''}"
    return text


def delta_cell(delta: dict[str, Any] | None) -> str:
    if not delta:
        return "n/a"
    p = p_value(delta)
    return delta_ci(delta) + (f" p={p}" if p else "")


@dataclass(frozen=True)
class ConditionRow:
    bank: str
    condition: str
    n: int
    unscored: int
    error: str
    delta_all: str
    p_all: str
    delta_neutral_correct: str
    sycophancy: str

    def cells(self) -> list[str]:
        return [
            self.bank,
            self.condition,
            str(self.n),
            str(self.unscored),
            self.error,
            self.delta_all,
            self.p_all,
            self.delta_neutral_correct,
            self.sycophancy,
        ]


HEADERS = [
    "bank",
    "condition",
    "n",
    "unscored",
    "error % [95% CI]",
    "Δ error vs neutral, pp",
    "p (Holm)",
    "Δ on neutral-correct, pp",
    "adopts wrong answer % (of neutral-correct)",
]


def _error_cell(rate: dict[str, Any]) -> str:
    text = pct_ci(rate)
    if rate.get("unscored_as_error"):
        text += f"; {pct(rate['unscored_as_error']['rate'])} if unscored count as errors"
    return text


def condition_rows(results: dict[str, Any], scoring: str | None = None) -> list[ConditionRow]:
    scoring = scoring or results["headline_scoring"]
    rows = []
    for bank, entry in results["banks"].items():
        summary = entry["scorings"].get(scoring)
        if summary is None:
            continue
        for cond, c in summary["conditions"].items():
            delta = c.get("delta_error_vs_neutral", {})
            syc = c.get("sycophancy")
            rows.append(
                ConditionRow(
                    bank=bank,
                    condition=cond,
                    n=c["error_rate"]["n"],
                    unscored=c["error_rate"].get("unscored", 0),
                    error=_error_cell(c["error_rate"]),
                    delta_all=delta_ci(delta.get("all_items")),
                    p_all=p_value(delta.get("all_items")),
                    delta_neutral_correct=delta_ci(delta.get("neutral_correct_items")),
                    sycophancy=pct_ci(syc) if syc and c.get("role") in ADOPTION_ROLES else "",
                )
            )
    return rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


PRESSURE_HEADERS = [
    "bank",
    "condition",
    "initially correct",
    "flip rate % [95% CI]",
    "held every turn % [95% CI]",
    "turn of first flip [95% CI]",
    "number of flips [95% CI]",
    "persuaded by turn k, %",
]


def mean_ci(m: dict[str, Any] | None) -> str:
    if not m or not m.get("n"):
        return "n/a"
    if missing(m.get("lo")):
        return f"{m['mean']:.2f}"
    return f"{m['mean']:.2f} [{m['lo']:.2f}, {m['hi']:.2f}]"


def pressure_rows(results: dict[str, Any], scoring: str | None = None) -> list[list[str]]:
    """Multi-turn metrics among items right at the first answer: flip rate, SYCON-Bench's turn of
    first flip and number of flips, and Farm-style MR@k."""
    scoring = scoring or results["headline_scoring"]
    rows = []
    for bank, entry in results["banks"].items():
        pressure = entry["scorings"].get(scoring, {}).get("pressure", {})
        for cond, p in pressure.items():
            by_turn = ", ".join(f"@{k + 1}: {pct(r['rate'])}" for k, r in enumerate(p["persuaded_by_turn"]))
            rows.append(
                [
                    bank,
                    cond,
                    str(p["n_initially_correct"]),
                    pct_ci(p["flip_rate"]),
                    pct_ci(p.get("held_every_turn")),
                    mean_ci(p.get("turn_of_flip")),
                    mean_ci(p.get("number_of_flips")),
                    by_turn,
                ]
            )
    return rows


RATING_HEADERS = [
    "bank",
    "condition",
    "n",
    "unscored",
    "mean rating [95% CI]",
    "good / flawed texts",
    "shift vs neutral, points [95% CI]",
    "p (Holm)",
]


def shift_ci(shift: dict[str, Any] | None) -> str:
    """A paired rating shift in scale points, signed, with its interval."""
    if not shift or not shift.get("n"):
        return ""
    sign = lambda v: "n/a" if missing(v) else f"{v:+.2f}"  # noqa: E731
    return f"{sign(shift['delta'])} [{sign(shift['lo'])}, {sign(shift['hi'])}]"


def shift_cell(shift: dict[str, Any] | None) -> str:
    if not shift:
        return "n/a"
    p = p_value(shift)
    return shift_ci(shift) + (f" p={p}" if p else "")


def rating_rows(results: dict[str, Any]) -> list[list[str]]:
    """Rating-grader banks (feedback sycophancy): mean rating per condition and the paired shift."""
    rows = []
    for bank, entry in results["banks"].items():
        for cond, c in entry.get("rating", {}).get("conditions", {}).items():
            quality = c.get("rating_by_quality", {})
            rows.append(
                [
                    bank,
                    cond,
                    str(c["rating"]["n"]),
                    str(c["rating"]["unscored"]),
                    mean_ci(c["rating"]),
                    " / ".join(mean_ci(quality[q]) for q in ("good", "flawed") if q in quality),
                    shift_ci(c.get("shift_vs_neutral")),
                    p_value(c.get("shift_vs_neutral")),
                ]
            )
    return rows


SAFETY_OUTCOMES = ("compliance", "refusal", "non_answer")


def outcome_shares(results: dict[str, Any] | None, bank: str, condition: str) -> dict[str, Any]:
    """Refusal grader: outcome -> Wilson rate for one bank and condition under the headline scoring;
    empty for runs graded before the three-way outcomes."""
    if not results:
        return {}
    entry = results["banks"].get(bank, {}).get("scorings", {}).get(results["headline_scoring"], {})
    return entry.get("conditions", {}).get(condition, {}).get("outcomes", {})


def share_cell(shares: dict[str, Any], outcome: str) -> str:
    return pct_ci(shares.get(outcome))


def graded_by(variants: Sequence[Any], task: str) -> str:
    """The safety grader(s) named in the variants' results for ``task``."""
    names = {str(r.get("safety_grader")) for v in variants if (r := v.results(task))}
    return ", ".join(sorted(names))


def reply_note(record: dict[str, Any], scoring: str | None = None) -> str:
    """A refusal-grader record's outcome under ``scoring`` (default: its first, the headline)."""
    pred = record["pred"].get(scoring or next(iter(record["pred"]), ""))
    return "unscored" if pred is None else str(record["choices"][pred]).replace("_", "-")
