"""Every mistake a user can make at the CLI gives one clear line and exit code 2, no traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import Stub, free_port

CLI = [sys.executable, "-c", "from personaguard.cli import main; main()"]


def run_cli(*args, env=None):
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_scheme(tmp_path):
    proc = run_cli("audit", "--model", "gguf:foo", "--out", str(tmp_path))
    assert_one_line_error(proc, "unknown scheme 'gguf'", "expected one of")


def test_missing_adapter(tmp_path):
    proc = run_cli("audit", "--model", "hf:base+/no/adapter", "--out", str(tmp_path))
    assert_one_line_error(proc, "adapter directory '/no/adapter' not found", "adapter_config.json")


def test_malformed_item_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = {"id": "a", "input": "Q?", "choices": ["x", "y"], "target": "x"}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({"id": "b", "choices": ["x"]}) + "\n")
    proc = run_cli(
        "audit", "--model", "bundled:smollm2-135m", "--bank", str(bad), "--out", str(tmp_path / "run")
    )
    assert_one_line_error(proc, f"{bad}:2", "field 'input'")


def test_empty_choice(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "input": "Q?", "choices": ["x", ""], "target": "x"}) + "\n")
    proc = run_cli(
        "audit", "--model", "bundled:smollm2-135m", "--bank", str(bad), "--out", str(tmp_path / "run")
    )
    assert_one_line_error(proc, f"{bad}:1", "choices[1] is empty")


def audit_endpoint(spec, tmp_path, mini_items, env=None):
    return run_cli(
        "audit",
        "--model",
        spec,
        "--grader",
        "generate",
        "--bank",
        str(mini_items),
        "--limit",
        "1",
        "--out",
        str(tmp_path / "run"),
        env=env,
    )


@pytest.mark.slow
def test_unreachable_endpoint(tmp_path, mini_items):
    url = f"http://127.0.0.1:{free_port()}/v1"
    proc = audit_endpoint(f"openai:m@{url}#retries=1", tmp_path, mini_items)
    assert_one_line_error(proc, "cannot reach endpoint", url)


@pytest.mark.slow
def test_rejected_key(tmp_path, mini_items):
    stub = Stub([(401, {"error": "invalid key"})])
    try:
        proc = audit_endpoint(
            f"openai:m@{stub.url}", tmp_path, mini_items, env={"OPENAI_API_KEY": "sk-not-valid"}
        )
    finally:
        stub.close()
    assert_one_line_error(proc, "rejected the API key", "$OPENAI_API_KEY")
    assert "sk-not-valid" not in proc.stderr + proc.stdout
    assert "sk-not-valid" not in "".join(p.read_text() for p in (tmp_path / "run").glob("*.*"))


def test_package_imports_without_torch_side_effects():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, personaguard; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "False"


def test_demo_rejects_an_unknown_profile(tmp_path):
    proc = run_cli("demo", "--profile", "nope", "--out", str(tmp_path / "study"))
    assert_one_line_error(proc, "unknown profile 'nope'", "'quick'")


def test_demo_refuses_a_study_directory_with_other_settings(tmp_path):
    (tmp_path / "study.json").write_text(
        '{"profile": "x", "base": "bundled:smollm2-135m", "settings": {}, "seconds": {}}'
    )
    proc = run_cli("demo", "--profile", "quick", "--out", str(tmp_path))
    assert_one_line_error(proc, "holds a study with other settings")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["audit", "--modle", "x"], ["No such option: --modle", "Usage: personaguard audit"]),
        (["audit", "--limit", "abc"], ["'--limit'", "personaguard audit --help"]),
        (["nosuch"], ["No such command 'nosuch'", "personaguard --help"]),
        (["report"], ["Missing argument", "Usage: personaguard report"]),
    ],
)
def test_usage_errors_are_one_line(args, fragments):
    assert_one_line_error(run_cli(*args), *fragments)


def _report_argument(monkeypatch, *runs):
    """What `personaguard report RUNS...` hands to build_report (which is replaced by a recorder)."""
    from personaguard.cli import main
    from personaguard.report import build

    seen = []
    monkeypatch.setattr(build, "build_report", lambda runs, out: seen.append(runs) or (out / "r.md", out))
    monkeypatch.setattr(sys, "argv", ["personaguard", "report", *runs, "--out", "rep"])
    main()
    return seen[0]


def test_report_keeps_same_named_run_dirs(monkeypatch):
    runs = _report_argument(monkeypatch, "runs/a/contextual", "runs/b/contextual")
    assert list(runs) == [Path("runs/a/contextual"), Path("runs/b/contextual")]


def test_report_labels_name_runs_and_a_repeated_label_is_an_error(monkeypatch, capsys):
    runs = _report_argument(monkeypatch, "base=runs/a/contextual", "warm=runs/b/contextual")
    assert runs == {"base": Path("runs/a/contextual"), "warm": Path("runs/b/contextual")}
    with pytest.raises(SystemExit) as exited:
        _report_argument(monkeypatch, "x=runs/a/contextual", "x=runs/b/contextual")
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "both labelled 'x'" in err and "\n" not in err


def test_grader_validate_prints_the_cells_and_refuses_a_malformed_file(tmp_path):
    proc = run_cli("grader", "validate")
    assert proc.returncode == 0, proc.stderr
    for fragment in ("claims", "incorrect_belief", "are_you_sure", "held out", "324"):
        assert fragment in proc.stdout, proc.stdout
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"id": "x"}\n')
    assert_one_line_error(run_cli("grader", "validate", "--file", str(bad)), "rows.jsonl:1", "missing field")
