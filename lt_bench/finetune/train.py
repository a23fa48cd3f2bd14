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
from ..device import seed_everything
from ..errors import LTBenchError
from ..log import get_logger, progress_bar, stderr_console
from . import checkpoint as ckpt_
from . import overwrite as overwrite_
from .build import FinetuneRun, build_run, restore, set_train_mode
from .config import FinetuneConfig

log = get_logger(__name__)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (int(seed) * 1_000_003 + epoch * 1009 + rank) % (2**63)


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
    if dist_.env_rank() == 0:
        overwrite_.recover(out)  # a killed --overwrite run's previous run back (or the new one kept) first
    if cfg.resume and (out / ckpt_.CONFIG).is_file() and not (out / ckpt_.LAST).is_file():
        # killed before its first checkpoint: nothing was lost and nothing can be resumed
        log.info("%s has no checkpoint yet (a run stopped before its first epoch ended): starting it from scratch",
                 out)
        cfg.resume = False
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


def _run(cfg: FinetuneConfig, ctx: dist_.DistContext, out: Path, resume_ckpt: dict | None, on_start) -> dict:
    run = build_run(cfg, ctx, out)
    start_epoch, best_val, history = 0, -1.0, []
    if resume_ckpt is not None:
        start_epoch, best_val, history = restore(run, resume_ckpt)
    try:
        if run.main:
            _open_run_dir(run, on_start, resumed=resume_ckpt is not None, start_epoch=start_epoch, history=history,
                          best_val=best_val)
        dist_.barrier()
        best_val = _epochs(run, start_epoch, best_val, history)
    except BaseException:
        if run.main:  # --overwrite: the previous run comes back unless the new one has a checkpoint
            overwrite_.undo(out)
        raise
    return {"run_dir": str(out), "best": str(out / ckpt_.BEST), "last": str(out / ckpt_.LAST),
            "epochs": cfg.epochs, "best_val_acc": best_val,
            "final": history[-1] if history else None, "world_size": ctx.world_size}


def _epochs(run: FinetuneRun, start_epoch: int, best_val: float, history: list[dict]) -> float:
    """Train, validate and checkpoint epochs ``start_epoch..`` (``history`` grows); the best val accuracy."""
    cfg = run.cfg
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        loss_sum, n_micro = train_epoch(run, epoch)
        train_time = time.perf_counter() - t0
        lr_used = _lr_of_last_step(run)
        correct, total = evaluate(run.model, run.class_tokens, run.vloader, run.device, run.autocast)
        train_loss, val_acc = _reduce_epoch(run, epoch, loss_sum, n_micro, correct, total)
        elapsed = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": round(train_loss, 6), "val_acc": round(val_acc, 6),
               "lr": lr_used, "time": round(elapsed, 3),
               "images_per_s": round(run.micro_per_epoch * cfg.batch_size / train_time, 2)}
        history.append(row)
        improved = val_acc > best_val
        best_val = max(best_val, val_acc)
        if run.main:
            _write_epoch(run, epoch, best_val, history, improved)
            overwrite_.commit(run.out)
            log.info("epoch %d/%d  loss %.4f  val %.2f%%%s  lr %.3g  %.1fs  %.0f img/s", epoch + 1, cfg.epochs,
                     train_loss, 100 * val_acc, " (best)" if improved else "", lr_used, elapsed,
                     row["images_per_s"])
        dist_.barrier()
    return best_val


def _open_run_dir(run: FinetuneRun, on_start, *, resumed: bool, start_epoch: int, history: list[dict],
                  best_val: float) -> None:
    """Rank 0, before the first epoch: make or clear RUN_DIR, let the caller write there, say what runs."""
    cfg, out = run.cfg, run.out
    out.mkdir(parents=True, exist_ok=True)
    if cfg.overwrite:  # kept until the new run has a checkpoint (overwrite.py)
        overwrite_.set_aside(out)
    if on_start is not None:
        on_start()
    if resumed:
        ckpt_.write_metrics(out, history)  # drop lines of an epoch the kill interrupted
        log.info("resuming %s at epoch %d/%d (best val %.2f%%)", out / ckpt_.LAST, start_epoch + 1,
                 cfg.epochs, 100 * best_val)
    world = run.ctx.world_size
    log.info("finetune %s (%s) on %s: %d train / %d %s images, %d classes, loss %s, %s lr %g, "
             "%d epochs x %d steps of %d%s, %s, %s, %d process%s", cfg.model, cfg.pretrained, cfg.dataset,
             run.n_train, run.n_val, "val" if run.val_name == "val" else "held-out train", run.ds.num_classes,
             cfg.loss, cfg.optimizer, cfg.lr, cfg.epochs, run.steps_per_epoch, cfg.batch_size,
             f" x {cfg.accum_steps}" if cfg.accum_steps > 1 else "", cfg.precision, run.device, world,
             "es" if world > 1 else "")


