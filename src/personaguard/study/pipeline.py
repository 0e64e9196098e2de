"""The main job: audit the base model, extract persona vectors, train persona adapters (monitored,
optionally with preventative steering), audit every variant, measure warmth and vector shifts,
then write the report. Every step writes its artefact atomically and is skipped when the artefact
exists, so an interrupted study resumes where it stopped (training and audits resume mid-way)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from personaguard.audit.runstore import write_json
from personaguard.models.spec import parse_spec
from personaguard.study.profile import Profile, Steer, Variant, load_profile
from personaguard.study_layout import AUDIT_KINDS, StudyLayout

MONITORED = ("warmth", "sycophancy")  # traits whose projection is logged while training

Log = Callable[[str], None]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)


def steer_ref(layout: StudyLayout, steer: Steer, chosen_layer: int) -> str:
    """``FILE:LAYER:COEF`` as spec options and TrainConfig take it."""
    layer = chosen_layer if steer.layer is None else steer.layer
    return f"{layout.vectors(steer.trait).resolve()}:{layer}:{steer.coef:g}"


def variant_spec(layout: StudyLayout, base: str, variant: Variant, chosen_layer: int) -> str:
    """The base spec with the variant's adapter or steering added; the base's options (dtype,
    batch size) carry over, so every variant is measured the same way."""
    parsed = parse_spec(base)
    if variant.steer is not None:
        steer = steer_ref(layout, variant.steer, chosen_layer)
        return str(replace(parsed, options={**parsed.options, "steer": steer}))
    return str(replace(parsed, adapter=str(layout.adapter(variant.name).resolve())))


def ensure_vectors(base_model: Any, profile: Profile, layout: StudyLayout, log: Log) -> None:
    from personaguard.vectors.extract import extract
    from personaguard.vectors.store import save_vectors
    from personaguard.vectors.traits import load_trait

    for trait in profile.vectors.traits:
        path = layout.vectors(trait)
        if path.is_file():
            continue
        log(f"extracting the {trait} vector")
        vectors = extract(
            base_model,
            load_trait(trait),
            n_questions=profile.vectors.questions,
            max_new_tokens=profile.vectors.max_new_tokens,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_vectors(vectors, path)


def ensure_sweep(
    base_model: Any, profile: Profile, layout: StudyLayout, log: Log, progress: bool
) -> dict[str, Any]:
    """Layer x coefficient grid for the sweep trait, and the automatic choice."""
    from personaguard.vectors.store import load_vectors
    from personaguard.vectors.sweep import choose, sweep
    from personaguard.vectors.traits import load_trait

    if layout.sweep.is_file():
        return json.loads(layout.sweep.read_text())
    cfg = profile.sweep
    log(f"sweeping {cfg.trait}: layers {cfg.layers} x coefs {cfg.coefs}")
    points = sweep(
        base_model,
        load_vectors(layout.vectors(cfg.trait)),
        load_trait(cfg.trait),
        cfg.layers,
        cfg.coefs,
        cfg.questions,
        cfg.max_new_tokens,
        progress,
    )
    best = choose(points)
    result = {"trait": cfg.trait, "points": [p.as_dict() for p in points], "chosen": best.as_dict()}
    _write_json(layout.sweep, result)
    return result


def ensure_adapter(
    base: str, variant: Variant, profile: Profile, layout: StudyLayout, chosen_layer: int, progress: bool
) -> None:
    from personaguard.data.jsonl import write_jsonl
    from personaguard.persona.dataset import build_persona_dataset
    from personaguard.training.config import TrainConfig
    from personaguard.training.sft import train

    assert variant.persona is not None
    data = layout.data(variant.persona)
    if not data.is_file():
        write_jsonl(data, build_persona_dataset(variant.persona, "train"))
    monitor = [
        f"{layout.vectors(t).resolve()}:{profile.vectors.probe_layer}"
        for t in MONITORED
        if t in profile.vectors.traits
    ]
    device = parse_spec(base).option("device")  # adapters train where the base spec says it runs
    settings = {"device": "cuda" if device.startswith("cuda") else device} if device else {}
    config = TrainConfig(
        model=base,
        data=str(data.resolve()),
        monitor=monitor,
        steer=steer_ref(layout, variant.train_steer, chosen_layer) if variant.train_steer else None,
        **(settings | profile.train),
    )
    train(config, layout.adapter(variant.name), progress=progress)


def ensure_audits(
    name: str, spec: str, loaded: Any, profile: Profile, layout: StudyLayout, progress: bool
) -> None:
    from personaguard.audit.suites import run_suite

    for kind, size in zip(AUDIT_KINDS, (profile.reliability, profile.safety), strict=True):
        out = layout.audit(name, kind)
        if not (out / "suite.json").is_file():
            run_suite(size.suite, spec, out, loaded=loaded, progress=progress, limit=size.limit)


def ensure_warmth(name: str, scorer: Any, responder: Any, profile: Profile, layout: StudyLayout) -> None:
    from personaguard.data.jsonl import write_jsonl
    from personaguard.persona.dataset import build_persona_dataset, load_conversations
    from personaguard.persona.warmth import responder_warmth

    if layout.warmth(name).is_file():
        return
    if not layout.heldout.is_file():
        write_jsonl(layout.heldout, build_persona_dataset("neutral", "heldout"))
    chats = load_conversations(layout.heldout)[: profile.warmth.prompts]
    _write_json(
        layout.warmth(name), responder_warmth(scorer, responder, chats, profile.warmth.max_new_tokens)
    )


def ensure_shift(base_model: Any, specs: dict[str, str], profile: Profile, layout: StudyLayout) -> None:
    from personaguard.models import load_local_model
    from personaguard.vectors.monitor import shifts
    from personaguard.vectors.store import load_vectors

    done = json.loads(layout.shift.read_text()) if layout.shift.is_file() else {"layer": None, "shifts": {}}
    todo = {n: s for n, s in specs.items() if n not in done["shifts"]}
    if not todo:
        return
    vectors = [load_vectors(layout.vectors(t)) for t in profile.vectors.traits]
    layer = profile.vectors.probe_layer
    measured = shifts(
        base_model,
        ((n, load_local_model(s, "the persona-vector shift")) for n, s in todo.items()),
        vectors,
        layer,
        profile.vectors.shift_questions,
    )
    _write_json(layout.shift, {"layer": layer, "shifts": {**done["shifts"], **measured}})


def manipulation_check(layout: StudyLayout, names: list[str]) -> list[str]:
    """One line per variant: its warmth minus the base's on the same prompts. A warmth adapter
    whose interval does not sit above 0 did not take, whatever its audit shows."""
    from personaguard.persona.warmth import describe_shift, paired_shift

    base = json.loads(layout.warmth("base").read_text())
    return [
        f"warmth vs base, same prompts: {name} "
        + describe_shift(paired_shift(base, json.loads(layout.warmth(name).read_text())))
        for name in names
    ]


def run_study(
    profile: str | Path | Profile,
    out: str | Path,
    base: str | None = None,
    progress: bool = True,
    log: Log = print,
) -> Path:
    """Run (or resume) the whole study into ``out``; returns the report's HTML path. ``profile`` is
    a builtin name (``quick``, ``full``), a YAML path or a ``Profile``."""
    from personaguard.models import load_model
    from personaguard.report.build import build_report

    profile_name = "custom" if isinstance(profile, Profile) else str(profile)
    profile = profile if isinstance(profile, Profile) else load_profile(profile)
    base = base or profile.base

    layout = StudyLayout(Path(out))
    layout.root.mkdir(parents=True, exist_ok=True)
    settings = profile.model_dump(exclude={"description", "base"})  # with base: what artefacts depend on
    manifest = (
        layout.read_manifest()
        if layout.manifest.is_file()
        else {"profile": profile_name, "base": base, "settings": settings, "seconds": {}}
    )
    if manifest["settings"] != settings or manifest["base"] != base:
        from personaguard.errors import PersonaguardError

        raise PersonaguardError(
            f"{layout.root} holds a study with other settings (profile {manifest['profile']!r}, base "
            f"{manifest['base']!r}); use another --out or delete it"
        )
    n_steps = 5 + sum(2 if v.persona else 1 for v in profile.variants)
    counter = iter(range(1, n_steps + 1))

    def step(title: str, fn: Callable[[], Any]) -> Any:
        log(f"[{next(counter)}/{n_steps}] {title}")
        t0 = time.perf_counter()
        result = fn()
        manifest["seconds"][title] = round(manifest["seconds"].get(title, 0) + time.perf_counter() - t0, 1)
        _write_json(layout.manifest, manifest)
        return result

    base_model = load_model(base)
    step("persona vectors", lambda: ensure_vectors(base_model, profile, layout, log))
    chosen = step("steering sweep", lambda: ensure_sweep(base_model, profile, layout, log, progress))[
        "chosen"
    ]
    manifest["variants"] = {"base": {"spec": base, "kind": "base"}}

    def audit_and_warmth(name: str, spec: str, model: Any) -> None:
        ensure_audits(name, spec, model, profile, layout, progress)
        ensure_warmth(name, base_model, model, profile, layout)

    step("audit base", lambda: audit_and_warmth("base", base, base_model))
    adapters: dict[str, str] = {}
    for v in profile.variants:
        spec = variant_spec(layout, base, v, chosen["layer"])
        kind = "steered" if v.steer else "adapter"
        manifest["variants"][v.name] = {"spec": spec, "kind": kind, **v.model_dump(exclude_none=True)}
        if v.persona:
            adapters[v.name] = spec
            step(
                f"train {v.name}",
                lambda v=v: ensure_adapter(base, v, profile, layout, chosen["layer"], progress),
            )
        step(f"audit {v.name}", lambda v=v, spec=spec: audit_and_warmth(v.name, spec, load_model(spec)))
    for line in manipulation_check(layout, [v.name for v in profile.variants]):
        log(line)
    step("persona-vector shift", lambda: ensure_shift(base_model, adapters, profile, layout))
    _, html = step("report", lambda: build_report([layout.root], layout.report))
    return html
