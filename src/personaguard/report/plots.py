"""Plots as base64 PNGs, so the HTML report is one self-contained file."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def to_base64(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def error_bars(runs: dict[str, dict[str, Any]], bank: str) -> str:
    """Error rate by condition for each run, with Wilson 95% whiskers."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    names = list(runs)
    conditions: list[str] = []
    for results in runs.values():
        summary = results["banks"].get(bank, {}).get("scorings", {}).get(results["headline_scoring"])
        for cond in (summary or {}).get("conditions", {}):
            if cond not in conditions:
                conditions.append(cond)
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        results = runs[name]
        summary = results["banks"].get(bank, {}).get("scorings", {}).get(results["headline_scoring"])
        rates = [(summary or {}).get("conditions", {}).get(c, {}).get("error_rate") for c in conditions]
        ys = [100 * r["rate"] if r and not math.isnan(r["rate"]) else 0.0 for r in rates]
        pairs = list(zip(ys, rates, strict=True))
        lo = [y - 100 * r["lo"] if r and not math.isnan(r["lo"]) else 0.0 for y, r in pairs]
        hi = [100 * r["hi"] - y if r and not math.isnan(r["hi"]) else 0.0 for y, r in pairs]
        xs = [i + k * width for i in range(len(conditions))]
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=name)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(conditions))])
    ax.set_xticklabels(conditions, rotation=25, ha="right")
    ax.set_ylabel("error rate, %")
    ax.set_ylim(0, 100)
    ax.set_title(f"{bank}: error by condition (95% Wilson CI)")
    if len(names) > 1:
        ax.legend(fontsize=8)
    return to_base64(fig)
