#!/usr/bin/env bash
# The GPU check: one command, at most 8 minutes on one H200 (or H100), on a machine with PyTorch (CUDA),
# transformers, peft and Lightning installed (deepspeed optional: without it the ZeRO-2 run is skipped). Nothing
# is downloaded: weights are random-init, tokens random. Run from anywhere:
#   bash bench/gpu_check.sh 2>&1 | tee gpu_check.log
# then copy the table, the date and the versions it prints into bench/RESULTS.md ("GPU check").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

date -u +"%Y-%m-%d %H:%M UTC"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" - <<'PY'
import importlib

import torch

print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), device {torch.cuda.get_device_name(0)}")
for name in ("lightning", "transformers", "peft", "deepspeed"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except ImportError:
        print(f"{name} not installed")
PY
# four runs of at most 110 s each (startup, 7B random init on the GPU, 3 warmup + 8 timed steps of 8 x 512)
timeout 470 "$PYTHON" bench/bench_gpu_stack.py --shape 7b --timeout 110
