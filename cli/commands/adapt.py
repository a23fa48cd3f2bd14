"""`ltbench adapt FEATURES.h5 --head NAME --out HEAD.pt`: train a head on a feature cache (Phase B)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lt_bench.features import FeatureCache

# Spelled out so that `ltbench --help` need not import torch; tests/test_cli_help.py checks it
# against the registry.
TRAINED_HEADS = ("ballad", "cosine", "linear")
from lt_bench.log import get_logger

from .._common import config_option, device_option, resolve_options, seed_option, write_resolved_config

log = get_logger("cli.adapt")
_DEF = "default: the head's recipe"


def adapt(
    ctx: typer.Context,
    features: Path = typer.Argument(..., help="Feature cache written by `ltbench extract`.", dir_okay=False),
    head: str = typer.Option("ballad", "--head", help=f"Trained head: {', '.join(TRAINED_HEADS)}."),
    out: Path = typer.Option(..., "--out", help="Where to write HEAD.pt.", dir_okay=False),
    loss: Optional[str] = typer.Option(None, "--loss", help=f"ce, logit_adjusted or balanced_softmax ({_DEF})."),
    tau: Optional[float] = typer.Option(None, "--tau", help="Logit-adjustment strength (logit_adjusted)."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="instance, class_aware (the reference's "
                                          f"per-class cycles), class_aware_replace or sqrt ({_DEF})."),
    k_per_class: Optional[int] = typer.Option(None, "--k-per-class", help="Images per class visit (class_aware)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs of len(train) // batch steps."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per step."),
    lr: Optional[float] = typer.Option(None, "--lr", help="SGD peak learning rate (cosine to 0)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="reference (cosine stepped once per epoch, "
                                           f"before it, as BALLAD's code) or cosine (per step) ({_DEF})."),
    select: Optional[str] = typer.Option(None, "--select", help="best-val (the epoch with the best val top-1; "
                                         f"the last when the cache has no val split) or last ({_DEF})."),
    momentum: Optional[float] = typer.Option(None, "--momentum", help="SGD momentum."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="SGD weight decay."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="BALLAD residual ratio."),
    scale: Optional[float] = typer.Option(None, "--scale", help="Logit scale."),
    views: Optional[bool] = typer.Option(None, "--views/--no-views",
                                         help="Train on the cached augmented views when there are some."),
    config: Optional[Path] = config_option(),
    seed: int = seed_option(),
    device: str = device_option(),
) -> None:
    """Train a head (ballad, linear, cosine) on the cached train features and write HEAD.pt.

    Every recipe option left unset takes the head's default (ballad: the BALLAD reference's
    Phase B). The resolved recipe is written beside HEAD.pt as HEAD.pt.config.toml.
    """
    p = resolve_options(ctx, config)
    recipe = {k: p[k] for k in ("loss", "tau", "sampler", "k_per_class", "epochs", "batch_size", "lr", "schedule",
                                "momentum", "weight_decay", "alpha", "scale", "views", "select")}
    from lt_bench.heads import resolve_config, save_head, train_head

    cfg = resolve_config(p["head"], seed=p["seed"], **recipe)
    with FeatureCache(p["features"]) as cache:
        result = train_head(cache, cfg, device=p["device"])
        save_head(p["out"], result, cache.provenance())
    resolved = {"features": str(p["features"]), "out": str(p["out"]), "device": p["device"], **cfg.to_dict()}
    write_resolved_config(Path(p["out"]), resolved, "adapt")
    log.info("wrote %s (%s, final loss %.4f, epoch %d kept (%s), %.1f s)", p["out"], cfg.head, result.final_loss,
             result.selected_epoch, result.selection, result.seconds)
    typer.echo(str(p["out"]))
