#!/usr/bin/env bash
# GPU check of lt_bench, one command: (1) `ltbench finetune` fp32 / AMP bf16 / AMP fp16 + GradScaler
# (DDP when several GPUs), (2) extraction images/s bf16 autocast vs fp32 against the forward pass
# alone, (3) the ballad head on an ImageNet-LT-sized synthetic cache (GFLOP/s vs torch.mm fp32/TF32,
# peak GPU memory), (4) NCM / kNN with faiss GPU / faiss CPU / torch on the GPU, (5) the image input
# paths (--decode pil / fast / gpu: nvJPEG) on generated 500 x 375 JPEG files, extraction vs forward
# alone and Phase A steps vs forward + backward alone. Random-init
# ViT-B-16 and synthetic data: no downloads. Markdown tables on stdout and, with --out DIR (or env
# OUT), in DIR/gpu_check.md + DIR/gpu_check.json. Default sizes: < 6 min on one H200.
#
# Usage:
#   bash benchmarks/gpu_check.sh --out $OUT            # on the GPU machine, from the repo root
#   bash benchmarks/gpu_check.sh --quick --out $OUT    # smaller sizes
#   bash benchmarks/gpu_check.sh --parts extract,heads # a subset (finetune,extract,heads,faiss,input)
#   bash benchmarks/gpu_check.sh --cpu-smoke           # every part at tiny sizes on the CPU (no GPU)
#   (all options: python3 benchmarks/gpu_check.py --help)
# Exits 0 with a message where there is no CUDA GPU; 1 when a part failed; 2 when torch is missing.
#
# This workplace's lent H200 (see the device tool's KINDS.md): its python3 (3.12) already holds
# torch 2.11 (cu130), torchvision, h5py, typer, rich, timm, matplotlib and psutil; it lacks
# open_clip_torch, ftfy (+ wcwidth) and faiss. Carry only those (a few MB, well inside the 64 MiB
# the device tool moves), e.g. `pip download --no-deps --only-binary=:all: --python-version 3.12
# --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
# -d .whl open_clip_torch ftfy wcwidth faiss-cpu` — never torch's CUDA wheels (GBs).
#
# A bare machine (a Python, the repo copied, no internet): put wheels in .whl/ at the repo root
# beforehand; they are installed with `pip install --no-index --no-deps --target /tmp/site` (or,
# without pip, unzipped there) and put on PYTHONPATH. The repo itself needs no install (the script
# puts the repo root on PYTHONPATH; gpu_check.py maps the `lt_bench_cli` package onto ./cli).
# Prepare the folder on a machine with internet, for the target's Python (3.12, manylinux x86_64):
#
#   mkdir -p .whl && python3 -m pip download -d .whl --only-binary=:all: \
#       --python-version 3.12 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_17_x86_64 --implementation cp --abi cp312 \
#       torch==2.14.1 torchvision==0.29.1 open_clip_torch h5py typer rich faiss-gpu-cu12
#
# `pip download` with those flags resolves and fetches the dependencies too (numpy, pillow, the
# nvidia-* CUDA libraries torch needs, ftfy, regex, huggingface_hub, timm, click, ...). Use
# faiss-cpu instead of faiss-gpu-cu12 for no GPU faiss (part 4 then says "faiss-gpu not
# installed"), never both. torch's CUDA wheels are several GB: check the copy carries .whl/ whole.
# The wheels must match the machine's python3 (cp312 wheels need Python 3.12); the script says so
# when they don't. PYTHON=... picks another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
smoke=0
for arg in "$@"; do [ "$arg" = "--cpu-smoke" ] && smoke=1; done

PY="${PYTHON:-}"
shopt -s nullglob
wheels=(.whl/*.whl)
shopt -u nullglob
if [ ${#wheels[@]} -gt 0 ]; then
  PY="${PY:-python3}"
  echo "gpu_check: installing ${#wheels[@]} wheels from .whl/ into /tmp/site for $("$PY" -V 2>&1)"
  if "$PY" -m pip --version >/dev/null 2>&1; then
    if ! "$PY" -m pip install -q --no-index --no-deps --target /tmp/site "${wheels[@]}"; then
      echo "gpu_check: pip could not install .whl/*.whl for $("$PY" -V 2>&1) (wheels for another Python or platform?); going on with what is importable"
    fi
  else
    echo "gpu_check: $PY has no pip; unzipping the wheels into /tmp/site instead"
    "$PY" - "${wheels[@]}" <<'EOF'
import sys, zipfile
for w in sys.argv[1:]:
    zipfile.ZipFile(w).extractall("/tmp/site")
EOF
  fi
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  for w in "${wheels[@]}"; do
    case "$w" in
      *-cp3*-cp3*) case "$w" in *"-$tag-"*) ;; *) echo "gpu_check: WARNING: $w is not for $tag ($PY)";; esac;;
    esac
  done
fi
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "gpu_check: torch is not importable by $PY ($("$PY" -V 2>&1)): nothing measured."
  "$PY" -c "import torch" 2>&1 | tail -1 || true
  echo "gpu_check: install torch==2.14.1 torchvision==0.29.1 open_clip_torch h5py typer rich (faiss-gpu-cu12),"
  echo "           e.g. as wheels in .whl/ (see the top of benchmarks/gpu_check.sh)"
  exit 2
fi
missing=$("$PY" - <<'EOF'
import importlib
out = []
for m in ["torchvision", "open_clip", "numpy", "PIL", "h5py", "typer", "click", "rich", "faiss"]:
    try:
        importlib.import_module(m)
    except Exception as e:
        out.append(f"{m} ({type(e).__name__})")
print(", ".join(out))
EOF
) || missing="(check failed)"
[ -n "$missing" ] && echo "gpu_check: not importable: $missing (parts that need them will say so; faiss only adds rows)"
if [ "$smoke" = 0 ]; then
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA GPU visible to torch ($PY, torch $("$PY" -c 'import torch; print(torch.__version__)'))"
    echo "gpu_check: nothing to check here (use --cpu-smoke to check the script on the CPU)"
    exit 0
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
fi
exec "$PY" benchmarks/gpu_check.py "$@"
