"""Phase A checkpoints and the run directory.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so that it loads
with ``torch.load(weights_only=True)``: by ``ltbench extract --pretrained RUN_DIR/best.pt``
(``lt_bench.models.create_model`` -> ``open_clip.load_checkpoint``), by open_clip itself, and
by ``--resume``::

    state_dict        model weights, no "module." prefix, on CPU
    epoch             epochs completed
    optimizer, scheduler, scaler    resume state (None in best.pt: it is for extraction)
    rng               torch / cuda / python / numpy RNG states as tensors and lists
    config            the resolved FinetuneConfig as a JSON string
    model, pretrained, dataset, dataset_options, classnames    what made the weights
    arch              the network the weights were trained in (``lt_bench.models.architecture``:
                      model, quick_gelu, image_size, model_cfg, preprocess_cfg); ``create_model``
                      rebuilds exactly this from the file and refuses a --model that contradicts it
    best_val, history (one dict per completed epoch: the lines of metrics.jsonl)
    lt_bench_version, created
    environment       provenance.environment(): versions and the device rank 0 trained on

``last.pt`` is rewritten atomically after every epoch, ``best.pt`` when validation improves;
``metrics.jsonl`` is rewritten atomically from the checkpoint's history, so a resumed run
neither loses nor duplicates lines.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import LTBenchError
from ..io import save_torch, write_text
from ..models import architecture
from ..provenance import environment, now_iso

LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.toml"
RUN_FILES = (LAST, BEST, METRICS, CONFIG)


def rng_state() -> dict:
    """Every RNG this process uses, as plain tensors and lists."""
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    out = {
        "torch": torch.get_rng_state(),
        "python": [int(version), [int(x) for x in state], gauss],
        "numpy": [str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                  float(cached)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, st, gauss = state["python"]
    random.setstate((version, tuple(st), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cpu_state_dict(model: torch.nn.Module) -> dict:
    return {k.removeprefix("module."): v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _device_of(model: torch.nn.Module):
    p = next(model.parameters(), None)
    return None if p is None else p.device


def make_checkpoint(*, model, cfg, epoch: int, best_val: float, history: list[dict], classnames,
                    dataset_options: dict, optimizer=None, scheduler=None, scaler=None, device=None) -> dict:
    """The checkpoint dict (keys in the module docstring); ``device`` defaults to the model's."""
    return {
        "state_dict": cpu_state_dict(model),
        "epoch": int(epoch),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "config": cfg.to_json(),
        "model": cfg.model,
        "pretrained": str(cfg.pretrained),
        "arch": architecture(cfg.model, model),
        "dataset": cfg.dataset,
        "dataset_options": json.loads(json.dumps(dataset_options, default=str)),
        "classnames": list(classnames),
        "best_val": float(best_val),
        "history": [dict(h) for h in history],
        "lt_bench_version": __version__,
        "created": now_iso(),
        "environment": environment(device if device is not None else _device_of(model)),
    }


def save_checkpoint(path: Path, ckpt: dict) -> None:
    save_torch(path, ckpt)


def load_checkpoint(path: Path) -> dict:
    """Read a Phase A checkpoint (weights_only: nothing but tensors and plain values)."""
    path = Path(path)
    if not path.is_file():
        raise LTBenchError(f"no checkpoint at {path}: nothing to resume; start the run without --resume")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise LTBenchError(f"cannot read checkpoint {path} ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                           "start over with --overwrite") from None
    missing = ([k for k in ("state_dict", "epoch", "optimizer", "model", "dataset", "config") if k not in ckpt]
               if isinstance(ckpt, dict) else ["everything: it is not a dict"])
    if missing:
        raise LTBenchError(f"{path} is not an lt_bench finetune checkpoint (lacks {', '.join(missing)}); "
                           "start over with --overwrite")
    return ckpt


def check_resume(ckpt: dict, cfg, path: Path) -> None:
    """Refuse to resume a checkpoint made with another model or dataset."""
    for key, ours in (("model", cfg.model), ("dataset", cfg.dataset)):
        if ckpt[key] != ours:
            raise LTBenchError(f"{path} was trained with --{key} {ckpt[key]} but this run asks for --{key} {ours}: "
                               f"resume with --{key} {ckpt[key]}, or use another --out")
    if ckpt["optimizer"] is None:
        raise LTBenchError(f"{path} holds no optimizer state (a best.pt?); resume from a last.pt")
    _warn_changed(ckpt, cfg, path)
    if int(ckpt["epoch"]) > cfg.epochs:
        raise LTBenchError(f"{path} has already completed {ckpt['epoch']} epochs, more than --epochs {cfg.epochs}; "
                           f"ask for at least {ckpt['epoch']} epochs")


# Settings that may change on resume without changing what the run is (where it runs, how fast).
_RUN_ONLY = {"resume", "overwrite", "device", "workers", "out"}


def _warn_changed(ckpt: dict, cfg, path: Path) -> None:
    """Log the training settings that differ from the checkpoint's (allowed, but said)."""
    try:
        old = json.loads(ckpt["config"])
    except (TypeError, ValueError):
        return
    new = json.loads(cfg.to_json())
    changed = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in sorted(new)
               if k in old and k not in _RUN_ONLY and old[k] != new[k]]
    if changed:
        from ..log import get_logger

        get_logger(__name__).warning("resuming %s with changed settings (%s)", path, "; ".join(changed))


def check_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """RUN_DIR must be new, or explicitly resumed or overwritten."""
    if resume:
        if not (out / LAST).is_file():
            raise LTBenchError(f"--resume: no {out / LAST} to continue; run without --resume to start this run")
        return
    # a run killed before its first checkpoint left only its config.toml: nothing to lose
    held = [f for f in (LAST, BEST) if (out / f).exists()]
    if held and not overwrite:
        raise LTBenchError(f"{out} already holds a run ({', '.join(held)}): pass --resume to continue it, "
                           "--overwrite to replace it, or choose another --out")


def write_metrics(out: Path, history: list[dict]) -> None:
    write_text(out / METRICS, "".join(json.dumps(h) + "\n" for h in history))
