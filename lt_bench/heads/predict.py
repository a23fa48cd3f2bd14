"""Logits of a trained head (HEAD.pt) or a baseline on one split of a cache: what `eval` scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..device import resolve_device, seed_everything
from ..errors import LTBenchError
from ..provenance import device_label
from .checkpoint import load_head
from .registry import create_head, get_head_spec


@dataclass
class Prediction:
    logits: np.ndarray  # (N, C) float32
    labels: np.ndarray  # (N,) int64
    head: str  # head or baseline name
    kind: str  # "trained" | "baseline"
    config: dict  # the head's training config, or the baseline's options
    head_path: str | None = None
    device: str | None = None  # where the logits were computed (provenance.device_label), for the result


def module_logits(module: torch.nn.Module, x: np.ndarray, num_classes: int, device: torch.device,
                  batch: int = 16384) -> np.ndarray:
    """(N, C) float32 logits of a head module on features ``x`` (any float dtype), in batches
    whose (batch, C) outputs stay near 128 MB whatever C (8,142 iNaturalist classes: 4,096 rows)."""
    out = np.empty((len(x), num_classes), dtype=np.float32)
    batch = max(256, min(batch, (1 << 25) // max(num_classes, 1)))
    with torch.no_grad():
        for s in range(0, len(x), batch):
            xb = torch.as_tensor(np.asarray(x[s:s + batch]), dtype=torch.float32)
            out[s:s + batch] = module(xb.to(device)).float().cpu().numpy()
    return out


def trained_logits(cache, head_path: str | Path, split: str = "test", device: str = "auto",
                   batch: int = 16384, **posthoc) -> Prediction:
    """Load HEAD.pt (refusing one made on another cache) and score ``split``.

    ``posthoc``: the steps of ``posthoc.apply_posthoc`` (``tau_norm``, ``ensemble``,
    ``tip_alpha``, ``tip_beta``; None: off); the ones set are added to the returned config.
    """
    from .posthoc import apply_posthoc

    dev = resolve_device(device)
    head, rec = load_head(head_path, provenance=cache.provenance(), device=dev)
    steps = {k: float(v) for k, v in posthoc.items() if v is not None}
    head = apply_posthoc(head, cache.text_classifier, **steps).to(dev)
    out = module_logits(head, cache.features(split), cache.num_classes, dev, batch)
    return Prediction(out, cache.labels(split), rec["head"], "trained", {**rec["config"], **steps}, str(head_path),
                      device=device_label(dev))


def baseline_options(name: str, **options) -> dict:
    """Baseline ``name``'s options: its registered defaults, overridden by the ``options`` it
    takes (others are ignored; None means default). What a result records as its ``config``."""
    spec = get_head_spec(name, kind="baseline")
    opts = dict(spec.defaults)
    opts.update({k: v for k, v in options.items() if k in spec.defaults and v is not None})
    return opts


def baseline_logits(cache, name: str, split: str = "test", device: str = "auto", seed: int = 0,
                    **options) -> Prediction:
    """Fit baseline ``name`` on the cache's train split when it needs one, and score ``split``
    (``options``: see ``baseline_options``)."""
    spec = get_head_spec(name, kind="baseline")
    seed_everything(seed)
    opts = baseline_options(name, **options)
    resolve_device(device)  # refuse --device cuda without CUDA, as every command does
    base = create_head(name, text_classifier=cache.text_classifier, device=device, seed=seed, **opts)
    if spec.needs_train:
        if "train" not in cache.splits:
            raise LTBenchError(f"baseline {name!r} needs the train split, and {cache.path} has none "
                               f"(it has: {', '.join(cache.splits) or 'none'}): extract it with `--splits train`")
        aug = {"aug": cache.aug_features("train")} if getattr(base, "uses_views", False) else {}
        base.fit(cache.stored_features("train"), cache.labels("train"), **aug)  # float16: fit converts by chunk
    x = cache.features(split)
    # FAISS baselines put their index on GPU 0 or keep it on CPU (faiss_backend); zero-shot is numpy
    where = device_label("cuda:0") if getattr(base, "backend", "cpu") == "gpu" else "cpu"
    return Prediction(base.logits(x), cache.labels(split), name, "baseline", opts, device=where)
