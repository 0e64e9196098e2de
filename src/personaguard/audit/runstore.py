"""A run directory: resolved config, content fingerprint, environment, append-only samples, results.

    DIR/config.yaml       the resolved config; a re-run with the same config resumes
    DIR/fingerprint.json  sha256 of the model, adapter, vectors, banks and conditions behind the config
    DIR/env.json          {"history": [...]}: versions, git sha and platform of every session
    DIR/samples.jsonl     one graded sample per line, appended and fsynced in batches (strict JSON)
    DIR/results.json      statistics, rewritten atomically at the end (strict JSON: null, never NaN)

A lock file refuses a second writer, and a resume whose fingerprint differs is refused (an adapter
rewritten in place would otherwise mix two models in one run). A torn last line (a kill mid-write)
is cut off on reopen, so every line that remains is a complete sample and no id is written twice.
"""

from __future__ import annotations

import fcntl
import json
import math
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
from personaguard.fingerprint import describe, differences

# Config keys that may change between a run and its resumption without invalidating samples.
RESUMABLE_KEYS = {"limit"}


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def strict_json(data: Any) -> Any:
    """NaN and infinities become null, so results.json is valid JSON for every reader."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: strict_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(v) for v in data]
    return data


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(strict_json(data), indent=2, allow_nan=False) + "\n")


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
    def open(
        cls, root: str | Path, config: dict[str, Any], fingerprint: dict[str, Any] | None = None
    ) -> Iterator[RunStore]:
        """Lock ``root`` for writing and check that ``config`` and ``fingerprint`` match any run
        already there."""
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
            if fingerprint is not None:
                store._check_fingerprint(fingerprint)
            store._log_environment()
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

    def _check_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        path = self.root / "fingerprint.json"
        if path.exists():
            changed = differences(json.loads(path.read_text()), fingerprint)
            if changed:
                raise PersonaguardError(
                    f"{self.root}: the content behind this run changed since it started "
                    f"({describe(changed)}); resuming would mix two models' samples, use another --out"
                )
        else:
            write_json(path, fingerprint)

    def _log_environment(self) -> None:
        """Append this session's environment; earlier sessions' entries are kept."""
        path = self.root / "env.json"
        history = json.loads(path.read_text()).get("history", []) if path.exists() else []
        write_json(path, {"history": [*history, environment()]})

    def fingerprint(self) -> dict[str, Any] | None:
        path = self.root / "fingerprint.json"
        return json.loads(path.read_text()) if path.exists() else None

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
        lines = "".join(
            json.dumps(strict_json(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records
        )
        if not lines:
            return
        with self.samples_path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def write_results(self, results: dict[str, Any]) -> Path:
        path = self.root / "results.json"
        write_json(path, results)
        return path
