"""Print the tables of docs/RESULTS.md from a study directory (``personaguard demo --profile full``).

python docs/gen_results.py runs/full

Every number comes from the study's audit runs through the report's own metrics, so RESULTS.md and
the HTML report cannot disagree.
"""

import math
import sys

from personaguard.report import metrics
from personaguard.report.collect import collect
from personaguard.report.tables import delta_ci, pct_ci


def cell(d):
    if not d:
        return "n/a"
    p = d["p_mcnemar"]
    return f"{delta_ci(d)} (p = {p:.2g})" if not math.isnan(p) else delta_ci(d)


def ratio(a):
    if not a or math.isnan(a["value"]):
        return "n/a"
    return f"{a['value']:.2f} [{a['lo']:.2f}, {a['hi']:.2f}]"


def main(study: str) -> None:
    data = collect([study])
    base = data.base
    others = [v for v in data.variants if v is not base]
    print("### Rates (pooled over banks, Wilson 95% CI)\n")
    keys = list(metrics.METRICS)
    print("| variant | warmth [95% CI] | " + " | ".join(m.label for m in keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for v in data.variants:
        w = v.warmth
        warmth = f"{w['mean']:+.2f} [{w['lo']:+.2f}, {w['hi']:+.2f}]" if w else "n/a"
        rates = metrics.variant_rates(v)
        print(
            f"| {v.name} | {warmth} | "
            + " | ".join(pct_ci(rates[m.key]) if rates[m.key] else "n/a" for m in keys)
            + " |"
        )
    print(f"\n### Paired change vs {base.name}, pp [bootstrap 95% CI]\n")
    print("| view | measure | " + " | ".join(v.name for v in others) + " |")
    print("|---|---|" + "---|" * len(others))
    deltas = {v.name: metrics.deltas_vs_base(base, v) for v in others}
    for m in sorted(keys, key=lambda m: m.view != "standard"):
        print(f"| {m.view} | {m.label} | " + " | ".join(cell(deltas[v.name][m.key]) for v in others) + " |")
    print("\n### Amplification (Δ in context / Δ neutral, pooled banks)\n")
    print("| variant | sad | incorrect_belief | sad_incorrect_belief |")
    print("|---|---|---|---|")
    for v in others:
        amps = [
            metrics.amplification(base, v, c) for c in ("sad", "incorrect_belief", "sad_incorrect_belief")
        ]
        print(f"| {v.name} | " + " | ".join(ratio(a) for a in amps) + " |")
    if data.shift:
        print(f"\n### Persona-vector shift at layer {data.shift['layer']} (tuned − base)\n")
        traits = list(next(iter(data.shift["shifts"].values())))
        print("| variant | " + " | ".join(f"{t} (prompt / response)" for t in traits) + " |")
        print("|---" * (len(traits) + 1) + "|")
        for name, by_trait in data.shift["shifts"].items():
            cells = [
                f"{by_trait[t]['prompt_last']:+.2f} / {by_trait[t]['response_avg']:+.2f}" for t in traits
            ]
            print(f"| {name} | " + " | ".join(cells) + " |")
    if data.study:
        total = sum(data.study["seconds"].values())
        print(f"\nWall time: {total / 60:.1f} min ({data.study['profile']} profile).")


if __name__ == "__main__":
    main(sys.argv[1])
