"""GPU check of `ltbench finetune`: single-GPU fp32 and AMP bf16 / fp16 (and DDP when the
machine has several GPUs), on synthetic data with a random-init ViT-B-16, printing images/s.

    python benchmarks/gpu_check.py [--model ViT-B-16] [--batch-size 128] [--steps 30] [--out DIR]

Exits 0 with a message when torch sees no CUDA GPU. Exit 1 when a run fails (its stderr tail is
printed). Prepared for a GPU machine; run by `benchmarks/gpu_check.sh`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ltbench() -> list[str]:
    exe = Path(sys.executable).with_name("ltbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lt_bench_cli"]


def torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-16")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per run (one epoch)")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--out", default=None, help="keep the run dirs here (default: a temp dir, removed)")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="check the script itself without a GPU: the fp32 run only, on CPU")
    args = ap.parse_args()

    import torch

    if args.cpu_smoke:
        return run_all(args, device="cpu", n_gpu=0, precisions=["fp32"])
    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU here; nothing to check (run this on a GPU machine)")
        return 0
    n_gpu = torch.cuda.device_count()
    print(f"gpu_check: {n_gpu} x {torch.cuda.get_device_name(0)}, torch {torch.__version__}, model {args.model} "
          f"(random init), batch {args.batch_size}, {args.steps} steps", flush=True)
    return run_all(args, device="cuda", n_gpu=n_gpu, precisions=["fp32", "bf16", "fp16"])


def run_all(args, device: str, n_gpu: int, precisions: list[str]) -> int:

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ltb_gpu_check_"))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    # 100 classes, enough synthetic images for the steps asked; images at the model's own size
    # would only cost generation time: the model's preprocess resizes them anyway.
    n_img = args.batch_size * (args.steps + 2)
    per_class = max(20, -(-n_img // 100) * 2)
    common = ["finetune", "--dataset", "synthetic", "--option", "num_classes=100",
              "--option", f"max_per_class={per_class}", "--option", "imbalance=2", "--option", "image_size=64",
              "--model", args.model, "--pretrained", "none", "--epochs", "1",
              "--steps-per-epoch", str(args.steps), "--batch-size", str(args.batch_size),
              "--workers", str(args.workers), "--device", device, "--overwrite"]
    names = {"fp32": "fp32, 1 GPU", "bf16": "bf16 AMP, 1 GPU", "fp16": "fp16 AMP + GradScaler, 1 GPU"}
    runs = [(names[p] if device == "cuda" else f"{p}, CPU smoke", [], p) for p in precisions]
    if n_gpu > 1:
        runs.append((f"bf16 AMP, DDP {n_gpu} GPUs", torchrun() + ["--standalone", f"--nproc_per_node={n_gpu}",
                                                                   "--no-python"], "bf16"))
    rows, failed = [], False
    for label, launcher, precision in runs:
        out = root / label.split(",")[0].replace(" ", "_").replace("+", "")
        cmd = (launcher + [ltbench()[0]] if launcher else ltbench()) + common + \
            ["--precision", precision, "--out", str(out)]
        if launcher and len(ltbench()) > 1:
            print(f"gpu_check: skip {label}: no ltbench console script for torchrun --no-python")
            continue
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            failed = True
            print(f"gpu_check: FAILED {label} (exit {r.returncode}):\n{r.stderr[-2000:]}", flush=True)
            continue
        m = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        rows.append((label, m["images_per_s"], m["train_loss"], m["val_acc"], wall))
        print(f"gpu_check: {label:32s} {m['images_per_s']:9.1f} img/s  loss {m['train_loss']:.4f}  "
              f"val {100 * m['val_acc']:.1f}%  ({wall:.0f} s with start-up)", flush=True)
    if rows:
        base = rows[0][1]
        print("\n| run | images/s | vs fp32 |\n|---|---|---|")
        for label, ips, *_ in rows:
            print(f"| {label} | {ips:.1f} | {ips / base:.2f}x |")
    if not args.out:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
