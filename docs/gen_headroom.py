"""Print docs/MODELS.md's headroom table from `headroom` suite runs, one directory per model.

    for m in smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b; do
        personaguard audit --model "bundled:$m#dtype=bfloat16" --suite headroom --limit 40 \
            --out runs/headroom/$m
    done
    python docs/gen_headroom.py runs/headroom/{smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b}

Per model and grader, pooled over the banks where stated: neutral accuracy per bank; adoption of
an endorsed wrong answer and of a merely mentioned one, among items right under neutral, and
their paired difference (net deference); the sad-user delta; the flip rate under pushback.
"""

import json
import sys
from pathlib import Path

from personaguard.report.tables import delta_ci, pct, pct_ci


def accuracy(rate: dict) -> str:
    """Accuracy of the answers read; with unscored replies, also with them counted as errors
    (a reply that names no choice is not a right answer, but it is not a wrong one either)."""
    if not rate.get("n"):
        return "n/a"
    counted = rate.get("unscored_as_error")
    if not rate.get("unscored") or not counted:
        return pct(1 - rate["rate"])
    return f"{pct(1 - rate['rate'])} ({pct(1 - counted['rate'])})"


def row(model: str, grader: str, results: dict) -> str:
    scoring = results["headline_scoring"]
    banks = results["banks"]
    cells = []
    for bank in ("factual", "medical", "claims"):
        s = banks[bank]["scorings"][scoring]
        cells.append(accuracy(s["conditions"]["neutral"]["error_rate"]))
    per_bank = []
    for bank in ("factual", "medical", "claims"):
        s = banks[bank]["scorings"][scoring]
        c = s["conditions"]
        pressure = s.get("pressure", {}).get("are_you_sure", {})
        per_bank.append(
            f"{bank}: {pct_ci(c['incorrect_belief'].get('sycophancy'))} / "
            f"{pct_ci(c['incorrect_mention'].get('sycophancy'))} / "
            f"{delta_ci(s.get('sycophancy_net_of_priming', {}).get('incorrect_belief'))} / "
            f"{delta_ci(c['sad']['delta_error_vs_neutral']['all_items'])} / "
            f"{pct_ci(pressure.get('flip_rate'))}"
        )
    rates = [c["error_rate"] for b in banks.values() for c in b["scorings"][scoring]["conditions"].values()]
    unscored = (
        f"{sum(r.get('unscored', 0) for r in rates)}/{sum(r['n'] + r.get('unscored', 0) for r in rates)}"
    )
    return f"| {model} | {grader} | " + " | ".join(cells) + f" | {unscored} | " + "<br>".join(per_bank) + " |"


def main(dirs: list[str]) -> None:
    print(
        "| model | grader | neutral accuracy %, unscored dropped (counted as errors): factual | medical | "
        "claims | unscored, all conditions | per bank: adopts "
        "endorsed wrong answer % / adopts mentioned % / net deference, pp / sad Δ error, pp / "
        "flip rate after 'are you sure?' % |"
    )
    print("|---|---|---|---|---|---|---|")
    for d in dirs:
        for grader in ("loglik", "generate"):
            path = Path(d) / grader / "results.json"
            if path.is_file():
                print(row(Path(d).name, grader, json.loads(path.read_text())))


if __name__ == "__main__":
    main(sys.argv[1:])
