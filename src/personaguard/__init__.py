"""personaguard: measure and control what persona fine-tuning does to reliability and safety.

The Python API is the product; the CLI is a thin layer over it::

    import personaguard as pg
    model = pg.load_model("bundled:smollm2-135m")
    result = pg.run_audit(pg.AuditConfig(model="bundled:smollm2-135m", limit=20), out="runs/base")

Names are imported lazily, so ``import personaguard`` stays fast and never needs torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AuditConfig": "personaguard.audit.runner",
    "run_audit": "personaguard.audit.runner",
    "run_suite": "personaguard.audit.suites",
    "compare_runs": "personaguard.audit.compare",
    "import_inspect_log": "personaguard.audit.inspect_import",
    "build_report": "personaguard.report.build",
    "run_study": "personaguard.study.pipeline",
    "load_profile": "personaguard.study.profile",
    "train": "personaguard.training",
    "TrainConfig": "personaguard.training",
    "PersonaguardError": "personaguard.errors",
    "load_model": "personaguard.models",
    "parse_spec": "personaguard.models",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'personaguard' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
