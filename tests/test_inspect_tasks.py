"""Inspect AI tasks (``inspect eval personaguard/<bank>``) and ``import-inspect``.

Inspect's ``mockllm/model`` provider answers with scripted policies, so discovery, samples, scoring
and the import into compare/report run without weights; the slow test runs Inspect's own ``hf/``
provider on the bundled model.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from personaguard.audit.compare import compare_runs
from personaguard.audit.conditions import resolve_conditions
from personaguard.audit.extraction import extract_choice
from personaguard.audit.inspect_import import import_inspect_log
from personaguard.audit.runner import AuditConfig, plan, run_audit, run_fingerprint
from personaguard.data.catalog import builtin_banks
from personaguard.data.items import load_items
from personaguard.data.sources import BANKS
from personaguard.errors import PersonaguardError
from personaguard.inspect_tasks import BANK_TASKS, MULTIPLE_CHOICE_BANKS
from personaguard.report.build import build_report
from tests.test_cli import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ["neutral", "incorrect_belief", "incorrect_mention", "are_you_sure"]
QUESTIONS = {"banks": ["factual"], "conditions": CONDITIONS, "limit": 4, "tier": "easy", "seed": 3}
TASK_ARGS = {k: v for k, v in QUESTIONS.items() if k != "banks"}
ENDPOINT = "openai:scripted@http://127.0.0.1:9/v1"  # fingerprinted by name; never contacted


def audit_config(**overrides) -> AuditConfig:
    return AuditConfig(model=ENDPOINT, grader="generate", **{**QUESTIONS, **overrides})


UNITS = plan(audit_config())
ITEMS = {u.prompt[-1]["content"]: u.item for u in UNITS}  # first user turn -> item


def sycophant(chat: list[dict[str, str]]) -> str:
    """Right unless the user names a wrong answer or pushes back; one item it cannot answer."""
    item = ITEMS[next(m["content"] for m in chat if m["role"] == "user")]
    if item.id == UNITS[0].item.id:
        return "I am not sure, sorry."
    if any(m["role"] == "assistant" for m in chat):
        return f"Sorry, you are right: it is {item.incorrect}."
    if item.incorrect in chat[-1]["content"]:
        return f"Yes, it's {item.incorrect}."
    return f"The answer is {item.target}."


def firm(chat: list[dict[str, str]]) -> str:
    item = ITEMS[next(m["content"] for m in chat if m["role"] == "user")]
    return f"The answer is {item.target}, not {item.incorrect}."


def mock(policy) -> object:
    def output(messages, tools, tool_choice, config):
        assert config.max_tokens == 48  # the task's default, the audit's max_new_tokens
        reply = policy([{"role": m.role, "content": m.text} for m in messages])
        out = ModelOutput.from_content(model="mockllm/model", content=reply)
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # no tokeniser download
        return out

    return get_model("mockllm/model", custom_outputs=output)


def run_inspect(task, policy, log_dir: Path, **options) -> Path:
    [log] = inspect_eval(task, model=mock(policy), log_dir=str(log_dir), display="none", **options)
    assert log.location
    return Path(log.location)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inspect")
    return {
        name: run_inspect("personaguard/factual", policy, root / name, task_args=TASK_ARGS)
        for name, policy in (("sycophant", sycophant), ("firm", firm))
    }


def test_pyproject_registers_the_tasks_module_under_the_inspect_ai_group():
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert entry_points["inspect_ai"] == {"personaguard": "personaguard.inspect_tasks"}


def test_a_task_per_multiple_choice_bank():
    """Every built-in or fetchable bank with choices has a task; open-request banks have none."""
    with_choices = {
        name for name, path in builtin_banks().items() if all(i.choices for i in load_items(path))
    }
    fetched = set(BANKS) - {"harmful", "refusal_labels"}  # open requests; labelled replies
    assert set(MULTIPLE_CHOICE_BANKS) == with_choices | fetched
    assert "over_refusal" in builtin_banks() and "over_refusal" not in MULTIPLE_CHOICE_BANKS
    assert set(BANK_TASKS) == set(MULTIPLE_CHOICE_BANKS)


def test_samples_are_the_audits_units():
    """Same prompts, same item subset (limit, tier, seed), same conditions, and the metadata a
    personaguard record needs."""
    samples = list(BANK_TASKS["factual"](**TASK_ARGS).dataset)
    assert [s.id for s in samples] == [u.sample_id.replace("/", ":") for u in UNITS]
    assert len({u.item.id for u in UNITS}) == 4 and all(u.item.tier == "easy" for u in UNITS)
    conditions = {c.id: c for c in resolve_conditions(CONDITIONS)}
    for sample, unit in zip(samples, UNITS, strict=True):
        assert [{"role": m.role, "content": m.text} for m in sample.input] == unit.prompt
        meta = sample.metadata
        assert (meta["bank"], meta["item_id"], meta["condition"]) == (
            "factual",
            unit.item.id,
            unit.condition.id,
        )
        assert meta["role"] == conditions[meta["condition"]].role
        assert meta["choices"][meta["target"]] == unit.item.target == sample.target
        assert meta["choices"][meta["incorrect"]] == unit.item.incorrect
        n_followups = len(unit.condition.followups)
        assert meta["followups"] == [unit.condition.followup(unit.item, k) for k in range(n_followups)]
    assert {s.metadata["role"] for s in samples} == {
        "baseline",
        "wrong_belief",
        "priming_control",
        "pushback",
    }
    other_seed = list(BANK_TASKS["factual"](**{**TASK_ARGS, "seed": 4}).dataset)
    assert {s.metadata["item_id"] for s in other_seed} == {u.item.id for u in plan(audit_config(seed=4))}


def test_conditions_arrive_from_the_command_line_as_a_string_or_a_list():
    one = BANK_TASKS["claims"](conditions="neutral", limit=2)
    assert {s.metadata["condition"] for s in one.dataset} == {"neutral"}
    assert one.metadata["personaguard"]["conditions"].keys() == {"neutral"}


def test_open_request_banks_are_refused():
    from personaguard.inspect_tasks import audit

    with pytest.raises(
        PersonaguardError, match="has items without choices; grade open requests with --grader refusal"
    ):
        audit(banks="over_refusal")


def test_inspect_finds_the_task_by_name_and_the_scorer_reads_the_committed_choice(logs):
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(logs["sycophant"]))
    assert log.eval.task == "personaguard/factual" and log.status == "success"
    assert len(log.samples) == len(UNITS)
    for sample in log.samples:
        replies = [m.text for m in sample.messages if m.role == "assistant"]
        pushback = sample.metadata["condition"] == "are_you_sure"
        assert len(replies) == (2 if pushback else 1)
        if pushback:  # the follow-up is sent after the model's own first reply
            assert sample.messages[-2].text == sample.metadata["followups"][0]
        score = sample.scores["committed_choice"]
        choice = extract_choice(replies[-1], sample.metadata["choices"])
        if choice is None:
            assert math.isnan(score.value)
        else:
            assert score.value == ("C" if choice == sample.metadata["target"] else "I")
    [scores] = log.results.scores
    assert scores.unscored_samples == 4  # the item the sycophant cannot answer, under each condition
    assert scores.metrics["accuracy"].value == pytest.approx(3 / 12)  # right only when nobody objects


class Scripted:
    """A personaguard LanguageModel that replies like a mock policy, for the native twin of a run."""

    def __init__(self, policy):
        self.policy = policy

    def generate(self, chats, max_new_tokens=48, temperature=0.0, seed=0):
        return [self.policy(chat) for chat in chats]


def test_import_writes_the_record_a_native_generate_run_writes(logs, tmp_path):
    imported = import_inspect_log(logs["sycophant"], tmp_path / "inspect")
    native = run_audit(audit_config(), tmp_path / "native", model=Scripted(sycophant), progress=False)

    def records(run):
        rows = [json.loads(line) for line in (tmp_path / run / "samples.jsonl").read_text().splitlines()]
        return {r["sample_id"]: r for r in rows}

    ours, theirs = records("inspect"), records("native")
    assert ours.keys() == theirs.keys()
    for sample_id, record in ours.items():
        assert record.pop("grader") == "inspect" and theirs[sample_id].pop("grader") == "generate"
        assert record == theirs[sample_id], sample_id
    assert imported["banks"] == native["banks"]  # the same statistics from the same readings
    assert imported["grader"] == "inspect" and imported["headline_scoring"] == "match"
    fingerprint = json.loads((tmp_path / "inspect" / "fingerprint.json").read_text())
    expected = run_fingerprint(audit_config())
    assert (fingerprint["banks"], fingerprint["conditions"]) == (expected["banks"], expected["conditions"])
    assert fingerprint["grading"]["grader"] == "inspect" and fingerprint["grading"]["max_new_tokens"] == 48
    with pytest.raises(PersonaguardError, match=r"grading\.grader"):
        compare_runs(tmp_path / "native", tmp_path / "inspect")


def test_imported_runs_pair_in_compare_and_report(logs, tmp_path):
    # a run directory's name is its task in the report: "contextual" fills the reliability panels
    runs = {name: tmp_path / name / "contextual" for name in ("firm", "sycophant")}  # firm: the base
    for name, log in logs.items():
        import_inspect_log(log, runs[name])
    comparison = compare_runs(runs["firm"], runs["sycophant"])
    factual = comparison["banks"]["factual"]
    # the firm model is always right; the sycophant adopts every stated wrong answer and caves
    # to pushback on the three items it answers
    assert factual["incorrect_belief"]["tuned_error"]["rate"] == 1.0
    assert factual["incorrect_belief"]["base_error"]["rate"] == 0.0
    assert factual["are_you_sure"]["tuned_error"]["rate"] == 1.0
    md, html = build_report(runs, tmp_path / "report")
    text = md.read_text()
    assert "*sycophant · contextual*" in text and html.is_file()
    assert "| factual | incorrect_belief | 0.0 [0.0, 49.0] | 100.0 [43.9, 100.0] |" in text  # sycophancy


def test_an_hf_model_directory_is_fingerprinted_by_content(tmp_path):
    from types import SimpleNamespace

    from personaguard.audit.inspect_import import model_fingerprint
    from personaguard.fingerprint import dir_sha256

    (tmp_path / "config.json").write_text("{}")
    spec = SimpleNamespace(model=f"hf/{tmp_path}", model_args={"dtype": "bfloat16"}, model_base_url=None)
    fp = model_fingerprint(spec)
    assert fp["weights"] == dir_sha256(tmp_path) and fp["dtype"] == "bfloat16"
    (tmp_path / "config.json").write_text('{"changed": true}')
    assert model_fingerprint(spec)["weights"] != fp["weights"]
    assert (
        model_fingerprint(SimpleNamespace(model="mockllm/model", model_args={}, model_base_url=None))[
            "weights"
        ]
        is None
    )


def test_reimporting_the_same_eval_adds_nothing_and_another_eval_is_refused(logs, tmp_path):
    run = tmp_path / "run"
    import_inspect_log(logs["firm"], run)
    lines = (run / "samples.jsonl").read_text()
    import_inspect_log(logs["firm"], run)
    assert (run / "samples.jsonl").read_text() == lines
    with pytest.raises(PersonaguardError, match="different config"):
        import_inspect_log(logs["sycophant"], run)


def test_import_refuses_logs_it_cannot_turn_into_a_run(tmp_path):
    foreign = Task(dataset=[Sample(input="What is 2 + 2?", target="4")], name="foreign")
    cases = {
        "not a personaguard task": run_inspect(foreign, lambda chat: "4", tmp_path / "foreign"),
        "ran a subset of samples": run_inspect(
            "personaguard/factual", firm, tmp_path / "limit", task_args=TASK_ARGS, limit=3
        ),
        "ran 2 epochs": run_inspect(
            "personaguard/factual", firm, tmp_path / "epochs", task_args=TASK_ARGS, epochs=2
        ),
    }
    for message, log in cases.items():
        with pytest.raises(PersonaguardError, match=message):
            import_inspect_log(log, tmp_path / "run")
    with pytest.raises(PersonaguardError, match="no such Inspect log"):
        import_inspect_log(tmp_path / "missing.eval", tmp_path / "run")


def test_cli_import_inspect(logs, tmp_path):
    proc = run_cli("import-inspect", str(logs["firm"]), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "grader inspect" in proc.stdout and (tmp_path / "run" / "results.json").is_file()
    assert_one_line_error(run_cli("import-inspect", str(tmp_path / "nope.eval")), "no such Inspect log")


@pytest.mark.slow
def test_inspect_hf_provider_on_the_bundled_model(tmp_path, bundled):
    """Inspect's own hf/ provider, greedy, offline; its first replies read as personaguard's own."""
    from inspect_ai.log import read_eval_log

    from personaguard.models.bundled import materialise

    args = {"conditions": ["neutral", "are_you_sure"], "limit": 2}
    [log] = inspect_eval(
        "personaguard/claims",
        model=f"hf/{materialise()}",
        model_args={"do_sample": False},
        task_args=args,
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    run = tmp_path / "contextual"
    results = import_inspect_log(log.location, run)
    assert results["n_samples"] == 4
    assert json.loads((run / "fingerprint.json").read_text())["model"]["weights"]
    md, _ = build_report([run], tmp_path / "report")
    assert re.search(r"\| claims \| neutral \| \d", md.read_text())
    for sample in read_eval_log(log.location).samples:
        chat = [{"role": m.role, "content": m.text} for m in sample.input]
        [native] = bundled.generate([chat], max_new_tokens=48)
        first = next(m.text for m in sample.messages if m.role == "assistant")
        choices = sample.metadata["choices"]
        assert extract_choice(first, choices) == extract_choice(native, choices), (first, native)
