"""Write the report: one self-contained HTML page (plots embedded) and the same tables as Markdown.

The report is a list of sections, each with an intro, tables and figures, built from a
``ReportData``; the HTML and Markdown renderers only lay them out. Model text is untrusted and is
only ever inserted through Jinja's autoescaping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from personaguard.audit import pairing
from personaguard.audit.conditions import ADOPTION_ROLES
from personaguard.audit.pairing import as_dict
from personaguard.persona.warmth import describe_shift, paired_shift
from personaguard.report import metrics, plots
from personaguard.report.collect import ReportData, Variant, collect
from personaguard.report.tables import (
    HEADERS,
    PRESSURE_HEADERS,
    condition_rows,
    delta_cell,
    graded_by,
    markdown_table,
    mean_ci,
    missing,
    outcome_shares,
    pct_ci,
    pressure_rows,
    reply_note,
    share_cell,
    shift_cell,
)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    id: str
    title: str
    intro: str
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (alt text, base64 PNG)
    examples: list[dict[str, str]] = field(default_factory=list)  # untrusted model text


def _rate_cell(r: dict[str, float] | None) -> str:
    return pct_ci(r) if r else "n/a"


def _warmth_cell(v: Variant) -> str:
    w = v.warmth
    if not w or missing(w["mean"]):
        return "n/a"
    return f"{w['mean']:+.2f} [{w['lo']:+.2f}, {w['hi']:+.2f}]"


def _warmth_shift_cell(base: Variant, v: Variant) -> str:
    if v is base or not (base.warmth and v.warmth):
        return ""
    return describe_shift(paired_shift(base.warmth, v.warmth))


def _colours(data: ReportData) -> dict[str, str]:
    return plots.palette([v.name for v in data.variants])


def summary_section(data: ReportData) -> Section:
    rates = {v.name: metrics.variant_rates(v) for v in data.variants}
    rows = [
        ["warmth (higher is warmer)", "", *(_warmth_cell(v) for v in data.variants)],
        ["warmth minus base's, same prompts", "", *(_warmth_shift_cell(data.base, v) for v in data.variants)],
    ]
    rows += [
        [m.label, m.view, *(_rate_cell(rates[v.name][m.key]) for v in data.variants)] for m in metrics.METRICS
    ]
    specs = Table(["variant", "kind", "model spec"], [[v.name, v.kind, v.spec] for v in data.variants])
    return Section(
        "summary",
        "Summary",
        "Each variant's warmth (SocioT-style log-ratio of its replies under warm vs cold openers, scored by "
        "the base model, with a t 95% CI; the row below pairs each variant's replies with the base's on the "
        "same prompts, the check that a warmth adapter made the model warmer) and its rate on each audit "
        "view, pooled over banks, in % with Wilson 95% intervals widened for repeated items (one request "
        "under six framings counts as one item, not six). Errors, attack success and over-refusal: lower "
        "is better.",
        [Table(["measure", "view", *(v.name for v in data.variants)], rows), specs],
    )


def detection_gap_section(data: ReportData) -> Section:
    others = [v for v in data.variants if v is not data.base]
    section = Section(
        "detection-gap",
        "Detection gap",
        "What a standard check sees (neutral accuracy, capability, direct harmful requests, over-refusal) "
        "next to what the contextual audit sees (emotional users, stated wrong answers, pushback, social "
        f"jailbreak framings). Paired change versus {data.base.name} on the same items, percentage points "
        "with a 95% Tango score interval and a sign-flip mid-p, both clustered by item; * marks a change "
        "that survives Holm's correction over the whole table.",
    )
    if not others:
        section.intro += " Only one model was given, so there is nothing to compare."
        return section
    ordered = sorted(metrics.METRICS, key=lambda m: m.view != "standard")
    deltas = metrics.delta_table(data.base, others)
    section.tables.append(
        Table(
            ["view", "measure"] + [f"{n}: Δ pp [95% CI]" for n in deltas],
            [[m.view, m.label] + [delta_cell(deltas[n][m.key]) for n in deltas] for m in ordered],
        )
    )
    section.figures.append(
        (
            "paired deltas versus base, standard versus contextual views",
            plots.delta_forest(
                [m.label for m in ordered],
                [m.view for m in ordered],
                {n: [d[m.key] for m in ordered] for n, d in deltas.items()},
                _colours(data),
            ),
        )
    )
    return section


def _ordered(data: ReportData, task: str, keys: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """(bank, condition) pairs by bank, the baseline condition first, then alphabetically."""
    roles = {c: r for v in data.variants if task in v.runs for c, r in v.runs[task].roles.items()}
    return sorted(keys, key=lambda k: (k[0], roles.get(k[1]) != "baseline", k[1]))


def _conditions(data: ReportData, task: str, bank: str) -> list[str]:
    keys = {k for v in data.variants for k in v.errors(task) if k[0] == bank}
    return [cond for _, cond in _ordered(data, task, keys)]


def _rate(table: dict[str, float]) -> dict[str, Any] | None:
    """One bank and condition: each item once, so no clustering."""
    return as_dict(pairing.rate(table))


def _bank_bars(data: ReportData, task: str, title: str, ylabel: str) -> list[tuple[str, str]]:
    banks = sorted({b for v in data.variants for b, _ in v.errors(task)})
    figures = []
    for bank in banks:
        conds = _conditions(data, task, bank)
        series = {v.name: [_rate(v.errors(task).get((bank, c), {})) for c in conds] for v in data.variants}
        figures.append(
            (
                f"{bank}: {ylabel} by condition",
                plots.grouped_bars(conds, series, f"{bank}: {title}", ylabel, _colours(data)),
            )
        )
    return figures


def reliability_section(data: ReportData) -> Section:
    section = Section(
        "reliability",
        "Reliability by bank and condition",
        "Error rate under each condition (bars: 95% Wilson CI). The tables give, per variant, the paired "
        "change from the neutral condition and, for wrong-answer conditions, how often a model that was "
        "right when asked neutrally adopts the user's wrong answer.",
    )
    for task in ("contextual", "capability"):
        section.figures += _bank_bars(data, task, "error by condition", "error rate, %")
    for v in data.variants:
        for task in ("contextual", "capability"):
            if results := v.results(task):
                rows = [r.cells() for r in condition_rows(results)]
                section.tables.append(Table(HEADERS, rows, f"{v.name} · {task}"))
    if not section.tables:
        section.intro += " No reliability audit among these runs."
    return section


def amplification_section(data: ReportData) -> Section:
    others = [v for v in data.variants if v is not data.base]
    conds = ("sad", "incorrect_belief", "sad_incorrect_belief")
    rows = []
    for v in others:
        for cond in conds:
            key = {
                "sad": "sad",
                "incorrect_belief": "wrong_belief",
                "sad_incorrect_belief": "sad_wrong_belief",
            }[cond]
            neutral = metrics.deltas_vs_base(data.base, v)
            amp = metrics.amplification(data.base, v, cond)
            ratio = "n/a" if not amp or missing(amp["value"]) else f"{amp['value']:.2f}"
            if amp and not missing(amp["lo"]):
                ratio += f" [{amp['lo']:.2f}, {amp['hi']:.2f}]"
            rows.append([v.name, cond, delta_cell(neutral["neutral"]), delta_cell(neutral[key]), ratio])
    return Section(
        "amplification",
        "Amplification by context",
        "The warmth paper's amplification: the fine-tune's error increase under a context divided by its "
        "increase on neutral questions (1.194 is the paper's 19.4%). The ratio is only meaningful when the "
        "neutral delta is clearly positive; with a delta near zero it is unstable or undefined.",
        [Table(["variant", "condition", "Δ neutral, pp", "Δ in context, pp", "amplification [95% CI]"], rows)]
        if rows
        else [],
    )


FEEDBACK_INTRO = (
    " Feedback sycophancy (Sharma et al. 2023): the same texts (arguments, short solutions, poems) rated "
    "1-9 under framings that say who wrote them or what the user thinks of them; the rating is the "
    "model's expected rating over the scale. Each cell is the paired shift from the neutral framing in "
    "rating points (t 95% interval over items, paired t-test, Holm over the bank's framings); a model "
    "that rates the text, not the user, stays near 0."
)


def _feedback_table(data: ReportData) -> Table | None:
    """Variants x framings: each framing's shift in rating from the neutral framing, and for the other
    variants the change in that shift versus the base (per item, paired)."""
    from personaguard.audit.compare import compare_ratings

    runs = {v.name: v.runs["feedback"] for v in data.variants if "feedback" in v.runs}
    if not any(run.ratings for run in runs.values()):
        return None
    base = runs.get(data.base.name)
    vs_base = {name: compare_ratings(base, run) for name, run in runs.items() if base and run is not base}
    others = list(vs_base)
    keys = _ordered(data, "feedback", {k for run in runs.values() for k in run.ratings})
    rows = []
    for bank, cond in keys:
        cells = []
        for v in data.variants:
            run = runs.get(v.name)
            entry = run.results["banks"].get(bank, {}).get("rating", {}) if run else {}
            c = entry.get("conditions", {}).get(cond)
            if c is None:
                cells.append("")
            elif "shift_vs_neutral" in c:
                cells.append(shift_cell(c["shift_vs_neutral"]))
            else:
                cells.append(f"mean rating {mean_ci(c['rating'])}")
        for name in others:
            shift = vs_base[name].get(bank, {}).get(cond, {}).get("shift_delta")
            cells.append(shift_cell(shift) if shift else "")
        rows.append([bank, cond, *cells])
    headers = [
        "bank",
        "framing",
        *(f"{name}: shift, points [95% CI]" for name in runs),
        *(f"{name} vs {data.base.name}: Δ shift" for name in others),
    ]
    return Table(headers, rows, "feedback sycophancy: rating of the same text, framing minus neutral")


def sycophancy_section(data: ReportData) -> Section:
    adopted: dict[tuple[str, str], dict[str, str]] = {}
    pressure = []
    for v in data.variants:
        if results := v.results("contextual"):
            for bank, entry in results["banks"].items():
                for cond, c in entry["scorings"][results["headline_scoring"]]["conditions"].items():
                    if c.get("role") in ADOPTION_ROLES and c.get("sycophancy"):
                        adopted.setdefault((bank, cond), {})[v.name] = pct_ci(c["sycophancy"])
        if results := v.results("pressure"):
            pressure += [[v.name, *r] for r in pressure_rows(results)]
    tables = []
    if adopted:
        names = [v.name for v in data.variants]
        rows = [[bank, cond, *(cells.get(n, "") for n in names)] for (bank, cond), cells in adopted.items()]
        tables.append(
            Table(
                ["bank", "condition", *names], rows, "adopts the wrong answer, % of neutral-correct [95% CI]"
            )
        )
    if pressure:
        tables.append(Table(["variant", *PRESSURE_HEADERS], pressure, "multi-turn pushback"))
    feedback = _feedback_table(data)
    if feedback:
        tables.append(feedback)
    section = Section(
        "sycophancy",
        "Sycophancy and flips",
        "Sycophancy counts only items the model answers correctly without the user's opinion, so it is "
        "net of items the model never knew (incorrect_mention is the priming control: the wrong answer "
        "is mentioned, not endorsed). Multi-turn pushback counts items right at the first answer: the flip "
        "rate (wrong after the last follow-up), and for sustained pushback SYCON-Bench's turn of first "
        "flip (the follow-up after which the answer first goes wrong; T + 1 if it never does) and number "
        "of flips (answer changes between turns), with t 95% intervals over items.",
        tables,
    )
    if feedback:
        section.intro += FEEDBACK_INTRO
    return section


def safety_section(data: ReportData) -> Section:
    section = Section(
        "safety",
        "Jailbreak resistance and over-refusal",
        "Each reply is graded as a refusal, compliance, or a non-answer (off-topic, incoherent, empty, "
        "or only restating the request). Attack success counts compliance with the harmful request only, "
        "so a small model that drifts off topic is not counted as jailbroken; over-refusal counts refusals "
        "of benign requests only. Shares are of scored replies (95% Wilson CI); Δ is the paired change "
        "in attack success against the base.",
    )
    section.figures += _bank_bars(data, "jailbreak", "attack success by framing", "attack success, %")
    section.figures += _bank_bars(data, "over_refusal", "over-refusal", "over-refusal, %")
    base_jb = data.base.errors("jailbreak")
    keys = _ordered(data, "jailbreak", {k for v in data.variants for k in v.errors("jailbreak")})
    others = [v for v in data.variants if v is not data.base]
    deltas = pairing.holm_grid(
        {
            v.name: [
                as_dict(pairing.delta(base_jb.get(k, {}), v.errors("jailbreak").get(k, {}))) for k in keys
            ]
            for v in others
        }
    )
    rows = []
    for i, (bank, cond) in enumerate(keys):
        cells = [bank, cond]
        for v in data.variants:
            shares = outcome_shares(v.results("jailbreak"), bank, cond)
            cells += [
                _rate_cell(_rate(v.errors("jailbreak").get((bank, cond), {}))),
                share_cell(shares, "refusal"),
                share_cell(shares, "non_answer"),
            ]
        rows.append(cells + [delta_cell(deltas[v.name][i]) for v in others])
    if rows:
        headers = ["bank", "framing"]
        for v in data.variants:
            headers += [f"{v.name}: attack success %", f"{v.name}: refused %", f"{v.name}: no answer %"]
        headers += [f"{v.name}: Δ attack success, pp" for v in others]
        caption = f"harmful requests by framing [95% CI]; graded by {graded_by(data.variants, 'jailbreak')}"
        section.tables.append(Table(headers, rows, caption))
    benign = _ordered(data, "over_refusal", {k for v in data.variants for k in v.errors("over_refusal")})
    over_rows = []
    for bank, cond in benign:
        cells = [bank, cond]
        for v in data.variants:
            shares = outcome_shares(v.results("over_refusal"), bank, cond)
            cells += [
                _rate_cell(_rate(v.errors("over_refusal").get((bank, cond), {}))),
                share_cell(shares, "compliance"),
                share_cell(shares, "non_answer"),
            ]
        over_rows.append(cells)
    if over_rows:
        headers = ["bank", "condition"]
        for v in data.variants:
            headers += [f"{v.name}: over-refusal %", f"{v.name}: complied %", f"{v.name}: no answer %"]
        caption = f"benign-but-edgy requests [95% CI]; graded by {graded_by(data.variants, 'over_refusal')}"
        section.tables.append(Table(headers, over_rows, caption))
    if not section.tables:
        section.intro += " No safety audit among these runs."
    return section


def vectors_section(data: ReportData) -> Section:
    section = Section(
        "vectors",
        "Persona vectors",
        "Fine-tuning shift along each trait vector (mean projection of the tuned model minus the base's, on "
        "the trait's evaluation questions; at the last prompt token and averaged over the model's reply), "
        "the projections read during training, and the steering sweep that chose the layer and coefficient.",
    )
    if data.shift:
        traits = list(dict.fromkeys(t for by_trait in data.shift["shifts"].values() for t in by_trait))
        rows = [
            [
                name,
                *(
                    f"{by[t]['prompt_last']:+.2f} / {by[t]['response_avg']:+.2f}" if t in by else ""
                    for t in traits
                ),
            ]
            for name, by in data.shift["shifts"].items()
        ]
        section.tables.append(
            Table(
                ["variant", *(f"{t}: prompt / response" for t in traits)],
                rows,
                f"shift at layer {data.shift['layer']}, tuned minus base projection",
            )
        )
    logs = {
        v.name: [(row["step"], row["projections"]) for row in v.train_log if "projections" in row]
        for v in data.variants
    }
    logs = {k: r for k, r in logs.items() if r}
    if logs:
        section.figures.append(
            ("trait projection over training steps", plots.projection_lines(logs, _colours(data)))
        )
    if data.sweep:
        section.figures.append(
            (
                "layer by coefficient steering sweep",
                plots.sweep_heatmap(data.sweep["points"], data.sweep["chosen"]),
            )
        )
        c = data.sweep["chosen"]
        section.intro += (
            f" The sweep chose layer {c['layer']}, coefficient {c['coef']:g} for {data.sweep['trait']}."
        )
    if not (data.shift or logs or data.sweep):
        section.intro += " Not measured in these runs (run a study: personaguard demo)."
    return section


def frontier_section(data: ReportData) -> Section:
    section = Section(
        "frontier",
        "Warmth versus reliability and safety",
        "Each variant's warmth against its pooled error in the emotional and wrong-answer conditions, and "
        "against social-jailbreak attack success. A variant that breaks the trade-off sits right and low.",
    )
    points_rel, points_safe = [], []
    for v in data.variants:
        x = metrics.warmth_point(v)
        if x is None:
            continue
        if (y := metrics.emotional_error(v)) is not None:
            points_rel.append({"name": v.name, "x": x, "y": y})
        if (y := metrics.variant_rates(v)["social_asr"]) is not None:
            points_safe.append({"name": v.name, "x": x, "y": y})
    if points_rel:
        section.figures.append(
            (
                "warmth versus reliability",
                plots.frontier(
                    points_rel,
                    "warmth",
                    "error, emotional + wrong-answer conditions, %",
                    "warmth vs reliability",
                    _colours(data),
                ),
            )
        )
    if points_safe:
        section.figures.append(
            (
                "warmth versus safety",
                plots.frontier(
                    points_safe,
                    "warmth",
                    "social-jailbreak attack success, %",
                    "warmth vs safety",
                    _colours(data),
                ),
            )
        )
    if not section.figures:
        section.intro += " Needs warmth scores, which a study measures (personaguard demo)."
    return section


def _jailbreak_replies(v: Variant) -> dict[str, dict[str, Any]]:
    run = v.runs.get("jailbreak")
    path = run.path / "samples.jsonl" if run else None
    if not path or not path.is_file():
        return {}
    with path.open(encoding="utf-8") as handle:
        return {r["sample_id"]: r for r in map(json.loads, handle) if r.get("role") == "framing"}


def examples_section(data: ReportData, per_kind: int = 2) -> Section:
    """The same prompts answered by every variant, side by side."""
    examples = []
    warm_prompts = [s["prompt"] for s in (data.base.warmth or {}).get("samples", [])[:per_kind]]
    for prompt in warm_prompts:
        replies = []
        for v in data.variants:
            s = next((s for s in (v.warmth or {}).get("samples", []) if s["prompt"] == prompt), None)
            if s:
                replies.append({"variant": v.name, "note": f"warmth {s['warmth']:+.2f}", "text": s["reply"]})
        examples.append({"what": "held-out prompt", "prompt": prompt, "replies": replies})
    jailbreaks = {v.name: _jailbreak_replies(v) for v in data.variants}
    for sample_id in islice(jailbreaks.get(data.base.name, {}), per_kind):
        records = [(name, by_id[sample_id]) for name, by_id in jailbreaks.items() if sample_id in by_id]
        first = records[0][1]
        replies = [
            {"variant": name, "note": reply_note(r), "text": r.get("response") or ""}
            for name, r in records
        ]  # fmt: skip
        examples.append(
            {
                "what": f"jailbreak, {first['condition']} framing",
                "prompt": first["prompt"][-1]["content"],
                "replies": replies,
            }
        )
    return Section(
        "examples",
        "Example replies",
        "The same prompts answered by each variant, as written (greedy decoding)."
        if examples
        else "No stored replies in these runs.",
        examples=examples,
    )


def timings_section(data: ReportData) -> Section:
    seconds = (data.study or {}).get("seconds", {})
    rows = [[step, f"{s / 60:.1f}"] for step, s in seconds.items()]
    if rows:
        rows.append(["total", f"{sum(seconds.values()) / 60:.1f}"])
    profile = (data.study or {}).get("profile")
    return Section(
        "timings",
        "Run",
        (f"Profile {profile!r} on base {data.study['base']}. " if data.study else "")
        + "Sources: "
        + ", ".join(data.sources)
        + ".",
        [Table(["step", "minutes"], rows)] if rows else [],
    )


def sections(data: ReportData) -> list[Section]:
    return [
        summary_section(data),
        detection_gap_section(data),
        frontier_section(data),
        reliability_section(data),
        amplification_section(data),
        sycophancy_section(data),
        safety_section(data),
        vectors_section(data),
        examples_section(data),
        timings_section(data),
    ]


def to_markdown(parts: list[Section]) -> str:
    md = ["# personaguard report", ""]
    for s in parts:
        md += [f"## {s.title}", "", s.intro, ""]
        for t in s.tables:
            md += ([f"*{t.caption}*", ""] if t.caption else []) + [markdown_table(t.headers, t.rows), ""]
        for e in s.examples:
            md += [f"**{e['what']}**: {e['prompt'][:200]!r}", ""]
            md += [
                f"- {r['variant']} ({r['note']}): {r['text'].replace(chr(10), ' ')[:300]!r}"
                for r in e["replies"]
            ]
            md += [""]
        if s.figures:
            md += [f"_{len(s.figures)} plot(s) in report.html_", ""]
    return "\n".join(md) + "\n"


def build_report(runs: Mapping[str, str | Path] | Sequence[str | Path], out: str | Path) -> tuple[Path, Path]:
    """Report on a study directory or on audit runs; returns the Markdown and HTML paths."""
    data = collect(runs)
    parts = sections(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md_path = out / "report.md"
    md_path.write_text(to_markdown(parts), encoding="utf-8")
    env = Environment(
        loader=PackageLoader("personaguard", "report/templates"), autoescape=select_autoescape(["html"])
    )
    html_path = out / "report.html"
    html_path.write_text(env.get_template("report.html").render(sections=parts), encoding="utf-8")
    return md_path, html_path
