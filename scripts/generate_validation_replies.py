"""Generate the replies behind ``data/builtin/validation/generate_replies.jsonl`` (unlabelled).

The bundled model answers the audit's own prompts (``runner.plan`` with the generate grader) on
the factual, medical and claims banks under neutral, incorrect_belief and are_you_sure; each row
records the whole conversation the model saw. Labels are added by hand afterwards, by reading
each reply, so this script writes ``label`` and ``reason`` as null. It prints, per cell, the
share of replies the extractor leaves unscored, to compare ``--max-new-tokens`` settings.

    PYTHONPATH=src python scripts/generate_validation_replies.py --out /tmp/replies.jsonl \
        --limit 36 --max-new-tokens 96
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from personaguard.audit.extraction import extract_choice, split_of
from personaguard.audit.graders import Settings, grade
from personaguard.audit.runner import AuditConfig, plan
from personaguard.models import load_model

MODEL = "bundled:smollm2-135m"
BANKS = ["factual", "medical", "claims"]
CONDITIONS = ["neutral", "incorrect_belief", "are_you_sure"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=36, help="items per bank")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()
    config = AuditConfig(model=MODEL, banks=BANKS, conditions=CONDITIONS, grader="generate", limit=args.limit)
    units = plan(config)
    records = grade(load_model(MODEL), units, Settings("generate", max_new_tokens=args.max_new_tokens))
    with args.out.open("w", encoding="utf-8") as f:
        for rec in sorted(records, key=lambda r: r["sample_id"]):
            row = {
                "id": rec["sample_id"],
                "bank": rec["bank"],
                "item_id": rec["item_id"],
                "condition": rec["condition"],
                "split": split_of(rec["sample_id"]),
                "model": MODEL,
                "max_new_tokens": args.max_new_tokens,
                "conversation": rec.get("conversation", rec["prompt"]),
                "choices": rec["choices"],
                "target": rec["choices"][rec["target"]],
                "incorrect": rec["choices"][rec["incorrect"]] if rec["incorrect"] is not None else None,
                "reply": rec["response"],
                "label": None,
                "reason": None,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(records)} rows written to {args.out}")
    unscored = collections.defaultdict(list)
    for rec in records:
        missing = extract_choice(rec["response"], rec["choices"]) is None
        unscored[(rec["bank"], rec["condition"])].append(missing)
        unscored[("all", "")].append(missing)
    for (bank, condition), flags in sorted(unscored.items()):
        share = sum(flags) / len(flags)
        print(f"{bank:>8} {condition:<17} unscored {sum(flags):>3}/{len(flags)} = {share:.1%}")


if __name__ == "__main__":
    main()
