"""Run an audit: items x conditions -> graded samples -> results.json, resumable at any point.

Work is cut into fixed chunks over a deterministic order (by prompt length, then id). A chunk
that is not fully on disk is recomputed whole, so a killed-and-resumed run computes every sample
in exactly the same batch as an uninterrupted one and the results are identical.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from personaguard.audit.conditions import resolve_conditions
from personaguard.audit.graders import RATING_PREFILL, RATING_SCALE, Settings, Unit, grade
from personaguard.audit.runstore import RunStore
from personaguard.audit.safety_graders import (
    DEFAULT_SAFETY_GRADER,
    SafetyGrader,
    SafetyGraderName,
    load_safety_grader,
)
from personaguard.audit.summary import summarise
from personaguard.data.catalog import bank_path
from personaguard.data.items import load_items, stable_subset
from personaguard.errors import PersonaguardError
from personaguard.fingerprint import file_sha256, json_sha256
from personaguard.models import LanguageModel, load_model, parse_spec
from personaguard.models.fingerprint import model_fingerprint

DEFAULT_CONDITIONS = ["neutral", "incorrect_belief", "incorrect_mention", "correct_belief"]
GENERATIVE = ("generate", "refusal")  # graders whose samples depend on decoding settings


class AuditConfig(BaseModel):
    """Everything that determines an audit's samples; saved as the run's config.yaml."""

    model_config = ConfigDict(extra="forbid")

    model: str
    banks: list[str] = Field(default_factory=lambda: ["factual"])
    conditions: list[str] = Field(default_factory=lambda: list(DEFAULT_CONDITIONS))
    conditions_file: str | None = None
    grader: Literal["loglik", "generate", "refusal", "rating"] = "loglik"
    headline: Literal["mean", "sum"] = "sum"
    safety_grader: SafetyGraderName | None = Field(
        default=None, description="refusal grader only: rules | probe | judge (None: the default)"
    )
    judge: str | None = None
    limit: int | None = Field(default=None, ge=1)
    tier: str | None = None
    seed: int = Field(default=0, description="which items --limit picks (a stable, seeded subset)")
    sampling_seed: int = Field(default=0, description="generation's sampling seed (temperature > 0)")
    temperature: float = Field(default=0.0, ge=0, description="generation temperature; 0 = greedy")
    max_new_tokens: int = Field(default=48, ge=1)
    chunk_size: int = Field(default=64, ge=1)

    @model_validator(mode="after")
    def _safety_grader_for_refusal_only(self) -> AuditConfig:
        """The refusal grader always names its safety grader, so config.yaml says how replies were
        graded; other graders have none."""
        if self.grader != "refusal":
            if self.safety_grader is not None:
                raise ValueError("safety_grader applies only to grader 'refusal'")
        elif self.safety_grader is None:
            self.safety_grader = DEFAULT_SAFETY_GRADER
        if self.safety_grader == "judge" and not self.judge:
            raise ValueError("safety_grader 'judge' needs a judge model spec in 'judge'")
        return self


def plan(config: AuditConfig) -> list[Unit]:
    """The full, deterministic list of work for a config (no model needed)."""
    conditions = resolve_conditions(config.conditions, config.conditions_file)
    if config.grader == "rating" and (multi := [c.id for c in conditions if c.followups]):
        raise PersonaguardError(f"the rating grader takes single-turn conditions; {multi} have follow-ups")
    units: list[Unit] = []
    for bank in config.banks:
        path = bank_path(bank)
        items = load_items(path)
        if config.tier:
            items = [i for i in items if i.tier == config.tier]
        items = stable_subset(items, config.limit, config.seed)
        if config.grader in ("loglik", "generate") and any(not i.choices for i in items):
            raise PersonaguardError(
                f"bank {bank!r} has items without choices; grade open requests with --grader refusal "
                "and texts to rate with --grader rating"
            )
        units.extend(
            Unit(item, cond, path.stem) for item in items for cond in conditions if cond.applies_to(item)
        )
    if not units:
        raise PersonaguardError("nothing to audit: no items match the banks, tier and conditions")
    return sorted(units, key=lambda u: (len(str(u.prompt)), u.sample_id))


def questions_fingerprint(
    banks: list[str], conditions: list[str], conditions_file: str | None = None
) -> dict[str, dict[str, str]]:
    """The bank files and condition definitions behind the questions, by content: the part of a
    run's fingerprint that any run of the same questions shares, whoever asked them (an Inspect
    task records it too)."""
    resolved = resolve_conditions(conditions, conditions_file)
    return {
        "banks": {bank_path(b).stem: file_sha256(bank_path(b)) for b in banks},
        "conditions": {c.id: json_sha256(c.model_dump(mode="json")) for c in resolved},
    }


def run_fingerprint(config: AuditConfig) -> dict[str, Any]:
    """What the samples depend on, by content: the model and judge behind their specs, the bank
    files, the condition definitions, and how replies are graded. ``compare`` reads the parts that
    must match between runs (everything but the model) from here."""
    return {
        "model": model_fingerprint(config.model),
        "judge": model_fingerprint(config.judge) if config.judge else None,
        **questions_fingerprint(config.banks, config.conditions, config.conditions_file),
        "grading": grading_fingerprint(config),
    }


def grading_fingerprint(config: AuditConfig) -> dict[str, Any]:
    """How replies are graded; ``compare`` refuses to pair runs where any of it differs."""
    from personaguard.audit.safety_graders import identity

    grading: dict[str, Any] = {
        "grader": config.grader,
        "headline": config.headline,
        "max_new_tokens": config.max_new_tokens if config.grader in GENERATIVE else None,
        "temperature": config.temperature if config.grader in GENERATIVE else None,
    }
    if config.grader == "rating":
        grading["rating"] = {"prefill": RATING_PREFILL, "scale": list(RATING_SCALE)}
    if config.safety_grader:  # absent for other graders, so their fingerprints are unchanged
        grading["safety_grader"] = identity(config.safety_grader)
    return grading


def headline_scoring(config: AuditConfig) -> str:
    if config.grader == "refusal":
        assert config.safety_grader is not None  # set by the validator
        return config.safety_grader
    return {"loglik": config.headline, "generate": "match", "rating": "expected"}[config.grader]


def settings_for(config: AuditConfig, judge: LanguageModel | None) -> Settings:
    """The grading settings of a config; the refusal grader runs its safety grader, then the judge."""
    safety: tuple[SafetyGrader, ...] = ()
    if config.grader == "refusal":
        assert config.safety_grader is not None
        safety = (load_safety_grader(config.safety_grader, judge),)
        if judge is not None and config.safety_grader != "judge":
            safety += (load_safety_grader("judge", judge),)
    return Settings(
        config.grader,
        config.headline,
        config.max_new_tokens,
        config.sampling_seed,
        config.temperature,
        judge,
        safety,
    )


def results_of(config: AuditConfig, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": config.model,
        "grader": config.grader,
        "safety_grader": config.safety_grader,
        "judge": config.judge,
        "n_samples": len(records),
        **summarise(records, headline_scoring(config)),
    }


def run_audit(
    config: AuditConfig,
    out: str | Path,
    model: LanguageModel | None = None,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Audit ``config.model`` into ``out``; re-running the same call resumes where it stopped.

    Pass an already-loaded ``model`` to reuse it across audits. Returns the results dict that is
    also written to ``out/results.json``.
    """
    parse_spec(config.model)  # fail fast on a bad spec, before any work
    units = plan(config)
    chunks = [units[i : i + config.chunk_size] for i in range(0, len(units), config.chunk_size)]
    with RunStore.open(out, config.model_dump(mode="json"), run_fingerprint(config)) as store:
        done = store.done_ids()
        todo = [c for c in chunks if not all(u.sample_id in done for u in c)]
        settings = None
        if todo:
            model = model or load_model(config.model)
            judge = load_model(config.judge) if config.judge else None
            settings = settings_for(config, judge)
        with Progress(
            TextColumn("audit {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not progress,
            transient=True,
        ) as bar:
            task = bar.add_task(
                config.model, total=len(units), completed=len(units) - sum(len(c) for c in todo)
            )
            for index, chunk in enumerate(todo):
                assert model is not None and settings is not None
                records = [r for r in grade(model, chunk, settings) if r["sample_id"] not in done]
                store.append(records)
                done.update(r["sample_id"] for r in records)
                bar.advance(task, len(chunk))
                if on_chunk:
                    on_chunk(index)
        wanted = {u.sample_id for u in units}
        records = [r for r in store.records() if r["sample_id"] in wanted]
        results = results_of(config, records)
        store.write_results(results)
    return results
