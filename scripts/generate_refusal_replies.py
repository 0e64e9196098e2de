"""Generate the replies behind ``data/builtin/refusal/safety_replies.jsonl`` (unlabelled).

Each model answers the audit's own prompts (``runner.plan`` with the refusal grader): harmful
requests (the fetched ``harmful`` bank) asked directly and under every framing of
``conditions/safety.yaml``, and benign-but-edgy requests (``over_refusal``) asked directly, greedy,
with the audit's default reply length. Each model gets its own stable subset of requests (the
subset seed is the model's position in ``--model``), so the set covers more distinct requests.
Labels are added by hand afterwards, by reading each reply, so this script writes ``label`` and
``reason`` as null. Rows already in ``--out`` (same id) are kept, so a killed run resumes.

    PYTHONPATH=src python scripts/generate_refusal_replies.py --out /tmp/replies.jsonl \
        --model 'bundled:smollm2-135m#dtype=bfloat16' --harmful 18 --benign 48
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from personaguard.audit.graders import Unit
from personaguard.audit.runner import AuditConfig, plan
from personaguard.audit.safety_labels import split_of
from personaguard.models import load_model

SAFETY_CONDITIONS = ["direct", "friendship", "grief", "flattery", "authority", "desperation", "roleplay"]
MAX_NEW_TOKENS = AuditConfig.model_fields["max_new_tokens"].default


def units_for(harmful: int, benign: int, seed: int) -> list[Unit]:
    jailbreak = AuditConfig(
        model="-", banks=["harmful"], conditions=SAFETY_CONDITIONS, grader="refusal", limit=harmful, seed=seed
    )
    over = AuditConfig(
        model="-", banks=["over_refusal"], conditions=["direct"], grader="refusal", limit=benign, seed=seed
    )
    return plan(jailbreak) + plan(over)


def row_of(unit: Unit, model: str, reply: str) -> dict[str, object]:
    request_id = f"{unit.bank}/{unit.item.id}"
    return {
        "id": f"{model}|{unit.sample_id}",
        "request_id": request_id,
        "split": split_of(request_id),
        "model": model,
        "bank": unit.bank,
        "condition": unit.condition.id,
        "kind": "benign" if unit.item.target == "compliance" else "harmful",
        "request": unit.item.input,
        "conversation": unit.prompt,
        "max_new_tokens": MAX_NEW_TOKENS,
        "reply": reply,
        "label": None,
        "reason": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", action="append", required=True, help="model spec (repeatable)")
    parser.add_argument("--harmful", type=int, default=18, help="harmful requests per model")
    parser.add_argument("--benign", type=int, default=48, help="benign-but-edgy requests per model")
    parser.add_argument("--batch", type=int, default=16, help="prompts per generate call")
    args = parser.parse_args()
    done = set()
    if args.out.exists():
        done = {json.loads(line)["id"] for line in args.out.read_text().splitlines() if line.strip()}
    for seed, spec in enumerate(args.model):
        name = spec.split("#", 1)[0]
        units = [u for u in units_for(args.harmful, args.benign, seed) if f"{name}|{u.sample_id}" not in done]
        if not units:
            continue
        model = load_model(spec)
        for start in range(0, len(units), args.batch):
            batch = units[start : start + args.batch]
            replies = model.generate([u.prompt for u in batch], max_new_tokens=MAX_NEW_TOKENS, seed=0)
            with args.out.open("a", encoding="utf-8") as handle:
                for unit, reply in zip(batch, replies, strict=True):
                    handle.write(json.dumps(row_of(unit, name, reply), ensure_ascii=False) + "\n")
            print(f"{name}: {start + len(batch)}/{len(units)}", flush=True)


if __name__ == "__main__":
    main()
