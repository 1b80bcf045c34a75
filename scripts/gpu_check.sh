#!/usr/bin/env bash
# The CUDA check, for a machine with a GPU (a few minutes on one): the CUDA tests, then
# `zoo bench --device cuda --compile` on dcgan-mnist and cgan-mnist (torch.compile sampling
# with CUDA graphs) and on a 64x64 DCGAN at batch 256
# (MNIST resized; training only, since that model has no published weights). Run it from
# the repository root after the README's set-up (`make demo` makes .venv), and copy what it prints
# into docs/bench.md with the GPU and the date.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
date -u +%Y-%m-%dT%H:%MZ | tee "$OUT/date.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.csv"
"$BIN/python" -c 'import torch; assert torch.cuda.is_available(), "torch sees no GPU"'
"$BIN/python" -m pytest -q -m cuda tests 2>&1 | tee "$OUT/cuda-tests.txt"
"$BIN/zoo" bench dcgan-mnist cgan-mnist --device cuda --compile --steps 50 --json > "$OUT/bench.json"
"$BIN/zoo" bench dcgan --device cuda --steps 50 --set image_size=64 --set batch_size=256 \
    --json > "$OUT/bench-dcgan64.json"
"$BIN/python" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from zoo.evaluation.bench import format_table
for name in ("bench.json", "bench-dcgan64.json"):
    print(format_table(json.loads((Path(sys.argv[1]) / name).read_text())), end="\n\n")
PY
