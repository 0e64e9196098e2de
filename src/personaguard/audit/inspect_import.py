"""An Inspect AI eval log of a personaguard task, as a personaguard run directory.

The run directory is what ``personaguard audit`` writes (config.yaml, fingerprint.json,
samples.jsonl in the generate grader's record format, results.json from ``summarise``), so
``compare`` and ``report`` read it like any other run. Its fingerprint carries the bank and
condition hashes the task recorded when it asked the questions, which are the hashes a native
run of the same items has.

Its grading block says ``grader: inspect``, deliberately different from ``generate``: Inspect's
provider produced the replies (its own batching, chat handling and sampling defaults), so an
imported run pairs with another import of the same task and generation settings, and ``compare``
refuses to pair it with a native run, where a difference in engine would read as the model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from personaguard.audit.runstore import RunStore
from personaguard.audit.summary import summarise
from personaguard.errors import PersonaguardError
from personaguard.fingerprint import dir_sha256

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample, EvalSpec

GRADER = "inspect"
SCORER = "committed_choice"  # the name of inspect_tasks' scorer, whose readings a record takes
# The question's part of a record (graders.base_record), carried in each sample's metadata.
RECORD_FIELDS = (
    "bank", "item_id", "condition", "role", "family", "template", "tier", "choices", "target", "incorrect"
)  # fmt: skip
HEADLINE = "match"  # the committed choice, as the generate grader's headline
# Generate settings that decide how a request travels, not what the model replies.
TRANSPORT_SETTINGS = {
    "max_retries", "timeout", "attempt_timeout", "stream_idle_timeout", "max_connections",
    "adaptive_connections", "extra_headers", "cache", "cache_prompt", "batch",
}  # fmt: skip


def _read(log: Path) -> EvalLog:
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise PersonaguardError(
            "import-inspect needs inspect-ai: pip install 'personaguard[inspect]'"
        ) from None
    if not log.is_file():
        raise PersonaguardError(f"{log}: no such Inspect log file")
    try:
        return read_eval_log(str(log), exclude_fields={"events"})  # the replies are in the messages
    except Exception as exc:  # a truncated zip, bad JSON, an unknown schema: one message for all
        raise PersonaguardError(f"{log}: not a readable Inspect eval log ({exc})") from None


def _check(log: Path, eval_log: EvalLog) -> dict[str, Any]:
    """The task's personaguard metadata, once the log is known to hold one complete, clean run."""
    spec = eval_log.eval
    meta = (spec.metadata or {}).get("personaguard")
    if meta is None:
        raise PersonaguardError(
            f"{log}: task {spec.task!r} is not a personaguard task; run `inspect eval personaguard/<bank>`"
        )
    if eval_log.status != "success":
        raise PersonaguardError(f"{log}: the eval's status is {eval_log.status!r}; import a finished eval")
    if spec.config.limit is not None or spec.config.sample_id is not None:
        raise PersonaguardError(
            f"{log}: the eval ran a subset of samples (--limit or --sample-id), which drops some conditions "
            "of an item; choose items with -T limit=N instead"
        )
    if (spec.config.epochs or 1) != 1:
        raise PersonaguardError(
            f"{log}: the eval ran {spec.config.epochs} epochs; a run holds one reply per sample"
        )
    samples = eval_log.samples or []
    if len(samples) != spec.dataset.samples:
        raise PersonaguardError(f"{log}: holds {len(samples)} of the task's {spec.dataset.samples} samples")
    failed = [s for s in samples if s.error is not None]
    if failed:
        raise PersonaguardError(
            f"{log}: {len(failed)} sample(s) ended in an error (first {failed[0].id}: "
            f"{failed[0].error.message}); retry them (inspect eval-retry) before importing"
        )
    return meta


