"""The study pipeline and its report: profile validation (fast), then one tiny end-to-end study on
the bundled model that every slow test here reads (resume, refusal, escaping, the browser)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from personaguard.errors import PersonaguardError
from personaguard.study.profile import builtin_profiles, load_profile

TINY = Path(__file__).parent / "data" / "profiles" / "tiny.yaml"
SECTIONS = [
    "summary", "detection-gap", "frontier", "reliability", "amplification",
    "sycophancy", "safety", "vectors", "examples", "timings",
]  # fmt: skip


@pytest.mark.parametrize("name", ["quick", "full"])
def test_builtin_profiles_load(name):
    assert name in builtin_profiles()
    profile = load_profile(name)
    assert {v.name for v in profile.variants} >= {"warm", "low_agreeableness"}


def _bad_profile(tmp_path: Path, edit) -> Path:
    raw = TINY.read_text()
    path = tmp_path / "bad.yaml"
    path.write_text(edit(raw))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("limit: 3", "limit: 0"), r"bad\.yaml: field 'reliability\.limit'"),
        (
            lambda s: s.replace("persona: warm\n", "persona: warm\n    steer: {trait: warmth, coef: 1}\n"),
            "either",
        ),
        (lambda s: s.replace("trait: sycophancy, coef: 1", "trait: honesty, coef: 1"), r"\['honesty'\]"),
        (lambda s: s.replace("name: base_steered_warmth", "name: warm"), "unique"),
        (lambda s: s + "surprise: 1\n", "field 'surprise'"),
    ],
)
def test_bad_profiles_name_file_and_field(tmp_path, edit, message):
    with pytest.raises(PersonaguardError, match=message):
        load_profile(_bad_profile(tmp_path, edit))


def test_unknown_profile_lists_builtins():
    with pytest.raises(PersonaguardError, match=r"unknown profile 'nope'.*'full'.*'quick'"):
        load_profile("nope")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from personaguard.study.pipeline import run_study

    out = tmp_path_factory.mktemp("study")
    log: list[str] = []
    html = run_study(TINY, out, progress=False, log=log.append)
    return out, html, log


@pytest.mark.slow
def test_study_writes_every_artefact_and_a_full_report(study):
    out, html, log_lines = study
    manifest = json.loads((out / "study.json").read_text())
    assert set(manifest["variants"]) == {"base", "warm", "base_steered_warmth"}
    assert "#steer=" in manifest["variants"]["base_steered_warmth"]["spec"]
    for name in manifest["variants"]:
        for kind in ("reliability", "safety"):
            assert (out / "audit" / name / kind / "suite.json").is_file()
        warmth = json.loads((out / "warmth" / f"{name}.json").read_text())
        assert warmth["n"] == len(warmth["samples"]) >= 1
    log = [json.loads(line) for line in (out / "train" / "warm" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 2]
    assert set(log[0]["projections"]) == {"warmth@20", "sycophancy@20"}
    config = (out / "train" / "warm" / "train_config.yaml").read_text()
    assert "sycophancy.safetensors:22:1" in config  # preventative steering reached the trainer
    shift = json.loads((out / "vectors" / "shift.json").read_text())
    assert set(shift["shifts"]) == {"warm"} and set(shift["shifts"]["warm"]) == {"warmth", "sycophancy"}
    sweep = json.loads((out / "vectors" / "sweep.json").read_text())
    assert sweep["chosen"]["layer"] == 22 and len(sweep["points"]) == 2
    page = html.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert page.count("data:image/png;base64,") >= 8  # bars, forest, frontiers, projections, heat map
    md = (out / "report" / "report.md").read_text()
    assert "| warm |" in md and "Detection gap" in md
    # The manipulation check: printed for every variant, and in the report's summary.
    checks = [line for line in log_lines if line.startswith("warmth vs base, same prompts: ")]
    assert [c.split(": ")[1].split()[0] for c in checks] == ["warm", "base_steered_warmth"]
    assert re.search(r"\| warmth minus base's, same prompts \|  \|  \| [+-]\d", md)
    assert "feedback sycophancy" in md and "| feedback | feedback_i_wrote |" in md  # the demo suite's task


@pytest.mark.slow
def test_study_resumes_without_redoing_work(study):
    from personaguard.study.pipeline import run_study

    out, _, _ = study
    samples = out / "audit" / "warm" / "reliability" / "contextual" / "samples.jsonl"
    adapter = out / "train" / "warm" / "adapter_model.safetensors"
    before = (samples.stat().st_mtime_ns, adapter.stat().st_mtime_ns, samples.read_bytes())
    t0 = time.perf_counter()
    run_study(TINY, out, progress=False, log=lambda _: None)
    assert time.perf_counter() - t0 < 60  # model loads and the report only
    assert (samples.stat().st_mtime_ns, adapter.stat().st_mtime_ns, samples.read_bytes()) == before


@pytest.mark.slow
def test_study_refuses_a_directory_with_other_settings(study, tmp_path):
    from personaguard.study.pipeline import run_study

    out, _, _ = study
    other = _bad_profile(tmp_path, lambda s: s.replace("limit: 3", "limit: 4"))
    with pytest.raises(PersonaguardError, match="other settings"):
        run_study(other, out, progress=False, log=lambda _: None)


@pytest.mark.slow
def test_report_escapes_model_text(study, tmp_path):
    from personaguard.report.build import build_report

    out, _, _ = study
    copy = tmp_path / "study"
    shutil.copytree(out, copy)
    path = copy / "warmth" / "warm.json"
    warmth = json.loads(path.read_text())
    warmth["samples"][0]["reply"] = '<script>alert("x")</script><img src=x onerror="alert(1)">'
    path.write_text(json.dumps(warmth))
    _, html = build_report([copy], tmp_path / "report")
    page = html.read_text()
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("CI"),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
def test_report_renders_in_headless_chromium(study, tmp_path):
    """Open the report as a person would: every section shows, no image is broken, and the console
    stays clean. The full-page screenshot is kept beside the report for a human to look at."""
    from selenium import webdriver

    _, html, _ = study
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "/usr/bin/chromium"
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_window_size(1400, 1000)
        driver.get(html.resolve().as_uri())
        ids = driver.execute_script("return Array.from(document.querySelectorAll('section')).map(s => s.id)")
        assert ids == SECTIONS
        visible = driver.execute_script(
            "return Array.from(document.querySelectorAll('section')).every(s => s.offsetHeight > 40)"
        )
        assert visible
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])"
        )
        assert len(images) >= 8
        assert [alt for alt, ok in images if not ok] == []
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, min(height, 16000))
        shot = html.parent / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()


@pytest.mark.slow
def test_report_on_plain_audit_runs_names_what_is_missing(study, tmp_path):
    from personaguard.report.build import build_report

    out, _, _ = study
    md, html = build_report(
        {"base": out / "audit" / "base" / "reliability", "warm": out / "audit" / "warm" / "reliability"},
        tmp_path / "report",
    )
    page = html.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    text = md.read_text()
    assert "No safety audit among these runs." in text
    assert "| measure | view | base | warm |" in text and "warm: Δ pp [95% CI]" in text