def train_epoch(run: FinetuneRun, epoch: int) -> tuple[torch.Tensor, int]:
    """One epoch of optimizer steps on this rank: (sum of micro-batch losses, micro-batches)."""
    cfg = run.cfg
    # reseeded from (seed, epoch, rank), so that a resumed epoch draws what an uninterrupted one would
    es = epoch_seed(cfg.seed, epoch, run.ctx.rank)
    seed_everything(es)
    run.loader_gen.manual_seed(es)
    run.sampler.set_epoch(epoch)
    set_train_mode(run.model, cfg)
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    n_micro = 0
    with _progress(run.main, f"epoch {epoch + 1}/{cfg.epochs}", run.micro_per_epoch) as advance:
        for images, labels, _ in run.loader:
            step = (n_micro + 1) % cfg.accum_steps == 0
            loss = _forward_backward(run, images, labels, step)
            if step:
                _optimizer_step(run)
            loss_sum += loss.detach().double()
            n_micro += 1
            advance()
            if n_micro >= run.micro_per_epoch:
                break
    return loss_sum, n_micro


def _forward_backward(run: FinetuneRun, images: torch.Tensor, labels: torch.Tensor, step: bool) -> torch.Tensor:
    """Loss of one micro-batch, its gradient added to the parameters' (scaled for accumulation)."""
    images = images.to(run.device, non_blocking=True)
    labels = labels.to(run.device, non_blocking=True)
    # DDP all-reduces gradients on every backward: only the micro-batch that steps needs it
    no_sync = run.ddp.no_sync() if (run.ctx.distributed and not step) else contextlib.nullcontext()
    with no_sync:
        class_idx, target = run.loss_fn.text_index(labels)
        with run.autocast():
            img, txt, scale = run.ddp(images, class_idx)
            loss = run.loss_fn(img, txt, scale, target)
        scaled = loss / run.cfg.accum_steps
        (run.scaler.scale(scaled) if run.scaler is not None else scaled).backward()
    return loss


def _optimizer_step(run: FinetuneRun) -> None:
    """Clip, step (through the GradScaler with fp16), clear the gradients, advance the schedule."""
    cfg, optimizer, scaler = run.cfg, run.optimizer, run.scaler
    if scaler is not None:
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    run.schedule.step()
    if cfg.loss == "infonce":
        with torch.no_grad():
            run.model.logit_scale.clamp_(0, math.log(100))  # as open_clip / the CLIP paper


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


def _reduce_epoch(run: FinetuneRun, epoch: int, loss_sum: torch.Tensor, n_micro: int, correct: int,
                  total: int) -> tuple[float, float]:
    """(train loss, val accuracy) over all ranks; a non-finite loss stops the run."""
    loss_total, n_total, correct, total = dist_.all_reduce_sum([float(loss_sum), n_micro, correct, total])
    train_loss = loss_total / max(1, n_total)
    if not math.isfinite(train_loss):
        raise LTBenchError(f"training diverged at epoch {epoch + 1} (loss {train_loss}): lower --lr"
                           + (" or use --precision bf16/fp32" if run.cfg.precision == "fp16" else ""))
    return train_loss, correct / max(1, total)


def _write_epoch(run: FinetuneRun, epoch: int, best_val: float, history: list[dict], improved: bool) -> None:
    """Rank 0: last.pt (resumable), best.pt when validation improved, metrics.jsonl."""
    ds = run.ds
    last = ckpt_.make_checkpoint(model=run.model, cfg=run.cfg, epoch=epoch + 1, best_val=best_val, history=history,
                                 classnames=ds.classnames, dataset_options=ds.options, optimizer=run.optimizer,
                                 scheduler=run.schedule, scaler=run.scaler)
    if improved:  # the same weights, without what only a resume needs
        ckpt_.save_checkpoint(run.out / ckpt_.BEST, {**last, "optimizer": None, "scheduler": None, "scaler": None})
    ckpt_.save_checkpoint(run.out / ckpt_.LAST, last)
    ckpt_.write_metrics(run.out, history)


def _lr_of_last_step(run: FinetuneRun) -> float:
    """The lr the epoch's last optimizer step used (the optimizer already holds the next one)."""
    schedule = run.schedule
    if schedule.step_count == 0:
        return run.optimizer.param_groups[0]["lr"]
    return schedule.lr_at(schedule.step_count - 1, run.cfg.lr)


@contextlib.contextmanager
def _progress(main: bool, description: str, total: int):
    """Yield ``advance()`` of one bar on rank 0's terminal; a no-op elsewhere."""
    if not main or not stderr_console.is_terminal:  # a log file gets the per-epoch line only
        yield lambda: None
        return
    with progress_bar(description) as bar:
        task = bar.add_task("train", total=total)
        yield lambda: bar.update(task, advance=1)
