"""The Phase A loop: one process, or one rank of a ``torchrun`` DDP run.

Launching::

    ltbench finetune --dataset D --model M --pretrained P --out RUN_DIR      # one process
    torchrun --standalone --nproc_per_node 4 --no-python ltbench finetune ...  # DDP, one node
    # several nodes: the same command on every node, with torchrun's rendezvous options
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST0:29500 --rdzv-id RUN --no-python ltbench finetune ...

NCCL on GPUs (each rank takes ``cuda:LOCAL_RANK``), gloo on CPU. ``--batch-size`` is the
global batch: each rank loads ``batch_size / world_size`` images. Rank 0 alone writes files and
prints; RUN_DIR must be on a filesystem every node sees (for ``--resume``).

Determinism: every epoch reseeds torch/python/numpy and the loader's generator from
``(seed, epoch, rank)``, and the sampler's order is ``(seed, epoch)``; so a run resumed from
``last.pt`` continues exactly as an uninterrupted one (on CPU, same settings).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import torch
from torch import nn

from .. import distributed as dist_
from ..data import load_dataset
from ..device import amp_policy, seed_everything
from ..errors import LTBenchError
from ..log import get_logger, stderr_console
from ..models import create_model
from . import checkpoint as ckpt_
from .config import FinetuneConfig
from .data import train_loader, train_val_indices, val_loader
from .losses import ClipTrainWrapper, create_loss
from .schedule import CosineSchedule

log = get_logger(__name__)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (int(seed) * 1_000_003 + epoch * 1009 + rank) % (2**63)


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


@torch.no_grad()
def evaluate(model: nn.Module, class_tokens: torch.Tensor, loader, device, autocast) -> tuple[int, int]:
    """(correct, total) of the class-prompt classifier on this rank's shard."""
    model.eval()
    with autocast():
        text = nn.functional.normalize(model.encode_text(class_tokens).float(), dim=-1)
    correct = total = 0
    for images, labels, _ in loader:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with autocast():
            feats = nn.functional.normalize(model.encode_image(images).float(), dim=-1)
        correct += int((feats @ text.t()).argmax(1).eq(labels).sum())
        total += len(labels)
    return correct, total


def run_finetune(cfg: FinetuneConfig, on_start=None) -> dict:
    """Train, validate and checkpoint; return a summary (rank 0's view).

    Args:
        cfg: the resolved settings.
        on_start: called on rank 0 once RUN_DIR is checked, before training (the CLI writes
            config.toml there).
    """
    cfg.validate()
    world = dist_.env_world_size()
    if world > 1 and dist_.env_rank() != 0:
        logging.getLogger("lt_bench").setLevel(logging.ERROR)  # rank 0 alone logs progress
    if cfg.batch_size < world:
        raise LTBenchError(f"--batch-size {cfg.batch_size} is smaller than the {world} processes: "
                           f"each needs at least one image; use --batch-size >= {world}")
    if cfg.batch_size % world:
        raise LTBenchError(f"--batch-size {cfg.batch_size} (global) does not split evenly over {world} processes; "
                           f"use a multiple of {world}")
    out = Path(cfg.out)
    ckpt_.check_run_dir(out, cfg.resume, cfg.overwrite)
    resume_ckpt = None
    if cfg.resume:
        resume_ckpt = ckpt_.load_checkpoint(out / ckpt_.LAST)
        ckpt_.check_resume(resume_ckpt, cfg, out / ckpt_.LAST)

    ctx = dist_.init_distributed(cfg.device)
    try:
        return _run(cfg, ctx, out, resume_ckpt, on_start)
    finally:
        dist_.cleanup()


