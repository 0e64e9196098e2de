"""A run directory: resolved config, environment, append-only samples, results.

    DIR/config.yaml    the resolved config; a re-run with the same config resumes
    DIR/env.json       versions, git sha, device
    DIR/samples.jsonl  one graded sample per line, appended and fsynced in batches
    DIR/results.json   statistics, rewritten atomically at the end

A lock file refuses a second writer. A torn last line (a kill mid-write) is cut off on reopen,
so every line that remains is a complete sample and no sample id is ever written twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from personaguard.errors import PersonaguardError

# Config keys that may change between a run and its resumption without invalidating samples.
RESUMABLE_KEYS = {"limit"}


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for pkg in ("personaguard", "torch", "transformers", "peft", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    try:
        sha = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
            or None
        )
    except OSError:
        sha = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
        "git_sha": sha,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class RunStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.samples_path = root / "samples.jsonl"

    @classmethod
    @contextmanager
    def open(cls, root: str | Path, config: dict[str, Any]) -> Iterator[RunStore]:
        """Lock ``root`` for writing and check that ``config`` matches any run already there."""
        store = cls(Path(root))
        store.root.mkdir(parents=True, exist_ok=True)
        with (store.root / ".lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PersonaguardError(
                    f"another personaguard run is writing to {store.root}; wait for it to finish "
                    "or choose another --out"
                ) from None
            store._check_config(config)
            atomic_write(store.root / "env.json", json.dumps(environment(), indent=2) + "\n")
            store._repair_tail()
            yield store

    def _check_config(self, config: dict[str, Any]) -> None:
        path = self.root / "config.yaml"
        if path.exists():
            old = yaml.safe_load(path.read_text()) or {}
            changed = sorted(
                k for k in set(old) | set(config) if k not in RESUMABLE_KEYS and old.get(k) != config.get(k)
            )
            if changed:
                raise PersonaguardError(
                    f"{self.root} holds a run with a different config (fields {changed}); "
                    "re-run with the same settings to resume, or choose another --out"
                )
        atomic_write(path, yaml.safe_dump(config, sort_keys=False))

    def _repair_tail(self) -> None:
        """Cut a torn final line left by a kill mid-write."""
        if not self.samples_path.exists():
            return
        data = self.samples_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with self.samples_path.open("r+b") as handle:
                handle.truncate(end)

    def records(self) -> list[dict[str, Any]]:
        if not self.samples_path.exists():
            return []
        with self.samples_path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def done_ids(self) -> set[str]:
        return {r["sample_id"] for r in self.records()}

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not lines:
            return
        with self.samples_path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def write_results(self, results: dict[str, Any]) -> Path:
        path = self.root / "results.json"
        atomic_write(path, json.dumps(results, indent=2, allow_nan=True) + "\n")
        return path