def _chat(messages: Any) -> list[dict[str, str]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [{"role": m.role, "content": m.text} for m in messages]


def to_record(sample: EvalSample) -> dict[str, Any]:
    """One Inspect sample as the generate grader's record: the first reply's reading at the top,
    and for multi-turn conditions every turn, the last answer as ``pred``, and the conversation."""
    meta = sample.metadata
    score = sample.scores.get(SCORER) if sample.scores else None
    if score is None or not score.metadata or "turns" not in score.metadata:
        raise PersonaguardError(
            f"sample {sample.id}: no {SCORER} score; score the log with personaguard's task"
        )
    turns = score.metadata["turns"]
    replies = [m.text for m in sample.messages if m.role == "assistant"]
    if len(replies) != len(turns):
        raise PersonaguardError(f"sample {sample.id}: {len(replies)} replies but {len(turns)} scored turns")
    read = [
        {
            "pred": {HEADLINE: t["choice"]},
            "response": reply,
            **{k: t[k] for k in ("mentioned", "extraction_rule")},
        }
        for t, reply in zip(turns, replies, strict=True)
    ]
    record = {
        "sample_id": f"{meta['bank']}/{meta['item_id']}/{meta['condition']}",
        **{key: meta[key] for key in RECORD_FIELDS},
        "grader": GRADER,
        "prompt": _chat(sample.input),
        **read[0],
    }
    if len(read) > 1:
        record["turns"] = [{"pred": read[0]["pred"]}, *read[1:]]
        record["pred"] = read[-1]["pred"]
        record["conversation"] = _chat(sample.messages[:-1])  # up to the last follow-up
    return record


def model_fingerprint(spec: EvalSpec) -> dict[str, Any]:
    """Inspect's model string and args; for ``hf/<local dir>`` also the weights' hash (taken at
    import, so import right after the eval if the directory may change)."""
    provider, _, name = spec.model.partition("/")
    args = dict(spec.model_args)
    local = provider == "hf" and Path(name).is_dir()
    return {
        "inspect_model": spec.model,
        "base_url": spec.model_base_url,
        "model_args": args,
        "weights": dir_sha256(name) if local else None,
        "dtype": args.get("dtype") or args.get("torch_dtype"),
    }


def grading(eval_log: EvalLog) -> dict[str, Any]:
    """How the replies were produced and read: the effective generate settings that shape a reply
    (the task's, overridden by the eval's, over the model's), and greedy or sampled where the
    provider takes that as a model arg (``-M do_sample=false`` for ``hf/``)."""
    spec = eval_log.eval
    effective = spec.model_generate_config.merge(eval_log.plan.config)
    settings = effective.model_dump(mode="json", exclude_none=True, exclude=TRANSPORT_SETTINGS)
    if "do_sample" in spec.model_args:
        settings["do_sample"] = spec.model_args["do_sample"]
    return {
        "grader": GRADER,
        "headline": HEADLINE,
        "max_new_tokens": effective.max_tokens,
        "scorer": f"personaguard/{SCORER}",
        "task_version": spec.task_version,
        "generation": settings,
    }


def import_inspect_log(log: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the run directory ``out`` from an Inspect log of a personaguard task; returns its
    results. Importing the same eval again is a no-op; another eval into ``out`` is refused."""
    log = Path(log)
    eval_log = _read(log)
    meta = _check(log, eval_log)
    spec = eval_log.eval
    records = [to_record(s) for s in eval_log.samples or []]
    config = {
        "source": "inspect",
        "eval_id": spec.eval_id,
        "task": spec.task,
        "task_version": spec.task_version,
        "task_args": spec.task_args,
        "model": spec.model,
        "model_args": spec.model_args,
        "inspect_ai": spec.packages.get("inspect_ai"),
    }
    fingerprint = {
        "model": model_fingerprint(spec),
        "judge": None,
        "banks": meta["banks"],
        "conditions": meta["conditions"],
        "grading": grading(eval_log),
    }
    with RunStore.open(out, config, fingerprint) as store:
        done = store.done_ids()
        store.append(r for r in records if r["sample_id"] not in done)
        wanted = {r["sample_id"] for r in records}
        kept = [r for r in store.records() if r["sample_id"] in wanted]
        results = {
            "model": spec.model,
            "grader": GRADER,
            "judge": None,
            "n_samples": len(kept),
            "inspect": {"log": str(log.resolve()), "task": spec.task, "eval_id": spec.eval_id},
            **summarise(kept, HEADLINE),
        }
        store.write_results(results)
    return results
