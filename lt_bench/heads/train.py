"""Train a head on cached features (Phase B): the whole train set in memory, steps are tensor ops.

The train set lives on the chosen device as one tensor in the dtype it was read in (float16 from
a cache: half the memory of float32; a step casts its batch to float32): the (N, D) center
views or, when the cache has augmented views and ``views`` is on, all images' views (M, D)
with their offsets (N + 1): a drawn sample i takes view ``offsets[i] + floor(u * count[i])``,
u uniform in [0, 1), one of its own views uniformly, whatever each image's count (cache format
v2's ragged views; a v1 cache's V views per image are the case ``offsets = V * i``). An epoch
is ``int(N / batch)`` steps, as the reference's ``epoch_steps`` (train.py, lines 88-90), but at
least 1: with N < batch the reference trains no step at all and keeps the adapter's random init;
lt_bench takes one step of ``batch`` sampled images instead and logs that it does. An epoch's
indices come from the sampler in one vectorised draw (the sampler object lives for the whole
run), and a step is an ``index_select`` plus the head's matrix products. SGD with momentum and
weight decay (``optimizer``: or AdamW); ``drw`` sets the loss's class weights per epoch
(LDAM-DRW). ``lws`` and ``tip_adapter_f`` start from the data (``stages.py``). Learning-rate
schedules (``schedule``):

- ``reference``: BALLAD's released code (train.py, lines 173-178 and 274):
  ``CosineAnnealingLR(T_max=epochs)`` stepped once per epoch *before* the epoch, so the rate is
  constant within an epoch and the last epoch trains at 0 (lr 0.2, 10 epochs: 0.1951, 0.1809,
  ..., 0.0049, 0.0).
- ``cosine``: cosine-annealed per step from ``lr`` to 0 over the run.

After each epoch the head is scored on the validation features when given (the cache's val
split): top-1 over the split, one forward pass (for ``ballad`` two matrix products). ``select``
says which epoch's head is returned: ``best-val`` (the reference's documented test path,
``test.yaml`` loading the checkpoint kept at train.py, lines 374-382: the first epoch with the
highest val accuracy; if no epoch beats 0 the untrained head, "epoch 0", as the reference) or
``last``. ``best-val`` without validation features falls back to ``last`` and logs it.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..device import resolve_device, seed_everything
from ..errors import LTBenchError
from ..log import get_logger
from ..options import check_options
from .config import TrainConfig
from .losses import drw_weights, make_loss
from .registry import create_head, get_head_spec
from .samplers import make_sampler

log = get_logger(__name__)

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
    check_options(cfg)
    return cfg


@dataclass
class TrainResult:
    head: torch.nn.Module  # the selected epoch's head (``config.select``)
    config: TrainConfig
    final_loss: float  # mean loss of the last epoch
    losses: list  # mean loss of each epoch
    steps: int
    seconds: float
    epoch_lr: list = field(default_factory=list)  # learning rate at the first step of each epoch
    val_acc: list | None = None  # val top-1 (%) after each epoch; None without validation features
    selected_epoch: int = 0  # the epoch whose head is returned (1-based; 0 = the untrained head)
    selection: str = "last"  # how it was chosen: "best-val" or "last" (also when best-val had no val split)


def reference_epoch_lrs(lr: float, epochs: int) -> list[float]:
    """Each epoch's learning rate under the reference's schedule, from torch's own scheduler.

    BALLAD's train.py builds ``CosineAnnealingLR(optimizer, num_epochs, eta_min=0)`` (lines
    173-178) and calls ``scheduler.step()`` at the top of every epoch (line 274); torch's
    recursive form gives the rates bit for bit as the reference's run does.
    """
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=0.0)
    out = []
    with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": the reference's order
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(epochs):
            sched.step()
            out.append(opt.param_groups[0]["lr"])
    return out


@torch.no_grad()
def _top1(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 16384) -> float:
    hits = sum(int((head(x[s:s + batch]).argmax(1) == y[s:s + batch]).sum()) for s in range(0, len(x), batch))
    return 100.0 * hits / len(x)


def train_on_arrays(features, labels, train_counts, text_classifier, config: TrainConfig,
                    aug_features=None, device: str | torch.device = "cpu", val=None, base=None) -> TrainResult:
    """Train ``config.head`` on in-memory arrays (the library core of `ltbench adapt`).

    Args:
        features: (N, D) center-view train features (numpy or torch, any float dtype); may be
            None when ``aug_features`` are given and ``config.views`` is on.
        labels: (N,) int labels.
        train_counts: (C,) training images per class (the prior of the adjusted losses).
        text_classifier: (C, D) normalised text embeddings.
        config: the resolved recipe.
        aug_features: optional augmented views, used when ``config.views``: ``(rows (M, D),
            offsets (N + 1,))`` (``FeatureCache.aug_features``; image i's views are
            ``rows[offsets[i]:offsets[i + 1]]``, every image needs one) or an (N, V, D) array.
        device: torch device (a string is resolved by ``resolve_device``).
        val: optional ``(features (M, D), labels (M,))`` scored after every epoch; with
            ``config.select == "best-val"`` the best epoch's head is returned.
        base: ``lws`` only: the trained linear head to scale (default: trained first, ``stages.py``).
    """
    from .stages import prepare_head

    dev = resolve_device(device) if isinstance(device, str) else device
    # heads that start from the data (lws, tip_adapter_f) are built first, before this run's seed
    prepared, features, labels, aug_features = prepare_head(config, features, labels, aug_features, train_counts,
                                                            text_classifier, dev, val, base)
    gen = seed_everything(config.seed)
    labels_np = np.asarray(labels, dtype=np.int64)
    n = len(labels_np)
    if n == 0:
        raise LTBenchError("the train split is empty: a trained head needs training images")
    c, d = np.asarray(text_classifier).shape
    use_views = bool(config.views) and aug_features is not None
    if features is None and not use_views:
        raise ValueError("features=None needs aug_features and config.views")
    offsets = count = None
    if use_views:
        rows, offsets = _ragged(aug_features, n)
        count = offsets[1:] - offsets[:-1]
        if bool((count < 1).any()):
            raise LTBenchError(f"{int((count < 1).sum())} train images have no augmented view: train with --no-views, "
                               "or re-extract with --views or --view-budget")
    source = _stored(rows if use_views else features, dev)
    if source.shape[-1] != d:
        raise LTBenchError(f"train features have dimension {source.shape[-1]} but the text classifier {d}")
    source = source.contiguous()
    y = torch.as_tensor(labels_np, device=dev)
    if val is not None:
        xv = torch.as_tensor(np.asarray(val[0])).to(dev, torch.float32)
        yv = torch.as_tensor(np.asarray(val[1], dtype=np.int64), device=dev)
        if len(yv) == 0:
            val = None
        elif xv.shape[-1] != d:
            raise LTBenchError(f"val features have dimension {xv.shape[-1]} but the text classifier {d}")
    selection = config.select
    if selection == "best-val" and val is None:
        log.info("select best-val: no val split to score the epochs on, so the last epoch's head is kept")
        selection = "last"
    head = prepared if prepared is not None else create_head(config.head, num_classes=c, dim=d,
                                                             text_classifier=text_classifier, **head_options(config))
    head = head.to(dev)
    head.train()
    loss_fn = make_loss(config.loss, train_counts, config.tau, dev, scale=config.scale)
    params = [p for p in head.parameters() if p.requires_grad]
    opt = make_optimizer(config, params)
    b = config.batch_size
    steps = max(1, n // b)
    if n < b:
        log.warning("%d train images < batch %d: one step of %d sampled images per epoch (the reference, whose "
                    "epoch is int(N / batch) steps, would train none)", n, b, b)
    total = steps * config.epochs
    if config.schedule == "reference":
        epoch_lrs, sched = reference_epoch_lrs(config.lr, config.epochs), None
    else:
        epoch_lrs, sched = None, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
    sampler = make_sampler(config.sampler, labels_np, gen, config.k_per_class, c)
    views = (f" with {len(source)} augmented views ({int(count.min())}..{int(count.max())} per image)"
             if use_views else "")
    log.info("training %s on %d images%s, %d classes, dim %d: %d epochs x %d steps of %d, %s loss, %s sampler, "
             "%s schedule, select %s, device %s", config.head, n, views, c, d, config.epochs,
             steps, b, config.loss, config.sampler, config.schedule, selection, dev)
    t0 = time.perf_counter()
    losses, lrs, val_acc = [], [], ([] if val is not None else None)
    best_acc, best_epoch, best_state = 0.0, 0, None
    if selection == "best-val":  # the reference keeps the untrained head until an epoch beats 0 % (train.py:256-262)
        best_state = copy.deepcopy(head.state_dict())
    for epoch in range(config.epochs):
        if epoch_lrs is not None:
            for group in opt.param_groups:
                group["lr"] = epoch_lrs[epoch]
        lrs.append(opt.param_groups[0]["lr"])
        if config.drw:  # LDAM-DRW's deferred re-weighting: class-balanced weights from 80 % of the epochs
            w = drw_weights(train_counts, epoch, config.epochs)
            loss_fn.weight = None if w is None else torch.as_tensor(w, dtype=torch.float32, device=dev)
        idx = sampler.draw(steps * b)
        rows = _draw_views(idx, offsets, count, gen) if use_views else idx
        yb_all, rows = y.index_select(0, idx.to(dev)), rows.to(dev)  # the epoch's labels in one gather
        running = torch.zeros((), device=dev)
        for s in range(steps):
            sl = slice(s * b, (s + 1) * b)
            xb = source.index_select(0, rows[sl]).float()
            loss = loss_fn(head(xb), yb_all[sl])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            running += loss.detach()
        losses.append(float(running) / steps)
        if not np.isfinite(losses[-1]):
            raise LTBenchError(f"training diverged (loss {losses[-1]}) in epoch {epoch + 1}: lower --lr")
        msg = ""
        if val is not None:
            val_acc.append(_top1(head, xv, yv))
            msg = f"  val {val_acc[-1]:.2f}%"
            if selection == "best-val" and val_acc[-1] > best_acc:  # strictly better: ties keep the earlier
                best_acc, best_epoch = val_acc[-1], epoch + 1
                best_state = copy.deepcopy(head.state_dict())
                msg += " (best)"
        log.info("epoch %d/%d  lr %.4g  loss %.4f%s  (%.1f s)", epoch + 1, config.epochs, lrs[-1], losses[-1], msg,
                 time.perf_counter() - t0)
    if selection == "best-val":
        head.load_state_dict(best_state)
        selected = best_epoch
    else:
        selected = config.epochs
    head.eval()
    seconds = time.perf_counter() - t0
    log.info("trained %s: final loss %.4f, %d steps in %.1f s; kept epoch %d (%s%s)", config.head, losses[-1], total,
             seconds, selected, selection, f", val {best_acc:.2f}%" if selection == "best-val" else "")
    return TrainResult(head, config, losses[-1], losses, total, seconds, lrs, val_acc, selected, selection)


def head_options(config: TrainConfig) -> dict:
    """The recipe options that shape a head module (each factory takes those it uses)."""
    return {"alpha": config.alpha, "scale": config.scale, "tip_alpha": config.tip_alpha, "tip_beta": config.tip_beta}


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """SGD with momentum, or AdamW with eps 1e-4 (Tip-Adapter-F's, ``main.py:72``)."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, eps=1e-4, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def _stored(x, dev: torch.device) -> torch.Tensor:
    """``x`` on ``dev`` in the dtype it was read in (float16 from a cache; float64 and integers as
    float32): the whole train set is never converted, each step converts its batch."""
    t = torch.as_tensor(x).to(dev)
    return t if t.is_floating_point() and t.dtype != torch.float64 else t.to(torch.float32)


def _ragged(aug, n: int) -> tuple:
    """(rows (M, D), offsets (N + 1,) int64 CPU tensor) of ``(rows, offsets)`` or of an (N, V, D) array."""
    if isinstance(aug, tuple):
        rows, offsets = aug
    else:
        rows = torch.as_tensor(aug)
        v = rows.shape[1]
        rows, offsets = rows.reshape(n * v, rows.shape[2]), v * np.arange(n + 1)
    offsets = torch.as_tensor(np.asarray(offsets), dtype=torch.int64)
    if offsets.shape != (n + 1,) or int(offsets[0]) != 0 or int(offsets[-1]) != len(rows):
        raise LTBenchError(f"augmented views: {len(offsets)} offsets for {n} images and {len(rows)} rows")
    return rows, offsets


def _draw_views(idx: torch.Tensor, offsets: torch.Tensor, count: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One view of each drawn image, uniformly among its own: ``offsets[i] + floor(u * count[i])``."""
    u = torch.rand(len(idx), generator=gen, dtype=torch.float64)
    k = count[idx]
    return offsets[idx] + torch.minimum((u * k).long(), k - 1)


def train_head(cache, config: TrainConfig, device: str | torch.device = "auto", split: str = "train",
               val_split: str = "val", base=None) -> TrainResult:
    """Train ``config.head`` on the ``split`` of a FeatureCache, validating on ``val_split`` when present.

    Without a complete ``val_split`` the head trains without validation (``select`` best-val
    then keeps the last epoch, and says so in the log).
    """
    labels = cache.labels(split)  # raises CacheError when missing or incomplete
    aug = cache.aug_features(split) if config.views else None
    # stored dtype (float16): the step converts its batch; the center view is unused when views are
    feats = cache.stored_features(split) if aug is None else None
    val = None
    if val_split in cache.splits and cache.is_complete(val_split):
        val = (cache.features(val_split), cache.labels(val_split))
    elif val_split in cache.splits:
        log.warning("the %r split of %s is incomplete: training without validation (finish it by rerunning the "
                    "same `ltbench extract`)", val_split, cache.path)
    return train_on_arrays(feats, labels, cache.train_counts, cache.text_classifier, config,
                           aug_features=aug, device=device, val=val, base=base)
