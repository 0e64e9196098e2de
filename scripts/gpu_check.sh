#!/usr/bin/env bash
# The GPU path, end to end, in one short run for a machine with a CUDA device (the device tool of
# a development session, or any GPU box): set-up, the scoring benchmark on cuda, and the main job
# with every variant on cuda. Timings land in ${OUT:-gpu-check}/ for the README.
#
#   bash scripts/gpu_check.sh            # after `make setup` (the venv and the bundled model)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
py=.venv/bin/python
$py -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))" | tee "$out/device.txt"
export PYTHONUNBUFFERED=1
{ time $py benchmarks/bench_scoring.py --device cuda --dtype float32; } 2>&1 | tee "$out/bench_scoring_fp32.txt"
{ time $py benchmarks/bench_scoring.py --device cuda --dtype bfloat16; } 2>&1 | tee "$out/bench_scoring_bf16.txt"
{ time .venv/bin/personaguard demo --base "bundled:smollm2-135m#device=cuda" --out "$out/demo"; } 2>&1 | tee "$out/demo.txt"
cp "$out/demo/report/report.md" "$out/report.md"
