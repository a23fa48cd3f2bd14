"""Train a head on cached features (Phase B): the whole train set in memory, steps are tensor ops.

The train set lives on the chosen device as one float32 tensor ((N, D), or (N*V, D) when the
cache has augmented views; each drawn sample then takes one of its V views at random). An epoch
is ``max(1, N // batch)`` steps; its indices come from the sampler in one vectorised draw (the
sampler object lives for the whole run: ``class_aware`` keeps its cycles across epochs), and a
step is an ``index_select`` plus the head's matrix products. SGD with momentum and weight decay,
learning rate cosine-annealed per step to 0 over the run.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..device import resolve_device, seed_everything
from ..errors import LTBenchError
from ..log import get_logger
from .losses import LOSSES, make_loss
from .registry import create_head, get_head_spec
from .samplers import SAMPLERS, make_sampler

log = get_logger(__name__)


@dataclass
class TrainConfig:
    """A head's training recipe; ``resolve_config`` fills unset fields from the head's defaults."""

    head: str = "ballad"  # registered trained head
    loss: str = "ce"  # ce | logit_adjusted | balanced_softmax
    tau: float = 1.0  # logit-adjustment strength (logit_adjusted only)
    sampler: str = "class_aware"  # instance | class_aware (the reference's cycles) | class_aware_replace | sqrt
    k_per_class: int = 4  # images per class visit (class_aware)
    epochs: int = 10  # passes of len(train) // batch steps
    batch_size: int = 512  # images per step
    lr: float = 0.2  # SGD peak learning rate, cosine to 0
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # SGD weight decay
    alpha: float = 0.2  # BALLAD residual ratio (ballad only)
    scale: float = 100.0  # logit scale
    views: bool = True  # train on cached augmented views when the cache has them
    seed: int = 0  # same seed, same head (bit for bit on CPU)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_config(head: str, seed: int = 0, **overrides) -> TrainConfig:
    """The head's defaults, overridden by every non-None value in ``overrides``."""
    spec = get_head_spec(head, kind="trained")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise LTBenchError(f"unknown training option(s) {', '.join(sorted(unknown))}")
    values = {k: v for k, v in spec.defaults.items() if k in fields}
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = TrainConfig(head=head, seed=seed, **{k: v for k, v in values.items() if k not in ("head", "seed")})
    if cfg.loss not in LOSSES:
        raise LTBenchError(f"unknown loss {cfg.loss!r}; known: {', '.join(LOSSES)}")
    if cfg.sampler not in SAMPLERS:
        raise LTBenchError(f"unknown sampler {cfg.sampler!r}; known: {', '.join(SAMPLERS)}")
    for name in ("epochs", "batch_size", "k_per_class"):
        if getattr(cfg, name) < 1:
            raise LTBenchError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(cfg, name)}")
    if cfg.lr <= 0:
        raise LTBenchError(f"--lr must be positive, not {cfg.lr}")
    return cfg


@dataclass
class TrainResult:
    head: torch.nn.Module
    config: TrainConfig
    final_loss: float
    losses: list  # mean loss of each epoch
    steps: int
    seconds: float


def train_on_arrays(features, labels, train_counts, text_classifier, config: TrainConfig,
                    aug_features=None, device: str | torch.device = "cpu") -> TrainResult:
    """Train ``config.head`` on in-memory arrays (the library core of `ltbench adapt`).

    Args:
        features: (N, D) center-view train features (numpy or torch, any float dtype); may be
            None when ``aug_features`` are given and ``config.views`` is on.
        labels: (N,) int labels.
        train_counts: (C,) training images per class (the prior of the adjusted losses).
        text_classifier: (C, D) normalised text embeddings.
        config: the resolved recipe.
        aug_features: optional (N, V, D) augmented views; used when ``config.views``.
        device: torch device (a string is resolved by ``resolve_device``).
    """
    dev = resolve_device(device) if isinstance(device, str) else device
    gen = seed_everything(config.seed)
    labels_np = np.asarray(labels, dtype=np.int64)
    n = len(labels_np)
    if n == 0:
        raise LTBenchError("the train split is empty: a trained head needs training images")
    c, d = np.asarray(text_classifier).shape
    use_views = bool(config.views) and aug_features is not None
    if features is None and not use_views:
        raise ValueError("features=None needs aug_features and config.views")
    if use_views:
        aug = torch.as_tensor(aug_features)
        v = aug.shape[1]
        source = aug.reshape(n * v, d).to(dev, torch.float32)
    else:
        v = 0
        source = torch.as_tensor(features).to(dev, torch.float32)
    if source.shape[-1] != d:
        raise LTBenchError(f"train features have dimension {source.shape[-1]} but the text classifier {d}")
    source = source.contiguous()
    y = torch.as_tensor(labels_np, device=dev)
    head = create_head(config.head, num_classes=c, dim=d, text_classifier=text_classifier,
                       alpha=config.alpha, scale=config.scale).to(dev)
    head.train()
    loss_fn = make_loss(config.loss, train_counts, config.tau, dev)
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    steps = max(1, n // config.batch_size)
    total = steps * config.epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
    b = config.batch_size
    sampler = make_sampler(config.sampler, labels_np, gen, config.k_per_class, c)
    log.info("training %s on %d images%s, %d classes, dim %d: %d epochs x %d steps of %d, %s loss, %s sampler, "
             "device %s", config.head, n, f" x {v} views" if v else "", c, d, config.epochs, steps, b,
             config.loss, config.sampler, dev)
    t0 = time.perf_counter()
    losses = []
    for epoch in range(config.epochs):
        idx = sampler.draw(steps * b)
        rows = idx * v + torch.randint(v, (len(idx),), generator=gen) if v else idx
        idx, rows = idx.to(dev), rows.to(dev)
        running = torch.zeros((), device=dev)
        for s in range(steps):
            sl = slice(s * b, (s + 1) * b)
            xb = source.index_select(0, rows[sl])
            loss = loss_fn(head(xb), y.index_select(0, idx[sl]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.detach()
        losses.append(float(running) / steps)
        if not np.isfinite(losses[-1]):
            raise LTBenchError(f"training diverged (loss {losses[-1]}) in epoch {epoch + 1}: lower --lr")
        log.info("epoch %d/%d  loss %.4f  (%.1f s)", epoch + 1, config.epochs, losses[-1], time.perf_counter() - t0)
    head.eval()
    seconds = time.perf_counter() - t0
    log.info("trained %s: final loss %.4f, %d steps in %.1f s", config.head, losses[-1], total, seconds)
    return TrainResult(head, config, losses[-1], losses, total, seconds)


def train_head(cache, config: TrainConfig, device: str | torch.device = "auto", split: str = "train") -> TrainResult:
    """Train ``config.head`` on the ``split`` of a FeatureCache."""
    labels = cache.labels(split)  # raises CacheError when missing or incomplete
    aug = cache.aug_features(split) if config.views else None
    feats = cache.features(split) if aug is None else None  # the center view is unused when views are
    return train_on_arrays(feats, labels, cache.train_counts, cache.text_classifier, config,
                           aug_features=aug, device=device)
