"""HEAD.pt: a trained head with what made it. Loads with ``torch.load(weights_only=True)``.

    {"format": "lt_bench.head", "format_version": 1, "head": NAME, "config": JSON string,
     "seed": int, "state_dict": {name: tensor}, "cache": FeatureCache.provenance() (primitives),
     "num_classes": C, "dim": D, "final_loss": float, "lt_bench_version": str, "created": ISO,
     "environment": provenance.environment() (versions, the device it was trained on),
     "selected_epoch": int (0 = untrained), "selection": "best-val" | "last",
     "val_acc": [per-epoch val top-1 %] or None, "epoch_lr": [per-epoch learning rate],
     "base": {"path", "config", "created"} (lws with `adapt --base` only: the linear head it scales)}

A head file written before ``schedule`` / ``select`` existed (its config lacks them) was trained
with the per-step cosine, the with-replacement class-aware draw and the last epoch; ``load_head``
reports its config that way (``class_aware_replace``, ``cosine``, ``last``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import __version__
from ..errors import LTBenchError
from ..features.cache import check_same_identity
from ..io import save_torch
from ..provenance import environment, now_iso
from .registry import create_head, get_head_spec
from .train import TrainConfig, TrainResult, head_options

HEAD_FORMAT = "lt_bench.head"
HEAD_FORMAT_VERSION = 1


def _primitive(d: dict) -> dict:
    # numpy scalars from HDF5 attributes -> plain python, so weights_only loading accepts them
    return json.loads(json.dumps(d, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _upgrade_config(cfg: dict) -> dict:
    # A config from before `schedule` existed describes what that code did (see the docstring).
    if "schedule" not in cfg:
        cfg = dict(cfg, schedule="cosine", select="last")
        if cfg.get("sampler") == "class_aware":
            cfg["sampler"] = "class_aware_replace"
    return cfg


def save_head(path: str | Path, result: TrainResult, provenance: dict, device=None, extra: dict | None = None) -> Path:
    """Write HEAD.pt atomically.

    Args:
        path: the file.
        result: ``train_head``'s result.
        provenance: the cache's ``FeatureCache.provenance()``.
        device: where the head was trained; default: where its weights are.
        extra: more entries (primitives), e.g. ``base``: the head an ``lws`` head scales.
    """
    head = result.head
    if device is None:
        device = next(iter(head.state_dict().values()), torch.empty(0)).device
    sd = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    c, d = (head.classifier.shape if hasattr(head, "classifier") else
            head.weight.shape if hasattr(head, "weight") else head.fc.weight.shape)
    obj = {"format": HEAD_FORMAT, "format_version": HEAD_FORMAT_VERSION, "head": result.config.head,
           "config": json.dumps(result.config.to_dict(), sort_keys=True), "seed": int(result.config.seed),
           "state_dict": sd, "cache": _primitive(provenance), "num_classes": int(c), "dim": int(d),
           "final_loss": float(result.final_loss), "lt_bench_version": __version__, "created": now_iso(),
           "environment": environment(device),
           "selected_epoch": int(result.selected_epoch), "selection": result.selection,
           "val_acc": None if result.val_acc is None else [float(a) for a in result.val_acc],
           "epoch_lr": [float(x) for x in result.epoch_lr], **_primitive(extra or {})}
    save_torch(path, obj)
    return Path(path)


def load_head(path: str | Path, provenance: dict | None = None, device: str | torch.device = "cpu"):
    """Load HEAD.pt; with ``provenance`` (the cache's), refuse a head made on another cache.

    Returns:
        (module in eval mode, record dict with ``config`` decoded to a dict).
    """
    path = Path(path)
    if not path.is_file():
        raise LTBenchError(f"no head file at {path}: train one with `ltbench adapt FEATURES.h5 --out {path}`")
    try:
        rec = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not our file"
        raise LTBenchError(f"{path} is not a head file written by `ltbench adapt` ({type(e).__name__})") from None
    if not isinstance(rec, dict) or rec.get("format") != HEAD_FORMAT:
        raise LTBenchError(f"{path} is not a head file written by `ltbench adapt`")
    if int(rec.get("format_version", -1)) != HEAD_FORMAT_VERSION:
        raise LTBenchError(f"{path} has head format version {rec.get('format_version')}; retrain it with this lt_bench")
    if provenance is not None:
        check_same_identity(rec["cache"], provenance, what="head")
    cfg = TrainConfig(**_upgrade_config(json.loads(rec["config"])))
    get_head_spec(rec["head"], kind="trained")
    sd = rec["state_dict"]
    text = sd.get("classifier", sd.get("weight", torch.zeros(rec["num_classes"], rec["dim"])))
    head = create_head(rec["head"], num_classes=rec["num_classes"], dim=rec["dim"], text_classifier=text,
                       **head_options(cfg))
    try:
        head.load_state_dict(sd)
    except RuntimeError as e:  # the recorded num_classes / dim disagree with the weights
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = lines[1] if len(lines) > 1 else (lines[0] if lines else type(e).__name__)
        raise LTBenchError(f"{path} is inconsistent: its weights do not fit its recorded num_classes "
                           f"{rec['num_classes']} and dim {rec['dim']} ({why[:200]}): retrain it with "
                           "`ltbench adapt`") from None
    head.to(device).eval()
    rec = dict(rec, config=cfg.to_dict())
    return head, rec
