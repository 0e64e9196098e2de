"""Print a compact Markdown summary of a reliability-suite run (for docs/AUDIT.md).

python docs/gen_suite_summary.py runs/base
"""

import json
import sys
from pathlib import Path

from personaguard.audit.stats import wilson
from personaguard.report.tables import delta_ci, pct, pct_ci


def main(suite_dir: str) -> None:
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
        acc = wilson(errors["n"] - errors["k"], errors["n"]).to_dict()
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
