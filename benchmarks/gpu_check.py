"""GPU check of lt_bench, one command, five parts, each a Markdown table:

1. finetune: `ltbench finetune` fp32, AMP bf16, AMP fp16 + GradScaler (and DDP when the machine
   has several GPUs), random-init ViT-B-16 on synthetic data: images/s per path.
2. extract: `extract_features` on the `synthetic` dataset at 224 px with ViT-B-16 (random init),
   bf16 autocast + channels_last (what extract does on CUDA) against fp32 (autocast patched
   out; channels_last kept), each against the model's forward alone on preloaded GPU tensors.
3. heads: `train_on_arrays` with the `ballad` recipe (10 epochs, batch 512) on an
   ImageNet-LT-sized synthetic cache (115,846 x 1024, 1000 classes) on the GPU: wall time,
   matmul GFLOP/s achieved (4BD(D+C) per step, as benchmarks/test_bench_heads.py counts them)
   against this GPU's torch.mm rate on the same shapes in fp32 and in TF32, measured in the same
   run, and torch.cuda.max_memory_allocated.
4. faiss: NCM and kNN (k=20) on 115,846 train / 50,000 test x 1024: faiss on the GPU (when the
   installed faiss has GPU support), faiss on the CPU, torch matmul + topk on the GPU.
5. input: the image input paths (`--decode pil|fast|gpu`) on 4,096 generated JPEG files at
   ImageNet's typical 500 x 375 (q90): extraction images/s against the model's forward alone
   (bf16), and Phase A steps (class loss, bf16 autocast, SGD) against forward + backward alone.

    python benchmarks/gpu_check.py [--quick] [--parts finetune,extract,heads,faiss] [--out DIR]
    python benchmarks/gpu_check.py --cpu-smoke      # every part at tiny sizes on the CPU

Each part is guarded: a failure prints `gpu_check: <part> FAILED: <error line>` and the others
still run. With --out DIR (or env OUT) the tables go to DIR/gpu_check.md and the numbers to
DIR/gpu_check.json, rewritten after every part (a run killed half-way keeps what it measured).
Exit 0 when every part ran; 1 when one failed; 2 when torch is not importable; 0 with a message
when torch sees no CUDA GPU (unless --cpu-smoke). Prepared for a GPU machine; run by
`benchmarks/gpu_check.sh`. Default sizes target < 6 minutes on one H200.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # a bare machine: the repo is not pip-installed
    sys.path.insert(0, str(REPO))

PARTS = ("finetune", "extract", "heads", "faiss", "input")
# what each part imports (module names); checked up front so a missing one is named, not a traceback
NEEDS = {"finetune": ["torch", "torchvision", "open_clip", "numpy", "PIL", "h5py", "typer", "click", "rich"],
         "extract": ["torch", "torchvision", "open_clip", "numpy", "PIL", "h5py"],
         "heads": ["torch", "numpy", "h5py"],
         "faiss": ["torch", "numpy", "h5py"],
         "input": ["torch", "torchvision", "open_clip", "numpy", "PIL", "h5py"]}
OPTIONAL = ["faiss", "pytest", "psutil"]

# sizes: default (H200), --quick, --cpu-smoke; any explicit option overrides
SIZES = {
    "default": dict(model="ViT-B-16", batch_size=128, steps=30, extract_images=8192, extract_batch=256,
                    image_size=224, fwd_seconds=3.0, n_train=115_846, n_test=50_000, dim=1024, classes=1000,
                    epochs=10, head_batch=512, k=20, mm_seconds=1.0, square=8192, input_images=4096),
    "quick": dict(model="ViT-B-16", batch_size=64, steps=10, extract_images=2048, extract_batch=256,
                  image_size=224, fwd_seconds=1.0, n_train=20_000, n_test=5_000, dim=512, classes=100,
                  epochs=5, head_batch=512, k=20, mm_seconds=0.5, square=4096, input_images=1024),
    "smoke": dict(model="ltb-tiny-vit", batch_size=8, steps=2, extract_images=40, extract_batch=16,
                  image_size=32, fwd_seconds=0.0, n_train=1_000, n_test=200, dim=32, classes=10,
                  epochs=2, head_batch=128, k=5, mm_seconds=0.1, square=128, input_images=40),
}


def say(msg: str = "") -> None:
    print(msg, flush=True)


def md_table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


# -- environment ---------------------------------------------------------------------------------

def module_versions() -> dict:
    from importlib import metadata

    dists = {"PIL": ["pillow"], "open_clip": ["open_clip_torch"], "faiss": ["faiss-gpu-cu12", "faiss-gpu", "faiss-cpu"]}
    out = {}
    for name in sorted({m for ms in NEEDS.values() for m in ms} | set(OPTIONAL)):
        try:
            mod = importlib.import_module(name)
            version = None
            for dist in dists.get(name, [name]):
                with contextlib.suppress(Exception):
                    version = f"{metadata.version(dist)}" + (f" ({dist})" if name == "faiss" else "")
                    break
            out[name] = version or str(getattr(mod, "__version__", "present"))
        except Exception as e:  # ImportError, or a broken install (wrong Python's wheels...)
            out[name] = f"MISSING ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    return out


def environment(device: str) -> dict:
    import torch

    from lt_bench.provenance import environment as lt_environment

    env = lt_environment() | {  # lt_bench, Python and torch versions as every artefact records them
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device,
        "float32_matmul_precision": torch.get_float32_matmul_precision()}
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=torch.cuda.get_device_name(0), gpu_count=torch.cuda.device_count(),
                   gpu_memory_gb=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}")
        try:
            r = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20)
            env["driver"] = r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None
        except Exception:
            env["driver"] = None
    else:
        env["gpu"] = "none (CPU smoke)"
    env["modules"] = module_versions()
    return env


@contextlib.contextmanager
def matmul_precision(p: str):
    """``highest`` = true fp32 matmuls, ``high`` = TF32 allowed (torch's switch; CUDA only)."""
    import torch

    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(p)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


# -- part 1: finetune ----------------------------------------------------------------------------

def ltbench_cmd(env: dict) -> list[str]:
    """The `ltbench` console script beside this Python, else `python -m lt_bench_cli`; on a bare
    machine (repo not installed) a temp dir with `lt_bench_cli -> REPO/cli` goes on PYTHONPATH."""
    exe = Path(sys.executable).with_name("ltbench")
    if exe.exists():
        return [str(exe)]
    paths = [str(REPO)]
    if importlib.util.find_spec("lt_bench_cli") is None:
        shim = Path(tempfile.mkdtemp(prefix="ltb_cli_shim_"))
        atexit.register(shutil.rmtree, shim, True)
        (shim / "lt_bench_cli").symlink_to(REPO / "cli", target_is_directory=True)
        paths.insert(0, str(shim))
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return [sys.executable, "-m", "lt_bench_cli"]


def torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def part_finetune(a, dev: str, n_gpu: int, rec: dict) -> str:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    lt = ltbench_cmd(env)
    root = Path(tempfile.mkdtemp(prefix="ltb_gpu_check_ft_"))
    # 100 classes, enough synthetic images for the steps asked; images at the model's own size
    # would only cost generation time: the model's preprocess resizes them anyway.
    n_img = a.batch_size * (a.steps + 2)
    per_class = max(20, -(-n_img // 100) * 2)
    common = ["finetune", "--dataset", "synthetic", "--option", "num_classes=100",
              "--option", f"max_per_class={per_class}", "--option", "imbalance=2", "--option", "image_size=64",
              "--model", a.model, "--pretrained", "none", "--epochs", "1",
              "--steps-per-epoch", str(a.steps), "--batch-size", str(a.batch_size),
              "--workers", str(a.workers), "--device", dev, "--overwrite"]
    precisions = ["fp32", "bf16", "fp16"] if dev == "cuda" else ["fp32"]
    names = {"fp32": "fp32, 1 GPU", "bf16": "bf16 AMP, 1 GPU", "fp16": "fp16 AMP + GradScaler, 1 GPU"}
    runs = [(names[p] if dev == "cuda" else f"{p}, CPU smoke", [], p) for p in precisions]
    if n_gpu > 1:
        runs.append((f"bf16 AMP, DDP {n_gpu} GPUs", torchrun() + ["--standalone", f"--nproc_per_node={n_gpu}",
                                                                   "--no-python"], "bf16"))
    rows, errors = [], []
    rec.update(model=a.model, batch_size=a.batch_size, steps=a.steps, workers=a.workers, runs=[])
    try:
        for label, launcher, precision in runs:
            out = root / label.split(",")[0].replace(" ", "_").replace("+", "")
            if launcher and len(lt) > 1:
                say(f"gpu_check: skip {label}: no ltbench console script for torchrun --no-python")
                continue
            cmd = launcher + lt + common + ["--precision", precision, "--out", str(out)]
            t0 = time.perf_counter()
            try:
                r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=a.run_timeout)
            except subprocess.TimeoutExpired as e:
                err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
                r = subprocess.CompletedProcess(cmd, 124, "", err + f"\ntimed out after {a.run_timeout} s")
            wall = time.perf_counter() - t0
            if r.returncode != 0:
                tail = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "(no stderr)"
                errors.append(f"{label}: exit {r.returncode}: {tail}")
                say(f"gpu_check: finetune {label} FAILED (exit {r.returncode}):\n{r.stderr[-2000:]}")
                rec["runs"].append(dict(label=label, error=errors[-1]))
                continue
            m = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
            shutil.rmtree(out, ignore_errors=True)  # checkpoints: GBs for ViT-B-16
            rows.append([label, m["images_per_s"], m["train_loss"], 100 * m["val_acc"], wall])
            rec["runs"].append(dict(label=label, precision=precision, images_per_s=m["images_per_s"],
                                    train_loss=m["train_loss"], val_acc=m["val_acc"], wall_s=round(wall, 1)))
            say(f"gpu_check: finetune {label:30s} {m['images_per_s']:9.1f} img/s  ({wall:.0f} s with start-up)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0][1] if rows and rows[0][0].startswith("fp32") else None
    table = md_table(["run", "images/s", "vs fp32", "train loss", "val acc %", "wall s (with start-up)"],
                     [[r[0], r[1], f"{r[1] / base:.2f}x" if base else "-", r[2], r[3], r[4]] for r in rows])
    title = (f"### 1. finetune: {a.model} random init, batch {a.batch_size}, {a.steps} steps, "
             f"synthetic 64 px resized by the model's preprocess, {a.workers} workers")
    if errors:
        raise PartError("; ".join(errors), f"{title}\n\n{table}")
    return f"{title}\n\n{table}"


class PartError(Exception):
    """A part that failed half-way but has a partial table to show."""

    def __init__(self, msg: str, table: str):
        super().__init__(msg)
        self.table = table


# -- part 2: extract -----------------------------------------------------------------------------

def part_extract(a, dev: str, rec: dict) -> str:
    import torch

    import lt_bench.features.extract as ex
    from benchmarks.shared import sync
    from lt_bench.data import load_dataset
    from lt_bench.device import amp_policy
    from lt_bench.models import create_model

    torch.manual_seed(0)
    per_class = max(1, a.extract_images // 10)
    ds = load_dataset("synthetic", num_classes=10, max_per_class=per_class, imbalance=1.0, val_per_class=0,
                      test_per_class=0, image_size=a.image_size)
    split = ds.split("train")
    n = len(split)
    bundle = create_model(a.model, "none", device=dev)
    model, device = bundle.model, torch.device(dev)
    model.eval()
    cuda = device.type == "cuda"
    b = a.extract_batch
    rec.update(model=a.model, images=n, image_size=a.image_size, model_image_size=bundle.info.image_size,
               batch=b, workers=a.extract_workers, rows=[])

    # one batch of real preprocessed images, on the device, for the forward-only reference
    x = torch.stack([bundle.preprocess_val(split.load_image(i % n)) for i in range(b)]).to(device)
    if cuda:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward_ips(amp: bool) -> float:
        autocast = amp_policy(device, None if amp else "fp32").autocast
        for _ in range(2):  # warm-up (cuDNN / cuBLAS choices)
            with autocast():
                model.encode_image(x)
        sync(dev)
        it, t0 = 0, time.perf_counter()
        while it < 3 or time.perf_counter() - t0 < a.fwd_seconds:
            with autocast():
                model.encode_image(x)
            sync(dev)
            it += 1
        return it * b / (time.perf_counter() - t0)

    tmp = Path(tempfile.mkdtemp(prefix="ltb_gpu_check_ex_"))
    rows = []
    try:
        forward_ips(True)  # warm the device before the first timed extraction
        variants = [("bf16 autocast + channels_last" if cuda else "CPU (extract uses no autocast)", True),
                    ("fp32 (autocast off), channels_last" if cuda else "CPU, autocast patched off", False)]
        for label, amp in variants:
            opts = ex.ExtractOptions(splits=("train",), batch_size=b, workers=a.extract_workers, overwrite=True,
                                     progress=False)
            saved = ex.amp_policy
            if not amp:  # extract has no precision option: its policy call asked for fp32 instead
                ex.amp_policy = functools.partial(amp_policy, precision="fp32")
            try:
                sync(dev)
                t0 = time.perf_counter()
                res = ex.extract_features(tmp / "f.h5", ds, bundle, opts)
                sync(dev)
                wall = time.perf_counter() - t0
            finally:
                ex.amp_policy = saved
            fwd = forward_ips(amp)
            rows.append([label, res.images_per_s, fwd, res.images_per_s / fwd, wall])
            rec["rows"].append(dict(label=label, extract_images_per_s=round(res.images_per_s, 1),
                                    forward_images_per_s=round(fwd, 1), ratio=round(res.images_per_s / fwd, 3),
                                    extract_seconds=round(res.seconds, 2), wall_s=round(wall, 2)))
            say(f"gpu_check: extract {label:36s} {res.images_per_s:9.1f} img/s, forward alone {fwd:9.1f} img/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if len(rows) == 2:
        rec["amp_speedup_extract"] = round(rows[0][1] / rows[1][1], 3)
        rec["amp_speedup_forward"] = round(rows[0][2] / rows[1][2], 3)
    table = md_table(["path", "extract images/s", "forward-only images/s", "extract / forward",
                      "extract wall s (with loader start, text prompts)"], rows)
    foot = (f"\n\nAMP vs fp32: extraction {rec.get('amp_speedup_extract', '-')}x, forward alone "
            f"{rec.get('amp_speedup_forward', '-')}x. Forward alone: one batch of {b} preprocessed images kept on "
            f"the device, encode_image repeated; fp32 matmul precision "
            f"'{torch.get_float32_matmul_precision()}' (cuDNN conv TF32: "
            f"{torch.backends.cudnn.allow_tf32 if cuda else '-'}).")
    return (f"### 2. extract: {a.model} random init, synthetic {n:,} images at {a.image_size} px, batch {b}, "
            f"{a.extract_workers} workers, {dev}\n\n{table}{foot}")


# -- shared synthetic cache for parts 3 and 4 ----------------------------------------------------

class CacheHolder:
    def __init__(self, a, tmp: Path):
        self.a, self.tmp, self.arrays, self.seconds = a, tmp, None, 0.0

    def get(self):
        if self.arrays is None:
            from benchmarks.shared import counts_summing_to
            from lt_bench.features import FeatureCache
            from lt_bench.features.synthetic import make_synthetic_cache

            a = self.a
            t0 = time.perf_counter()
            p = make_synthetic_cache(self.tmp / "inlt.h5", num_classes=a.classes, dim=a.dim,
                                     train_counts=counts_summing_to(a.n_train, a.classes),
                                     test_per_class=max(1, a.n_test // a.classes), noise=2.0, text_noise=1.5)
            with FeatureCache(p) as c:
                self.arrays = dict(text=c.text_classifier, xtr=c.features("train"), ytr=c.labels("train"),
                                   counts=c.train_counts, xte=c.features("test"), yte=c.labels("test"))
            self.seconds = time.perf_counter() - t0
            say(f"gpu_check: synthetic cache {len(self.arrays['xtr']):,} train / {len(self.arrays['xte']):,} test x "
                f"{a.dim}, {a.classes} classes: made and read in {self.seconds:.1f} s")
        return self.arrays


# -- part 3: heads -------------------------------------------------------------------------------

def mm_square_gflops(dev: str, s: int, seconds: float) -> float:
    """torch.mm rate of one s x s x s product: the GPU's peak for this precision, for scale."""
    import torch

    from benchmarks.shared import sync

    a, w = torch.randn(s, s, device=dev), torch.randn(s, s, device=dev)
    torch.mm(a, w)
    sync(dev)
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < seconds:
        torch.mm(a, w)
        sync(dev)
        n += 1
    return n * 2 * s**3 / (time.perf_counter() - t0) / 1e9


def part_heads(a, dev: str, cache: CacheHolder, rec: dict) -> str:
    import torch

    from benchmarks.shared import ballad_step_flops, matmul_gflops, sync
    from lt_bench.heads import resolve_config, train_on_arrays

    arr = cache.get()
    n, d = arr["xtr"].shape
    c = arr["text"].shape[0]
    b = a.head_batch
    cuda = dev == "cuda"
    precisions = [("fp32 (TF32 off)", "highest"), ("TF32 matmuls", "high")] if cuda else [("fp32", "highest")]
    ref = {}
    for label, p in precisions:
        with matmul_precision(p):
            ref[p] = (matmul_gflops(b, d, c, a.mm_seconds, dev), mm_square_gflops(dev, a.square, a.mm_seconds))
        say(f"gpu_check: heads matmul {label}: step shapes {ref[p][0]:,.0f} GFLOP/s, "
            f"{a.square}^3 {ref[p][1]:,.0f} GFLOP/s")
    cfg = resolve_config("ballad", epochs=a.epochs, batch_size=b, seed=0)
    rows = []
    rec.update(n_train=n, dim=d, classes=c, epochs=a.epochs, batch=b, cache_seconds=round(cache.seconds, 1),
               features_fp32_gb=round(n * d * 4 / 1e9, 3), rows=[])
    for label, p in precisions:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        with matmul_precision(p):
            sync(dev)
            t0 = time.perf_counter()
            res = train_on_arrays(arr["xtr"], arr["ytr"], arr["counts"], arr["text"], cfg, device=torch.device(dev))
            sync(dev)
            wall = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
        flops = res.steps * ballad_step_flops(b, d, c)
        gflops = flops / res.seconds / 1e9
        pair, square = ref[p]
        rows.append([label, wall, res.seconds, res.steps, gflops, pair, gflops / pair, square,
                     f"{peak:.2f}" if peak is not None else "n/a (CPU)", res.final_loss])
        rec["rows"].append(dict(label=label, matmul_precision=p, wall_s=round(wall, 2), train_s=round(res.seconds, 2),
                                steps=res.steps, gflops=round(gflops, 1), matmul_gflops_step_shapes=round(pair, 1),
                                efficiency=round(gflops / pair, 3), matmul_gflops_square=round(square, 1),
                                peak_mem_gb=None if peak is None else round(peak, 3),
                                final_loss=round(res.final_loss, 4)))
        say(f"gpu_check: heads ballad {label}: {wall:.2f} s wall, {gflops:,.0f} GFLOP/s "
            f"({gflops / pair:.2f} of torch.mm on the step shapes), peak {rows[-1][8]} GB")
    table = md_table(["matmuls", "wall s", "train loop s", "steps", "GFLOP/s", "torch.mm GFLOP/s (step shapes)",
                      "efficiency", f"torch.mm GFLOP/s ({a.square}^3)", "peak GPU mem GB", "final loss"], rows)
    foot = (f"\n\nGFLOP/s = steps x 4BD(D+C) / train-loop seconds (as benchmarks/test_bench_heads.py); wall adds "
            f"the copy of the {n * d * 4 / 1e9:.2f} GB float32 features to the device. Peak = "
            f"torch.cuda.max_memory_allocated. Cache made and read in {cache.seconds:.1f} s (not in the times).")
    return (f"### 3. heads: ballad, {a.epochs} epochs, batch {b}, on {n:,} x {d}, {c} classes, {dev}\n\n"
            f"{table}{foot}")


# -- part 4: faiss -------------------------------------------------------------------------------

def part_faiss(a, dev: str, cache: CacheHolder, rec: dict) -> str:
    import numpy as np

    from benchmarks.shared import sync, torch_knn, torch_ncm

    arr = cache.get()
    xtr, ytr, xte, yte, text = arr["xtr"], arr["ytr"], arr["xte"], arr["yte"], arr["text"]
    n, d = xtr.shape
    q, c = len(xte), text.shape[0]
    try:
        import faiss

        from lt_bench.heads import choose_faiss_backend
        have_faiss = True
        gpu_build = hasattr(faiss, "StandardGpuResources")
        n_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        faiss_note = f"faiss {faiss.__version__}, " + (
            f"GPU build, sees {n_gpus} GPU(s)" if gpu_build else "faiss-gpu not installed (CPU-only build)")
    except ImportError as e:
        have_faiss, gpu_build, n_gpus = False, False, 0
        faiss_note = f"faiss not importable ({e}): faiss-gpu not installed, no CPU faiss either"
    # GPU rows exactly where lt_bench's NCM / KNN would take the GPU themselves
    faiss_gpu = have_faiss and choose_faiss_backend(dev) == "gpu"
    say(f"gpu_check: faiss: {faiss_note}")
    if not faiss_gpu:
        say("gpu_check: faiss-gpu not installed" if not gpu_build else
            "gpu_check: faiss-gpu build present but it sees no GPU")
    rec.update(faiss=faiss_note, faiss_gpu=faiss_gpu, n_train=n, n_test=q, dim=d, classes=c, k=a.k, rows=[])

    def timed(fn, repeat: int = 1):
        best, out = float("inf"), None
        for _ in range(repeat):
            sync(dev)
            t0 = time.perf_counter()
            out = fn()
            sync(dev)
            best = min(best, time.perf_counter() - t0)
        return np.asarray(out), best

    rows = []
    with matmul_precision("highest"):
        for method in ("ncm", "knn"):
            cands = []
            if have_faiss:
                from lt_bench.heads import KNN, NCM

                def lt_fn(device, method=method):
                    if method == "ncm":
                        return lambda: NCM(text, device=device).fit(xtr, ytr).logits(xte).argmax(1)
                    return lambda: KNN(text, k=a.k, device=device).fit(xtr, ytr).logits(xte).argmax(1)
                cands.append(("faiss CPU (IndexFlatIP)", lt_fn("cpu"), 1))
                if faiss_gpu:
                    cands.append(("faiss GPU (IndexFlatIP)", lt_fn("cuda"), 2))
            tname = f"torch matmul + topk, {dev}" if method == "knn" else f"torch matmul + argmax, {dev}"
            tfn = (lambda: torch_ncm(xtr, ytr, xte, c, dev, batch=16384)) if method == "ncm" else \
                (lambda: torch_knn(xtr, ytr, xte, a.k, c, dev, batch=8192))
            cands.append((tname, tfn, 2 if dev == "cuda" else 1))
            ref_pred, ref_s, ref_name = None, None, None
            for label, fn, repeat in cands:
                try:
                    pred, s = timed(fn, repeat)
                except Exception as e:  # one backend failing leaves the others' rows
                    line = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    say(f"gpu_check: faiss {method} {label} FAILED: {line}")
                    rows.append([method, label, "FAILED", line[:80], "", ""])
                    rec["rows"].append(dict(method=method, backend=label, error=line))
                    continue
                if ref_pred is None:
                    ref_pred, ref_s, ref_name = pred, s, label
                acc = float((pred == yte).mean())
                mism = int((pred != ref_pred).sum())
                rows.append([method, label, s, f"{ref_s / s:.2f}x", mism, 100 * acc])
                rec["rows"].append(dict(method=method, backend=label, seconds=round(s, 3),
                                        speedup_vs_first=round(ref_s / s, 3), vs=ref_name, mismatches=mism,
                                        accuracy=round(acc, 4)))
                say(f"gpu_check: faiss {method} {label:36s} {s:8.2f} s  ({ref_s / s:.2f}x vs {ref_name}), "
                    f"{mism} mismatches")
    if any(r[2] == "FAILED" for r in rows):
        failed = [f"{r[0]} {r[1]}: {r[3]}" for r in rows if r[2] == "FAILED"]
    else:
        failed = []
    table = md_table(["method", "backend", "seconds", "speed vs first row", "mismatches vs first row",
                      "test acc %"], rows)
    foot = (f"\n\n{faiss_note}. Each time covers fit (normalise, add / class means) + search + argmax, from "
            f"numpy arrays to predictions; GPU rows are the best of 2 runs (the first pays faiss/cuBLAS set-up), "
            f"the CPU faiss row one run. kNN k={a.k}, exhaustive, float32 (TF32 off). Mismatches: the similarities "
            f"come from different kernels (faiss vs torch matmul; both vote with lt_bench's knn_votes), so near-ties "
            f"may flip.")
    text_out = (f"### 4. faiss: NCM and kNN on {n:,} train / {q:,} test x {d}, {c} classes\n\n{table}{foot}")
    if failed:
        raise PartError("; ".join(failed), text_out)
    return text_out


# -- driver --------------------------------------------------------------------------------------

# -- part 5: the image input path (--decode) -------------------------------------------------------

def part_input(a, dev: str, rec: dict) -> str:
    """Extraction and Phase A steps from JPEG files (500 x 375, q90) by --decode path, against
    the model alone (forward; forward + backward) on preloaded device tensors, bf16 on CUDA."""
    import torch

    from benchmarks.shared import sync
    from lt_bench.data import load_dataset
    from lt_bench.data.decode import resolve_decode
    from lt_bench.data.synthetic import write_image_folder
    from lt_bench.device import amp_policy
    from lt_bench.features.extract import ExtractOptions, extract_features
    from lt_bench.features.items import image_path
    from lt_bench.finetune.data import train_loader
    from lt_bench.finetune.losses import ClassPromptLoss, ClipTrainWrapper
    from lt_bench.models import create_model

    device = torch.device(dev)
    tmp = Path(tempfile.mkdtemp(prefix="ltb_gpu_check_in_"))
    n_cls = 10
    write_image_folder(tmp / "jpeg", per_class=max(1, a.input_images // n_cls), num_classes=n_cls, test_per_class=1)
    ds = load_dataset("folder", root=str(tmp / "jpeg"))
    n = len(ds.split("train"))
    torch.manual_seed(0)
    bundle = create_model(a.model, "none", device=dev)
    model = bundle.model
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    b, w = a.extract_batch, a.extract_workers
    s = bundle.info.image_size
    x = torch.randn(b, 3, s, s, device=device)
    autocast = amp_policy(device).autocast
    decodes = ["pil", "fast", "gpu"]
    rec.update(model=a.model, images=n, batch=b, workers=w, extract=[], finetune=[])

    def rate(fn, items: int) -> float:
        for _ in range(2):
            fn()
        sync(dev)
        it, t0 = 0, time.perf_counter()
        while it < 3 or time.perf_counter() - t0 < a.fwd_seconds:
            fn()
            sync(dev)
            it += 1
        return it * items / (time.perf_counter() - t0)

    def forward():
        with torch.inference_mode(), autocast():
            model.encode_image(x)

    rows_e, rows_f = [], []
    try:
        fwd = rate(forward, b)
        for decode in decodes:
            opts = ExtractOptions(splits=("train",), batch_size=b, workers=w, decode=decode, overwrite=True,
                                  progress=False)
            res = extract_features(tmp / "f.h5", ds, bundle, opts)
            rows_e.append([f"--decode {decode} ({resolve_decode(decode, device)})", res.images_per_s, fwd,
                           res.images_per_s / fwd])
            rec["extract"].append(dict(decode=decode, images_per_s=round(res.images_per_s, 1),
                                       forward_images_per_s=round(fwd, 1), ratio=round(res.images_per_s / fwd, 3)))
            say(f"gpu_check: input extract --decode {decode:5s} {res.images_per_s:9.1f} img/s, forward {fwd:9.1f}")
        # Phase A: steps of the class loss over all prompts, bf16 autocast, SGD
        tokens = bundle.tokenizer([f"a photo of a {c}." for c in ds.classnames]).to(device)
        wrapper = ClipTrainWrapper(model, tokens)
        loss_fn = ClassPromptLoss(100.0)
        opt = torch.optim.SGD([p for k, p in model.named_parameters() if k != "logit_scale"], lr=1e-5, momentum=0.9)
        train_autocast = amp_policy(device, "bf16" if device.type == "cuda" else None, training=True)[0]
        batch = min(a.batch_size, n)
        labels = torch.zeros(batch, dtype=torch.int64, device=device)

        def step(images, y):
            model.train()
            with train_autocast():
                img, txt, scale = wrapper(images, None)
                loss = loss_fn(img, txt, scale, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        xb = torch.randn(batch, 3, s, s, device=device)
        fwd_bwd = rate(lambda: step(xb, labels), batch)
        steps = max(2, min(a.steps, n // batch))
        for decode in decodes:
            path = image_path(bundle, resolve_decode(decode, device), device)
            loader, sampler, gen = train_loader(ds, range(n), path, True, batch, 0, 1, 0, a.workers, device)
            it = iter(loader)
            images, y, _ = next(it)  # workers started
            step(images, y.to(device))
            sync(dev)
            t0, done = time.perf_counter(), 0
            for images, y, _ in it:
                step(images, y.to(device))
                done += 1
                if done == steps:
                    break
            sync(dev)
            ips = done * batch / (time.perf_counter() - t0)
            rows_f.append([f"--decode {decode} ({path.decode})", ips, fwd_bwd, ips / fwd_bwd])
            rec["finetune"].append(dict(decode=decode, images_per_s=round(ips, 1),
                                        fwd_bwd_images_per_s=round(fwd_bwd, 1), ratio=round(ips / fwd_bwd, 3)))
            say(f"gpu_check: input finetune --decode {decode:5s} {ips:9.1f} img/s, fwd+bwd {fwd_bwd:9.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t1 = md_table(["extract path", "images/s", "forward-only images/s", "extract / forward"], rows_e)
    t2 = md_table(["Phase A path", "images/s", "fwd+bwd images/s", "step / fwd+bwd"], rows_f)
    return (f"### 5. input: {a.model} random init, {n:,} JPEG files 500 x 375 q90, batch {b} (extract) / "
            f"{a.batch_size} (Phase A), {w} / {a.workers} workers, {dev}\n\n{t1}\n\n{t2}\n\n"
            "Aims (issue 14): extraction >= 0.9 of forward-only, Phase A >= 0.8 of forward + backward "
            "with --decode gpu.")


def write_outputs(out_dir: Path | None, header: str, sections: list[str], record: dict) -> None:
    if out_dir is None:
        return
    from lt_bench.io import write_text  # atomic: a run killed half-way keeps the last complete tables

    write_text(out_dir / "gpu_check.md", header + "\n\n" + "\n\n".join(sections) + "\n")
    write_text(out_dir / "gpu_check.json", json.dumps(record, indent=1, default=str) + "\n")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes less)")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="check the script itself without a GPU: every part at tiny sizes on the CPU")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--out", default=None, help="write gpu_check.md and gpu_check.json here (default: env OUT)")
    ap.add_argument("--model", default=None, help="open_clip model for parts 1 and 2 (default ViT-B-16)")
    ap.add_argument("--batch-size", type=int, default=None, help="finetune batch size")
    ap.add_argument("--steps", type=int, default=None, help="finetune optimizer steps per run (one epoch)")
    ap.add_argument("--workers", type=int, default=None, help="finetune DataLoader workers")
    ap.add_argument("--run-timeout", type=int, default=300, help="seconds before one finetune run is stopped")
    ap.add_argument("--extract-images", type=int, default=None, help="synthetic images to extract")
    ap.add_argument("--extract-batch", type=int, default=None)
    ap.add_argument("--extract-workers", type=int, default=None)
    ap.add_argument("--image-size", type=int, default=None, help="synthetic image size for extract (224)")
    ap.add_argument("--input-images", type=int, default=None, help="JPEG files written for part 5 (input)")
    ap.add_argument("--fwd-seconds", type=float, default=None, help="time each forward-only reference this long")
    ap.add_argument("--n-train", type=int, default=None, help="cache train rows (parts 3, 4)")
    ap.add_argument("--n-test", type=int, default=None, help="cache test rows (part 4)")
    ap.add_argument("--dim", type=int, default=None)
    ap.add_argument("--classes", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None, help="ballad epochs")
    ap.add_argument("--head-batch", type=int, default=None)
    ap.add_argument("--k", type=int, default=None, help="kNN neighbours")
    ap.add_argument("--mm-seconds", type=float, default=None, help="time each matmul reference this long")
    ap.add_argument("--square", type=int, default=None, help="size of the square matmul reference")
    a = ap.parse_args(argv)
    preset = SIZES["smoke" if a.cpu_smoke else "quick" if a.quick else "default"]
    for k, v in preset.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    cpus = os.cpu_count() or 1
    if a.workers is None:
        a.workers = 0 if a.cpu_smoke else min(8, cpus)
    if a.extract_workers is None:
        a.extract_workers = 0 if a.cpu_smoke else max(1, min(12, cpus - 2))
    a.parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    bad = [p for p in a.parts if p not in PARTS]
    if bad:
        ap.error(f"unknown part(s) {', '.join(bad)}; known: {', '.join(PARTS)}")
    a.out = a.out or os.environ.get("OUT") or None
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
    except Exception as e:
        say(f"gpu_check: torch is not importable by {sys.executable} ({type(e).__name__}: {e}); nothing measured. "
            "Install torch (see the top of benchmarks/gpu_check.sh: wheels in .whl/).")
        return 2
    if a.cpu_smoke:
        dev, n_gpu = "cpu", 0
    elif not torch.cuda.is_available():
        say("gpu_check: torch sees no CUDA GPU here; nothing to check (run this on a GPU machine, or --cpu-smoke)")
        return 0
    else:
        dev, n_gpu = "cuda", torch.cuda.device_count()

    t_start = time.perf_counter()
    env = environment(dev)
    missing = sorted(m for m, v in env["modules"].items() if v.startswith("MISSING") and m not in OPTIONAL)
    header = (f"## lt_bench gpu_check ({'CPU smoke' if a.cpu_smoke else 'quick' if a.quick else 'default sizes'})\n\n"
              f"GPU: {env.get('gpu')}" + (f" x {env.get('gpu_count')}, {env.get('gpu_memory_gb')} GiB, capability "
                                          f"{env.get('capability')}, driver {env.get('driver')}" if dev == "cuda" else "")
              + f"; torch {env['torch']} (CUDA {env['torch_cuda']}, cuDNN {env['cudnn']}); Python {env['python']}; "
              f"{env['cpu_count']} CPUs\n\nmodules: " + ", ".join(f"{k} {v}" for k, v in env["modules"].items()))
    say(header)
    if missing:
        say(f"gpu_check: MISSING modules: {', '.join(missing)} (parts that need them are skipped)")
    record = {"env": env, "mode": "cpu-smoke" if a.cpu_smoke else "quick" if a.quick else "default",
              "sizes": {k: getattr(a, k) for k in SIZES["default"]} | {"workers": a.workers,
                                                                       "extract_workers": a.extract_workers},
              "parts": {}}
    out_dir = Path(a.out) if a.out else None
    sections: list[str] = []
    write_outputs(out_dir, header, sections, record)
    tmp = Path(tempfile.mkdtemp(prefix="ltb_gpu_check_"))
    cache = CacheHolder(a, tmp)
    failed = []
    try:
        for part in a.parts:
            rec = {"status": "running"}
            record["parts"][part] = rec
            need = [m for m in NEEDS[part] if m in missing]
            t0 = time.perf_counter()
            say(f"\ngpu_check: -- part {part} --")
            try:
                if need:
                    raise RuntimeError(f"missing module(s) {', '.join(need)}")
                if part == "finetune":
                    text = part_finetune(a, dev, n_gpu, rec)
                elif part == "extract":
                    text = part_extract(a, dev, rec)
                elif part == "input":
                    text = part_input(a, dev, rec)
                elif part == "heads":
                    text = part_heads(a, dev, cache, rec)
                else:
                    text = part_faiss(a, dev, cache, rec)
                rec["status"] = "ok"
            except Exception as e:  # one part's failure must not stop the others
                line = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                failed.append(part)
                rec.update(status="failed", error=line)
                say(f"gpu_check: {part} FAILED: {line}")
                if not isinstance(e, PartError) and not need:
                    traceback.print_exc(file=sys.stderr)
                text = getattr(e, "table", f"### {part}\n\nFAILED: {line}")
                if isinstance(e, PartError):
                    text += f"\n\nFAILED: {line}"
            finally:
                if dev == "cuda":
                    torch.cuda.empty_cache()
            rec["seconds"] = round(time.perf_counter() - t0, 1)
            sections.append(text)
            say("\n" + text + "\n")
            write_outputs(out_dir, header, sections, record)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - t_start
    record["total_seconds"] = round(total, 1)
    summary = (f"gpu_check: {len(a.parts) - len(failed)}/{len(a.parts)} parts ok"
               + (f", FAILED: {', '.join(failed)}" if failed else "") + f"; {total:.0f} s in all")
    sections.append(summary)
    write_outputs(out_dir, header, sections, record)
    say(summary + (f"; tables in {out_dir / 'gpu_check.md'}" if out_dir else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
