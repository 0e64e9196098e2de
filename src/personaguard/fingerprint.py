"""Content fingerprints: what a run measured, by content rather than by name.

A spec string names a model; the bytes behind it can change (an adapter retrained in place, a vector
file re-extracted, a bank edited). Runs record the sha256 of everything that decides their samples,
so a resumed run never mixes two models and ``compare`` never pairs runs that asked different
questions. File hashes are cached by (path, size, mtime), so a multi-GB model is read once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from personaguard.errors import PersonaguardError
from personaguard.paths import data_home

_CHUNK = 1 << 20


def _cache_path() -> Path:
    return data_home() / "cache" / "sha256.json"


def file_sha256(path: str | Path) -> str:
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = _cache_path()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    cache[key] = digest.hexdigest()
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache))
    os.replace(tmp, cache_file)
    return cache[key]


def dir_sha256(path: str | Path) -> str:
    """One hash over the regular, non-hidden files directly in ``path`` (an HF model or adapter
    directory), names included, so a renamed or added file changes it."""
    root = Path(path)
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise PersonaguardError(f"{root}: no files to fingerprint")
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}\0{file_sha256(p)}\n".encode())
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def json_sha256(data: Any) -> str:
    return text_sha256(json.dumps(data, sort_keys=True, ensure_ascii=False))


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the fields that differ between two nested mappings."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, path + ".")
        elif a != b:
            out.append(path)
    return out


def describe(paths: Iterable[str]) -> str:
    return ", ".join(paths)
