"""What a Phase A run trains with: data, model, loaders and optimisation, built in one order.

The order is part of the result: the model's random init is drawn right after
``seed_everything(cfg.seed)`` (the same on every rank), and a resume restores the RNG state
after everything is built, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import distributed as dist_
from ..data import load_dataset
from ..data.base import LTDataset
from ..data.decode import resolve_decode
from ..device import amp_policy, seed_everything
from ..errors import LTBenchError
from ..features.items import image_path
from ..models import create_model
from . import checkpoint as ckpt_
from .config import FinetuneConfig
from .data import train_loader, train_val_indices, val_loader
from .losses import ClipTrainWrapper, create_loss
from .schedule import CosineSchedule


@dataclass
class FinetuneRun:
    """One rank's view of a run: what the epoch loop reads and steps."""

    cfg: FinetuneConfig
    ctx: dist_.DistContext
    out: Path  # RUN_DIR
    ds: LTDataset
    n_train: int  # images in this run's train part (all ranks)
    n_val: int
    val_name: str  # "val", or the train split when validation is a held-out slice of it
    model: nn.Module  # the bare CLIP model: checkpoints and validation use it
    ddp: nn.Module  # what the loop calls: ClipTrainWrapper, in DDP under torchrun
    params: list[nn.Parameter]  # the trainable ones
    class_tokens: torch.Tensor  # one prompt per class, tokenized, on the device
    loader: torch.utils.data.DataLoader
    sampler: torch.utils.data.Sampler  # set_epoch(e) orders the epoch by (seed, e)
    loader_gen: torch.Generator  # reseeded every epoch (augmentation in the workers)
    vloader: torch.utils.data.DataLoader
    micro_per_epoch: int  # micro-batches per epoch (a whole number of optimizer steps)
    steps_per_epoch: int  # optimizer steps per epoch
    optimizer: torch.optim.Optimizer
    schedule: CosineSchedule
    loss_fn: nn.Module
    autocast: Callable  # a fresh autocast context per call (lt_bench.device.amp_policy)
    scaler: torch.amp.GradScaler | None  # fp16 only

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def main(self) -> bool:
        return self.ctx.is_main


def build_run(cfg: FinetuneConfig, ctx: dist_.DistContext, out: Path) -> FinetuneRun:
    """Load the data and model and make loaders, optimizer, schedule and loss for this rank.

    Raises:
        LTBenchError: AMP asked for without CUDA, or an epoch shorter than one optimizer step.
    """
    device, world = ctx.device, ctx.world_size
    autocast, scaler = amp_policy(device, cfg.precision, training=True)
    local_batch = cfg.batch_size // world

    ds = load_dataset(cfg.dataset, root=cfg.root, splits_dir=cfg.splits_dir, **cfg.dataset_options)
    train_idx, val_name, val_idx = train_val_indices(ds, cfg.val_fraction)

    seed_everything(cfg.seed)  # random init is the same on every rank (DDP broadcasts rank 0's anyway)
    bundle = create_model(cfg.model, cfg.pretrained, device)
    model = bundle.model
    if cfg.loss == "infonce" and cfg.logit_scale is not None:
        with torch.no_grad():
            model.logit_scale.fill_(math.log(cfg.logit_scale))
    params = set_trainable(model, cfg)
    prompts = [cfg.template.replace("{}", c) for c in ds.classnames]
    class_tokens = bundle.tokenizer(prompts).to(device)

    path = image_path(bundle, resolve_decode(cfg.decode, device), device)
    loader, sampler, loader_gen = train_loader(ds, train_idx, path, cfg.augment, local_batch, ctx.rank, world,
                                               cfg.seed, cfg.workers, device)
    vloader = val_loader(ds, val_name, val_idx, path, max(local_batch, 64), ctx.rank, world, cfg.workers, device)
    micro_per_epoch = len(loader) if not cfg.steps_per_epoch else min(len(loader), cfg.steps_per_epoch)
    steps_per_epoch = micro_per_epoch // cfg.accum_steps
    if steps_per_epoch < 1:
        raise LTBenchError(f"an epoch has {micro_per_epoch} batches of {cfg.batch_size}, fewer than --accum-steps "
                           f"{cfg.accum_steps}: lower --accum-steps or --batch-size")

    optimizer = make_optimizer(model, params, cfg)
    schedule = CosineSchedule(optimizer, total_steps=cfg.epochs * steps_per_epoch, warmup_steps=cfg.warmup_steps,
                              kind=cfg.schedule, steps_per_epoch=steps_per_epoch)
    loss_fn = create_loss(cfg.loss, cfg.scale, ctx.rank, world)
    wrapper = ClipTrainWrapper(model, class_tokens, cache_text=cfg.lock_text)
    return FinetuneRun(
        cfg=cfg, ctx=ctx, out=out, ds=ds, n_train=len(train_idx), n_val=len(val_idx), val_name=val_name,
        model=model, ddp=dist_.wrap_ddp(wrapper, ctx), params=params, class_tokens=class_tokens, loader=loader,
        sampler=sampler, loader_gen=loader_gen, vloader=vloader,
        micro_per_epoch=steps_per_epoch * cfg.accum_steps,  # leftover micro-batches would be a partial step
        steps_per_epoch=steps_per_epoch, optimizer=optimizer, schedule=schedule, loss_fn=loss_fn,
        autocast=autocast, scaler=scaler)