def _run(cfg: FinetuneConfig, ctx, out: Path, resume_ckpt, on_start) -> dict:
    device, rank, world, main = ctx.device, ctx.rank, ctx.world_size, ctx.is_main
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

    pin = device.type == "cuda"
    transform = bundle.preprocess_train if cfg.augment else bundle.preprocess_val
    loader, sampler, loader_gen = train_loader(ds, train_idx, transform, local_batch, rank, world, cfg.seed,
                                               cfg.workers, pin)
    vloader = val_loader(ds, val_name, val_idx, bundle.preprocess_val, max(local_batch, 64), rank, world,
                         cfg.workers, pin)
    micro_per_epoch = len(loader) if not cfg.steps_per_epoch else min(len(loader), cfg.steps_per_epoch)
    steps_per_epoch = micro_per_epoch // cfg.accum_steps
    if steps_per_epoch < 1:
        raise LTBenchError(f"an epoch has {micro_per_epoch} batches of {cfg.batch_size}, fewer than --accum-steps "
                           f"{cfg.accum_steps}: lower --accum-steps or --batch-size")
    micro_per_epoch = steps_per_epoch * cfg.accum_steps  # leftover micro-batches would be a partial step

    optimizer = make_optimizer(model, params, cfg)
    schedule = CosineSchedule(optimizer, total_steps=cfg.epochs * steps_per_epoch, warmup_steps=cfg.warmup_steps)
    loss_fn = create_loss(cfg.loss, cfg.scale, rank, world)
    wrapper = ClipTrainWrapper(model, class_tokens, cache_text=cfg.lock_text)
    ddp = dist_.wrap_ddp(wrapper, ctx)

    start_epoch, best_val, history = 0, -1.0, []
    if resume_ckpt is not None:
        model.load_state_dict(resume_ckpt["state_dict"])
        optimizer.load_state_dict(_keep_current_hyperparameters(resume_ckpt["optimizer"], optimizer))
        schedule.load_state_dict(resume_ckpt["scheduler"])
        if scaler is not None and resume_ckpt.get("scaler"):
            scaler.load_state_dict(resume_ckpt["scaler"])
        ckpt_.set_rng_state(resume_ckpt["rng"])
        start_epoch, best_val = int(resume_ckpt["epoch"]), float(resume_ckpt["best_val"])
        history = list(resume_ckpt.get("history", []))[:start_epoch]
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if cfg.overwrite:
            ckpt_.clear_run_dir(out)
        if on_start is not None:
            on_start()
        if resume_ckpt is not None:
            ckpt_.write_metrics(out, history)  # drop lines of an epoch the kill interrupted
            log.info("resuming %s at epoch %d/%d (best val %.2f%%)", out / ckpt_.LAST, start_epoch + 1,
                     cfg.epochs, 100 * best_val)
        n_train, n_val = len(train_idx), len(val_idx)
        log.info("finetune %s (%s) on %s: %d train / %d %s images, %d classes, loss %s, %s lr %g, "
                 "%d epochs x %d steps of %d%s, %s, %s, %d process%s", cfg.model, cfg.pretrained, cfg.dataset,
                 n_train, n_val, "val" if val_name == "val" else "held-out train", ds.num_classes, cfg.loss,
                 cfg.optimizer, cfg.lr, cfg.epochs, steps_per_epoch, cfg.batch_size,
                 f" x {cfg.accum_steps}" if cfg.accum_steps > 1 else "", cfg.precision, device, world,
                 "es" if world > 1 else "")
    dist_.barrier()

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        es = epoch_seed(cfg.seed, epoch, rank)
        seed_everything(es)
        loader_gen.manual_seed(es)
        sampler.set_epoch(epoch)
        set_train_mode(model, cfg)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        n_micro = 0
        progress = _progress(main, f"epoch {epoch + 1}/{cfg.epochs}", micro_per_epoch)
        with progress as bar:
            task = bar.add_task("train", total=micro_per_epoch) if bar else None
            for images, labels, _ in loader:
                images = images.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                sync = (n_micro + 1) % cfg.accum_steps == 0
                no_sync = ddp.no_sync() if (ctx.distributed and not sync) else contextlib.nullcontext()
                with no_sync:
                    class_idx, target = loss_fn.text_index(labels)
                    with autocast():
                        img, txt, scale = ddp(images, class_idx)
                        loss = loss_fn(img, txt, scale, target)
                    scaled = loss / cfg.accum_steps
                    (scaler.scale(scaled) if scaler is not None else scaled).backward()
                if sync:
                    _optimizer_step(optimizer, scaler, params, cfg)
                    schedule.step()
                    if cfg.loss == "infonce":
                        with torch.no_grad():
                            model.logit_scale.clamp_(0, math.log(100))  # as open_clip / the CLIP paper
                loss_sum += loss.detach().double()
                n_micro += 1
                if bar:
                    bar.update(task, advance=1)
                if n_micro >= micro_per_epoch:
                    break
        train_time = time.perf_counter() - t0
        lr_used = optimizer.param_groups[0]["lr"] if schedule.step_count == 0 else \
            _lr_of_last_step(schedule, cfg)
        correct, total = evaluate(model, class_tokens, vloader, device, autocast)
        loss_total, n_total, correct, total = dist_.all_reduce_sum([float(loss_sum), n_micro, correct, total])
        train_loss = loss_total / max(1, n_total)
        val_acc = correct / max(1, total)
        if not math.isfinite(train_loss):
            raise LTBenchError(f"training diverged at epoch {epoch + 1} (loss {train_loss}): lower --lr"
                               + (" or use --precision bf16/fp32" if cfg.precision == "fp16" else ""))
        elapsed = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": round(train_loss, 6), "val_acc": round(val_acc, 6),
               "lr": lr_used, "time": round(elapsed, 3),
               "images_per_s": round(micro_per_epoch * cfg.batch_size / train_time, 2)}
        history.append(row)
        improved = val_acc > best_val
        best_val = max(best_val, val_acc)
        if main:
            common = dict(model=model, cfg=cfg, epoch=epoch + 1, best_val=best_val, history=history,
                          classnames=ds.classnames, dataset_options=ds.options)
            last = ckpt_.make_checkpoint(**common, optimizer=optimizer, scheduler=schedule, scaler=scaler)
            if improved:  # the same weights, without what only a resume needs
                ckpt_.save_checkpoint(out / ckpt_.BEST, {**last, "optimizer": None, "scheduler": None, "scaler": None})
            ckpt_.save_checkpoint(out / ckpt_.LAST, last)
            ckpt_.write_metrics(out, history)
            log.info("epoch %d/%d  loss %.4f  val %.2f%%%s  lr %.3g  %.1fs  %.0f img/s", epoch + 1, cfg.epochs,
                     train_loss, 100 * val_acc, " (best)" if improved else "", lr_used, elapsed,
                     row["images_per_s"])
        dist_.barrier()

    return {"run_dir": str(out), "best": str(out / ckpt_.BEST), "last": str(out / ckpt_.LAST),
            "epochs": cfg.epochs, "best_val_acc": best_val,
            "final": history[-1] if history else None, "world_size": world}


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


def _optimizer_step(optimizer, scaler, params, cfg: FinetuneConfig) -> None:
    if scaler is not None:
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _lr_of_last_step(schedule: CosineSchedule, cfg: FinetuneConfig) -> float:
    """The lr the epoch's last optimizer step used (the optimizer already holds the next one)."""
    from .schedule import cosine_lr

    return cosine_lr(schedule.step_count - 1, cfg.lr, schedule.total_steps, schedule.warmup_steps)


class _NoBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress(main: bool, description: str, total: int):
    if not main or not stderr_console.is_terminal:  # a log file gets the per-epoch line only
        return _NoBar()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=stderr_console, transient=True)
