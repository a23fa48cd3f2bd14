#!/usr/bin/env bash
# GPU check of `ltbench finetune` (fp32, AMP bf16, AMP fp16 + GradScaler; DDP when several GPUs)
# on synthetic data with a random-init ViT-B-16; prints images/s per path.
# Usage: benchmarks/gpu_check.sh [--model ViT-B-16] [--batch-size 128] [--steps 30] [--out DIR]
# Exits 0 with a message where there is no CUDA GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no CUDA GPU visible to torch ($PY); nothing to check"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec "$PY" benchmarks/gpu_check.py "$@"
