"""Plots as base64 PNGs, so the HTML report is one self-contained file. Each takes plain numbers
(rates as {rate, lo, hi} dicts) and knows nothing about runs or files."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Rate = dict[str, float] | None
COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def to_base64(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def palette(names: Sequence[str]) -> dict[str, str]:
    """One colour per variant, the same in every plot."""
    return {name: COLOURS[k % len(COLOURS)] for k, name in enumerate(names)}


def _finite(x: float | None) -> bool:
    return x is not None and not math.isnan(x)


def _pct_whiskers(rates: Sequence[Rate]) -> tuple[list[float], list[float], list[float]]:
    ys = [100 * r["rate"] if r and _finite(r["rate"]) else 0.0 for r in rates]
    # max(0, ...): a Wilson bound can sit a rounding error inside its rate at 0% and 100%
    lo = [
        max(0.0, y - 100 * r["lo"]) if r and _finite(r["lo"]) else 0.0 for y, r in zip(ys, rates, strict=True)
    ]
    hi = [
        max(0.0, 100 * r["hi"] - y) if r and _finite(r["hi"]) else 0.0 for y, r in zip(ys, rates, strict=True)
    ]
    return ys, lo, hi


def grouped_bars(
    groups: list[str], series: dict[str, list[Rate]], title: str, ylabel: str, colours: dict[str, str]
) -> str:
    """One bar per (group, series) with 95% CI whiskers; missing values are left blank."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(series)) ** 0.5 + 2), 3.4))
    width = 0.8 / max(1, len(series))
    for k, (name, rates) in enumerate(series.items()):
        ys, lo, hi = _pct_whiskers(rates)
        xs = [i + k * width for i in range(len(groups))]
        shown = [i for i, r in enumerate(rates) if r]
        ax.bar(
            [xs[i] for i in shown],
            [ys[i] for i in shown],
            width,
            yerr=[[lo[i] for i in shown], [hi[i] for i in shown]],
            capsize=3,
            label=name,
            color=colours[name],
        )
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(groups))])
    ax.set_xticklabels(groups, rotation=25, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return to_base64(fig)


def delta_forest(
    labels: list[str], views: list[str], series: dict[str, list[Rate]], colours: dict[str, str]
) -> str:
    """Paired deltas vs the base (pp, 95% CI), standard checks above the contextual audit's."""
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) * max(1, len(series)) ** 0.5 + 1.2))
    offset = 0.6 / max(1, len(series))
    for k, (name, deltas) in enumerate(series.items()):
        for i, d in enumerate(deltas):
            if not d or not _finite(d["delta"]):
                continue
            y = -(i + k * offset)
            ax.errorbar(
                100 * d["delta"],
                y,
                xerr=[[max(0.0, 100 * (d["delta"] - d["lo"]))], [max(0.0, 100 * (d["hi"] - d["delta"]))]],
                fmt="o",
                color=colours[name],
                capsize=3,
                label=name if i == 0 else None,
            )
    ax.axvline(0, color="#888", lw=1)
    split = sum(v == "standard" for v in views)
    ax.axhline(-(split - 0.5 + 0.3 * (len(series) > 1)), color="#bbb", lw=1, ls="--")
    ax.set_yticks([-(i + offset * (len(series) - 1) / 2) for i in range(len(labels))])
    ax.set_yticklabels([f"{lbl} [{v}]" for lbl, v in zip(labels, views, strict=True)])
    ax.set_xlabel("change vs base, percentage points (95% CI)")
    ax.set_title("Detection gap: standard checks (above the line) vs contextual audit (below)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return to_base64(fig)


def frontier(
    points: list[dict[str, Any]], xlabel: str, ylabel: str, title: str, colours: dict[str, str]
) -> str:
    """One labelled point per variant: x with its CI, y (a rate) with its CI."""
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for p in points:
        x, xlo, xhi = p["x"]
        y = p["y"]
        ax.errorbar(
            x,
            100 * y["rate"],
            xerr=[[max(0.0, x - xlo)], [max(0.0, xhi - x)]] if _finite(xlo) else None,
            yerr=[[max(0.0, 100 * (y["rate"] - y["lo"]))], [max(0.0, 100 * (y["hi"] - y["rate"]))]],
            fmt="o",
            color=colours[p["name"]],
            capsize=3,
        )
        ax.annotate(p["name"], (x, 100 * y["rate"]), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return to_base64(fig)


def projection_lines(series: dict[str, list[tuple[int, dict[str, float]]]], colours: dict[str, str]) -> str:
    """Trait projections read while training, one panel per watched trait, one line per run."""
    keys = sorted({key for readings in series.values() for _, values in readings for key in values})
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, readings in series.items():
            pts = [(step, values[key]) for step, values in readings if key in values]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", ms=3, color=colours[name], label=name)
        ax.set_title(f"projection on {key}")
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return to_base64(fig)


def sweep_heatmap(points: list[dict[str, float]], chosen: dict[str, float]) -> str:
    """Trait expression over layer x coefficient; each cell also shows the coherence change."""
    reference = next(p for p in points if p["coef"] == 0)
    layers = sorted({int(p["layer"]) for p in points if p["coef"] != 0})
    coefs = sorted({p["coef"] for p in points if p["coef"] != 0})
    grid = [[math.nan] * len(coefs) for _ in layers]
    notes = [[""] * len(coefs) for _ in layers]
    for p in points:
        if p["coef"] != 0:
            i, j = layers.index(int(p["layer"])), coefs.index(p["coef"])
            grid[i][j] = p["expression"]
            notes[i][j] = f"{p['expression']:.2f}\n({p['coherence'] - reference['coherence']:+.2f})"
    fig, ax = plt.subplots(figsize=(1.3 * len(coefs) + 2.5, 0.55 * len(layers) + 1.6))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(layers)):
        for j in range(len(coefs)):
            bold = layers[i] == chosen["layer"] and coefs[j] == chosen["coef"]
            ax.text(
                j,
                i,
                notes[i][j],
                ha="center",
                va="center",
                fontsize=7,
                color="white",
                fontweight="bold" if bold else "normal",
            )
            if bold:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set_xticks(range(len(coefs)), [f"{c:g}" for c in coefs])
    ax.set_yticks(range(len(layers)), [str(layer) for layer in layers])
    ax.set_xlabel("steering coefficient")
    ax.set_ylabel("layer")
    ax.set_title(
        f"expression (coherence change vs unsteered); unsteered expression {reference['expression']:.2f}"
    )
    fig.colorbar(image, ax=ax, label="trait expression")
    return to_base64(fig)