def restore(run: FinetuneRun, ckpt: dict) -> tuple[int, float, list[dict]]:
    """Load ``last.pt`` into a freshly built run, RNG state last; (start epoch, best val, history)."""
    run.model.load_state_dict(ckpt["state_dict"])
    run.optimizer.load_state_dict(_keep_current_hyperparameters(ckpt["optimizer"], run.optimizer))
    # the schedule's position from the epochs done, in this run's steps per epoch: a resume with
    # another batch size or --steps-per-epoch stays on the right epoch of the staircase
    run.schedule.load_state_dict({"step": int(ckpt["epoch"]) * run.steps_per_epoch})
    if run.scaler is not None and ckpt.get("scaler"):
        run.scaler.load_state_dict(ckpt["scaler"])
    ckpt_.set_rng_state(ckpt["rng"])
    start_epoch = int(ckpt["epoch"])
    return start_epoch, float(ckpt["best_val"]), list(ckpt.get("history", []))[:start_epoch]


def set_trainable(model: nn.Module, cfg: FinetuneConfig) -> list[nn.Parameter]:
    """requires_grad per --lock-image / --lock-text; the class loss's scale is fixed."""
    for p in model.parameters():
        p.requires_grad_(True)
    if cfg.lock_image:
        for p in model.visual.parameters():
            p.requires_grad_(False)
    if cfg.lock_text:
        for name, p in model.named_parameters():
            if not name.startswith("visual.") and name not in ("logit_scale", "logit_bias"):
                p.requires_grad_(False)
    if cfg.loss == "class":
        model.logit_scale.requires_grad_(False)
    if getattr(model, "logit_bias", None) is not None:
        model.logit_bias.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def set_train_mode(model: nn.Module, cfg: FinetuneConfig) -> None:
    """train() except locked towers and (with --freeze-bn) BatchNorm layers, kept in eval()."""
    model.train()
    if cfg.lock_image:
        model.visual.eval()
    if cfg.lock_text:
        for name, m in model.named_children():
            if name != "visual":
                m.eval()
    if cfg.freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def make_optimizer(model: nn.Module, params: list[nn.Parameter], cfg: FinetuneConfig) -> torch.optim.Optimizer:
    # BALLAD decays every weight; a learned logit scale (infonce) is not decayed (open_clip's habit).
    scale = [p for p in params if p is model.logit_scale]
    rest = [p for p in params if p is not model.logit_scale]
    groups = [{"params": rest, "weight_decay": cfg.weight_decay}]
    if scale:
        groups.append({"params": scale, "weight_decay": 0.0})
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


def _keep_current_hyperparameters(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """The saved optimizer state (momentum buffers, Adam moments, step counts) with this run's
    lr, weight decay, momentum and betas: a resumed run with changed settings uses them, as
    the resume warning says it does (torch's load_state_dict would restore the old ones)."""
    fresh = optimizer.state_dict()["param_groups"]
    if len(fresh) != len(saved["param_groups"]):
        raise LTBenchError("the checkpoint's optimizer has another parameter grouping (a learned logit "
                           "scale added or removed?): start over with --overwrite")
    groups = [{**new, "params": old["params"]} for new, old in zip(fresh, saved["param_groups"])]
    return {**saved, "param_groups": groups}
