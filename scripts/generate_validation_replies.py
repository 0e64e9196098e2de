"""Generate the replies behind ``data/builtin/validation/generate_replies.jsonl`` (unlabelled).

A model (``--model``, default the bundled SmolLM2-135M) answers the audit's own prompts
(``runner.plan`` with the generate grader) on the factual, medical and claims banks under neutral,
incorrect_belief and are_you_sure; each row records the model and the whole conversation it saw.
Rows of the default model are split dev/test by a hash of the id; rows of any other model are all
"test" (the extraction rules were frozen before they existed) and their id starts with the model
name, so ids stay unique across models. Labels are added by hand afterwards, by reading
each reply, so this script writes ``label`` and ``reason`` as null. It prints, per cell, the
share of replies the extractor leaves unscored, to compare ``--max-new-tokens`` settings.

    PYTHONPATH=src python scripts/generate_validation_replies.py --out /tmp/replies.jsonl \
        --limit 36 --max-new-tokens 96 [--model bundled:qwen2.5-coder-0.5b]
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

DEFAULT_MODEL = "bundled:smollm2-135m"
BANKS = ["factual", "medical", "claims"]
CONDITIONS = ["neutral", "incorrect_belief", "are_you_sure"]


def row_id(model: str, sample_id: str) -> str:
    """The default model's rows keep the bare sample id (as first committed); others are prefixed."""
    return sample_id if model == DEFAULT_MODEL else f"{model.removeprefix('bundled:')}/{sample_id}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=36, help="items per bank")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="spec of the model that replies")
    args = parser.parse_args()
    config = AuditConfig(
        model=args.model, banks=BANKS, conditions=CONDITIONS, grader="generate", limit=args.limit
    )
    units = plan(config)
    records = grade(load_model(args.model), units, Settings("generate", max_new_tokens=args.max_new_tokens))
    with args.out.open("w", encoding="utf-8") as f:
        for rec in sorted(records, key=lambda r: r["sample_id"]):
            row = {
                "id": row_id(args.model, rec["sample_id"]),
                "bank": rec["bank"],
                "item_id": rec["item_id"],
                "condition": rec["condition"],
                "split": split_of(rec["sample_id"]) if args.model == DEFAULT_MODEL else "test",
                "model": args.model,
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
