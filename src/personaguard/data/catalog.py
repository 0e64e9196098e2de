"""What data is available and where: a bank name resolves to a built-in file, a fetched file or the
user's own JSONL; ``catalog`` lists every bank with its size, tiers, source and licence."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from personaguard.data import sources
from personaguard.data.items import load_items
from personaguard.errors import PersonaguardError
from personaguard.paths import builtin_data

PROJECT_SOURCE = "personaguard (project-authored)"
PROJECT_LICENSE = "Apache-2.0"


def builtin_banks() -> dict[str, Path]:
    return {p.stem: p for p in sorted((builtin_data() / "items").glob("*.jsonl"))}


def bank_path(bank: str) -> Path:
    """A built-in bank name, a fetched bank name, or a path to the user's own JSONL file."""
    banks = builtin_banks()
    if bank in banks:
        return banks[bank]
    if bank in sources.BANKS:
        if fetched := sources.bank_file(bank):
            return fetched
        raise PersonaguardError(
            f"bank {bank!r} is built from third-party packages and has not been fetched yet; "
            "run `personaguard data fetch`"
        )
    if Path(bank).suffix == ".jsonl" or Path(bank).exists():
        return Path(bank)
    raise PersonaguardError(
        f"unknown bank {bank!r}; expected one of {sorted([*banks, *sources.BANKS])} "
        "or a path to a .jsonl file"
    )


@dataclass(frozen=True)
class BankInfo:
    name: str
    items: int | None  # None: not fetched yet
    tiers: str
    source: str
    license: str


def _tiers(items: list) -> str:
    counts = Counter(it.tier for it in items if it.tier)
    return ", ".join(f"{tier} {n}" for tier, n in sorted(counts.items()))


def catalog() -> list[BankInfo]:
    rows = []
    for name, path in builtin_banks().items():
        items = load_items(path)
        rows.append(BankInfo(name, len(items), _tiers(items), PROJECT_SOURCE, PROJECT_LICENSE))
    for name in sources.BANKS:
        path = sources.bank_file(name)
        if path is None:
            rows.append(BankInfo(name, None, "", "not fetched: personaguard data fetch", ""))
            continue
        items = load_items(path)
        provenance = json.loads((path.parent / f"{name}.provenance.json").read_text())
        origin = "; ".join(
            f"{s['package']} {s['version']}: {s['member'].split('/')[-2]}/{s['member'].split('/')[-1]} "
            f"({s['items']})"
            for s in provenance["sources"]
        )
        licenses = "; ".join(sorted({s["license"] for s in provenance["sources"]}))
        rows.append(BankInfo(name, len(items), _tiers(items), origin, licenses))
    return rows
