"""Print the tables of docs/RESULTS.md from a study directory (``personaguard demo --profile full``),
or from audit runs given as NAME=DIR, the first being the base.

python docs/gen_results.py runs/full
python docs/gen_results.py base=runs/epoch15/base/contextual warm=runs/epoch15/warm-audit/contextual

Every number comes from the study's audit runs through the report's own metrics, so RESULTS.md and
the HTML report cannot disagree.
"""

import sys

from personaguard.persona.warmth import paired_shift
from personaguard.report import metrics
from personaguard.report.collect import collect
from personaguard.report.tables import delta_cell as cell
from personaguard.report.tables import missing, pct_ci


def ratio(a):
    if not a or missing(a["value"]):
        return "n/a"
    return f"{a['value']:.2f} [{a['lo']:.2f}, {a['hi']:.2f}]"


def main(args: list[str]) -> None:
    named = [a for a in args if "=" in a]
    if not args or (named and len(named) != len(args)):
        sys.exit("usage: python docs/gen_results.py STUDY_DIR | NAME=RUN_DIR NAME=RUN_DIR ...")
    data = collect(dict(a.split("=", 1) for a in args) if named else args)
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
    print(
        f"\n### Paired change vs {base.name}, pp [Tango 95% CI and sign-flip p, clustered by item; "
        "Holm over the table, * survives]\n"
    )
    print("| view | measure | " + " | ".join(v.name for v in others) + " |")
    print("|---|---|" + "---|" * len(others))
    deltas = metrics.delta_table(base, others)
    for m in sorted(keys, key=lambda m: m.view != "standard"):
        print(f"| {m.view} | {m.label} | " + " | ".join(cell(deltas[v.name][m.key]) for v in others) + " |")
    warm = next((v for v in others if v.name == "warm"), None)
    rivals = [v for v in others if warm and v is not warm and v.kind == "adapter"]
    if rivals:
        print("\n### Paired change vs the warm adapter, pp (the low-agreeableness fix, warm and reliable)\n")
        print("| view | measure | " + " | ".join(v.name for v in rivals) + " |")
        print("|---|---|" + "---|" * len(rivals))
        vs_warm = metrics.delta_table(warm, rivals)
        for m in sorted(keys, key=lambda m: m.view != "standard"):
            print(
                f"| {m.view} | {m.label} | " + " | ".join(cell(vs_warm[v.name][m.key]) for v in rivals) + " |"
            )
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
    print("\n### Warmth, paired by prompt (variant − other, t 95% CI)\n")
    print("| variant | vs | Δ warmth [95% CI] | n |")
    print("|---|---|---|---|")
    for v in others:
        for other in (base, *(o for o in others if o.name == "warm" and o is not v)):
            d = paired_shift(other.warmth, v.warmth) if v.warmth and other.warmth else None
            if d and d["n"]:
                ci = f"{d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]"
                print(f"| {v.name} | {other.name} | {ci} | {d['n']} |")


if __name__ == "__main__":
    main(sys.argv[1:])
