"""`ltbench finetune`: Phase A contrastive finetuning (one process, or many under torchrun)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from lt_bench.data import parse_dataset_options
from lt_bench.errors import LTBenchError

from .._common import config_option, device_option, resolve_options, seed_option, write_resolved_config


class Loss(str, Enum):
    class_ = "class"
    infonce = "infonce"


class Optim(str, Enum):
    sgd = "sgd"
    adamw = "adamw"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def finetune(
    ctx: typer.Context,
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (see `ltbench datasets`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="RUN_DIR: last.pt, best.pt, metrics.jsonl, config.toml."),
    model: str = typer.Option("ViT-B-16", "--model", help="open_clip architecture (ltb-tiny-vit for tests)."),
    pretrained: str = typer.Option("openai", "--pretrained", help="Hub tag, checkpoint path, or 'none'."),
    root: Optional[Path] = typer.Option(None, "--root", help="Image root / dataset files."),
    splits_dir: Optional[Path] = typer.Option(None, "--splits-dir", help="Folder of the split files."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="Dataset loader option key=value (repeat)."),
    loss: Loss = typer.Option(Loss.class_, "--loss", help="class: BALLAD's CE over all class prompts; "
                              "infonce: symmetric in-batch (open_clip ClipLoss)."),
    logit_scale: Optional[float] = typer.Option(None, "--logit-scale", help="class loss: fixed scale "
                                                "(default 100); infonce: initial learned scale."),
    lock_image: bool = typer.Option(False, "--lock-image", help="Freeze the image tower."),
    lock_text: bool = typer.Option(False, "--lock-text", help="Freeze the text tower."),
    freeze_bn: bool = typer.Option(False, "--freeze-bn", help="Keep BatchNorm statistics frozen (ResNets)."),
    epochs: int = typer.Option(50, "--epochs", help="Training epochs."),
    batch_size: int = typer.Option(512, "--batch-size", help="GLOBAL batch, split across processes."),
    accum_steps: int = typer.Option(1, "--accum-steps", help="Micro-batches per optimizer step."),
    optimizer: Optim = typer.Option(Optim.sgd, "--optimizer", help="sgd (BALLAD) or adamw."),
    lr: float = typer.Option(1e-5, "--lr", help="Peak learning rate."),
    momentum: float = typer.Option(0.9, "--momentum", help="SGD momentum."),
    weight_decay: float = typer.Option(5e-4, "--weight-decay", help="Weight decay."),
    warmup_steps: int = typer.Option(0, "--warmup-steps", help="Linear warm-up steps before the cosine."),
    grad_clip: float = typer.Option(0.0, "--grad-clip", help="Max gradient norm (0: no clipping)."),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="fp32, or AMP bf16/fp16 (CUDA only)."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="BALLAD's train augmentation "
                                 "(off: the deterministic eval transform, for debugging)."),
    workers: int = typer.Option(4, "--workers", help="DataLoader workers per process."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Held-out train slice when the "
                                       "dataset has no val split."),
    steps_per_epoch: int = typer.Option(0, "--steps-per-epoch", help="Cap on batches per epoch "
                                        "(0: whole epochs); smoke tests."),
    resume: bool = typer.Option(False, "--resume", help="Continue RUN_DIR/last.pt at its next epoch."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in RUN_DIR."),
    config: Optional[Path] = config_option(),
    seed: int = seed_option(),
    device: str = device_option(),
) -> None:
    """Phase A: finetune both CLIP towers contrastively on the long-tailed train set.

    Plain: one process. Under `torchrun --nproc_per_node N --no-python ltbench finetune ...`: DDP
    over N processes (NCCL on GPUs, gloo on CPU); --batch-size stays the global batch.
    """
    from lt_bench import distributed as dist_
    from lt_bench.finetune import FinetuneConfig, run_finetune

    params = resolve_options(ctx, config)
    if not params.get("dataset"):
        raise LTBenchError("--dataset is required (or a 'dataset' key in --config)")
    if not params.get("out"):
        raise LTBenchError("--out RUN_DIR is required (or an 'out' key in --config)")
    enum_value = lambda v: v.value if isinstance(v, Enum) else v  # noqa: E731
    cfg = FinetuneConfig(
        dataset=params["dataset"], out=str(params["out"]),
        root=str(params["root"]) if params["root"] else None,
        splits_dir=str(params["splits_dir"]) if params["splits_dir"] else None,
        dataset_options=parse_dataset_options(params["dataset"], params["option"]),
        model=params["model"], pretrained=params["pretrained"], loss=enum_value(params["loss"]),
        logit_scale=params["logit_scale"], lock_image=params["lock_image"], lock_text=params["lock_text"],
        freeze_bn=params["freeze_bn"], epochs=params["epochs"], batch_size=params["batch_size"],
        accum_steps=params["accum_steps"], optimizer=enum_value(params["optimizer"]), lr=params["lr"],
        momentum=params["momentum"], weight_decay=params["weight_decay"], warmup_steps=params["warmup_steps"],
        grad_clip=params["grad_clip"], precision=enum_value(params["precision"]), augment=params["augment"],
        workers=params["workers"], val_fraction=params["val_fraction"],
        steps_per_epoch=params["steps_per_epoch"], seed=params["seed"], device=params["device"],
        resume=params["resume"], overwrite=params["overwrite"],
    )
    run_dir = Path(cfg.out)
    summary = run_finetune(cfg, on_start=lambda: write_resolved_config(run_dir, params, "finetune"))
    if dist_.env_rank() == 0:
        typer.echo(json.dumps(summary))
