"""What data is available: every bank with its size, tiers, source and licence (for docs and CLI)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from personaguard.data import sources
from personaguard.data.items import builtin_banks, load_items

PROJECT_SOURCE = "personaguard (project-authored)"
PROJECT_LICENSE = "Apache-2.0"


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
