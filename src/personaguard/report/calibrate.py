"""Calibrate the report's own numbers on real runs, beside the synthetic scenarios.

For every variant and every headline metric of the report (pooled over banks and conditions, as the
summary and the detection-gap table pool them), nulls are made from the real outcomes by swapping
the variant's and the base's labels item by item, and the test is run on each. Pass two runs of the
same model (an A/A pair: another batch size, another sampling seed) or a whole study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from personaguard.audit.calibration import ALPHA, relabelled_nulls, synthetic_table
from personaguard.audit.pairing import as_dict
from personaguard.report import metrics
from personaguard.report.collect import collect


def calibrate(
    sources: Mapping[str, str | Path] | Sequence[str | Path] = (),
    sims: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """False-positive rate and coverage: synthetic scenarios, and relabelled nulls of real runs."""
    real = []
    if sources:
        data = collect(sources)
        for v in data.variants:
            if v is data.base:
                continue
            deltas = metrics.deltas_vs_base(data.base, v)
            for k, m in enumerate(metrics.METRICS):
                base, tuned = metrics.outcomes(data.base, m), metrics.outcomes(v, m)
                if deltas[m.key] is None:
                    continue
                check = relabelled_nulls(base, tuned, metrics.item_of, m.key, sims, seed + k)
                real.append({"variant": v.name, "observed": deltas[m.key], **check.to_dict()})
    return {
        "alpha": ALPHA,
        "sims": sims,
        "synthetic": [as_dict(c) for c in synthetic_table(sims, seed)],
        "real": real,
    }
