"""`ltbench extract`: run the backbone once over a dataset's splits into a feature cache.

Single process when launched plainly; under `torchrun --nproc_per_node N --no-python ltbench
extract ...` every rank computes a share of each round of batches and rank 0 writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import click
import typer

from .._common import config_option, device_option, resolve_options, seed_option, write_resolved_config


def extract(
    ctx: typer.Context,
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (see `ltbench datasets`)."),
    root: Optional[Path] = typer.Option(None, "--root", help="Image root of the dataset."),
    splits_dir: Optional[Path] = typer.Option(None, "--splits-dir", help="Folder of the split files."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-o", help="Dataset option key=value (repeatable)."),
    model: Optional[str] = typer.Option(None, "--model", help="open_clip model name (e.g. ViT-B-16, ltb-tiny-vit)."),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", help="Hub tag, checkpoint path, or none."),
    splits: str = typer.Option("train,val,test", "--splits", help="Comma-separated splits to extract."),
    views: int = typer.Option(0, "--views", help="Augmented views per train image (BALLAD augmentation)."),
    templates: str = typer.Option("simple", "--templates", help="Prompt template set: simple or openai."),
    batch_size: int = typer.Option(256, "--batch-size", help="Images per forward pass (per process)."),
    workers: int = typer.Option(4, "--workers", help="DataLoader worker processes (0: main process)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave out unreadable images (recorded in the cache)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an output or unfinished run of other settings."),
    out: Optional[Path] = typer.Option(None, "--out", help="The feature cache to write (.h5)."),
    config: Optional[Path] = config_option(),
    seed: int = seed_option(),
    device: str = device_option(),
) -> None:
    """Extract image and text features once into an HDF5 cache (resumable; torchrun-shardable)."""
    params = resolve_options(ctx, config)
    for name in ("dataset", "model", "pretrained", "out"):
        if params.get(name) in (None, ""):
            raise click.UsageError(f"missing option --{name} (on the command line or in --config)", ctx=ctx)

    from lt_bench import distributed as dist_
    from lt_bench.data import load_dataset, parse_dataset_options
    from lt_bench.device import seed_everything
    from lt_bench.features.extract import ExtractOptions, extract_features
    from lt_bench.models import create_model

    options = parse_dataset_options(params["dataset"], params["option"])
    split_names = tuple(s.strip() for s in str(params["splits"]).split(",") if s.strip())
    out_path = Path(params["out"])
    dctx = dist_.init_distributed(params["device"])
    try:
        ds = load_dataset(params["dataset"], root=params["root"], splits_dir=params["splits_dir"], **options)
        seed_everything(params["seed"])  # a random-init model is the same on every rank and rerun
        bundle = create_model(params["model"], params["pretrained"], device=dctx.device)
        opts = ExtractOptions(splits=split_names, views=params["views"], templates=params["templates"],
                              seed=params["seed"], batch_size=params["batch_size"], workers=params["workers"],
                              skip_bad=params["skip_bad"], overwrite=params["overwrite"])
        recorded = {k: (str(v) if isinstance(v, Path) else v) for k, v in params.items()
                    if k not in ("config", "overwrite", "option")}
        recorded["option"] = options
        result = extract_features(out_path, ds, bundle, opts, config=recorded, ctx=dctx)
        if dctx.is_main:
            if result.status == "written":
                write_resolved_config(out_path, params, "extract")
                parts = [f"{s} {n} rows" + (f" ({result.skipped[s]} skipped)" if result.skipped.get(s) else "")
                         for s, n in result.rows.items()]
                typer.echo(f"{out_path}: " + ", ".join(parts))
            else:
                typer.echo(f"{out_path}: up to date")
    finally:
        dist_.cleanup()
