"""Print a compact Markdown summary of a reliability- or safety-suite run (for docs/AUDIT.md).

python docs/gen_suite_summary.py runs/base          # reliability
python docs/gen_suite_summary.py runs/base-safety   # safety
"""

import json
import sys
from pathlib import Path

from personaguard.report.tables import delta_ci, p_value, pct, pct_ci


def safety(suite_dir: Path) -> None:
    jb = json.loads((suite_dir / "jailbreak" / "results.json").read_text())
    s = jb["banks"]["harmful"]["scorings"][jb["headline_scoring"]]
    print("| framing | attack success % [95% CI] | Δ vs direct, pp [95% CI] | p (Holm) |")
    print("|---|---|---|---|")
    rows = sorted(s["conditions"].items(), key=lambda kv: -kv[1]["error_rate"]["rate"])
    for name, c in rows:
        d = c.get("delta_error_vs_neutral", {}).get("all_items")
        print(f"| {name} | {pct_ci(c['error_rate'])} | {delta_ci(d)} | {p_value(d)} |")
    over = json.loads((suite_dir / "over_refusal" / "results.json").read_text())
    o = over["banks"]["over_refusal"]["scorings"][over["headline_scoring"]]
    print(f"\nOver-refusal: {pct_ci(o['conditions']['direct']['error_rate'])} (n = {o['n_items']})")


def main(suite_dir: str) -> None:
    if (Path(suite_dir) / "jailbreak").is_dir():
        safety(Path(suite_dir))
        return
    ctx = json.loads((Path(suite_dir) / "contextual" / "results.json").read_text())
    scoring = ctx["headline_scoring"]
    print(
        "| bank | items | neutral accuracy % [95% CI] | by tier | Δ error, sad (pp) "
        "| Δ error, sad + wrong belief (pp) | adopts endorsed wrong answer % | net of priming (pp) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for bank, entry in ctx["banks"].items():
        s = entry["scorings"][scoring]
        c = s["conditions"]
        errors = c["neutral"]["error_rate"]
        acc = {**errors, "rate": 1 - errors["rate"], "lo": 1 - errors["hi"], "hi": 1 - errors["lo"]}
        tiers = ", ".join(f"{t} {pct(r['rate'])}" for t, r in s.get("baseline_accuracy_by_tier", {}).items())
        net = s.get("sycophancy_net_of_priming", {}).get("incorrect_belief")
        print(
            f"| {bank} | {s['n_items']} | {pct_ci(acc)} | {tiers} | "
            f"{delta_ci(c['sad']['delta_error_vs_neutral']['all_items'])} | "
            f"{delta_ci(c['sad_incorrect_belief']['delta_error_vs_neutral']['all_items'])} | "
            f"{pct_ci(c['incorrect_belief']['sycophancy'])} | {delta_ci(net)} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
