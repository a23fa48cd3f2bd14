"""`ltbench demo`: the whole BALLAD pipeline on Fashion-MNIST-LT with the tiny model."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from lt_bench.demo import DemoConfig, run_demo
from lt_bench.log import stderr_console
from lt_bench.report.tables import fmt_cell

from .._common import config_option, device_option, resolve_options, seed_option, write_resolved_config



def demo(
    ctx: typer.Context,
    out: Path = typer.Option(Path(DemoConfig.out), "--out",
                             help="Output folder; a rerun with the same folder reuses finished steps."),
    root: Optional[Path] = typer.Option(None, "--root", help="Folder with Fashion-MNIST's four .gz files "
                                        "(default: /usr/share/datasets/fashion-mnist, from Debian's dataset-fashion-mnist)."),
    epochs: int = typer.Option(DemoConfig.epochs, "--epochs", help="Phase A epochs."),
    views: int = typer.Option(DemoConfig.views, "--views", help="Augmented views cached per train image."),
    head_epochs: int = typer.Option(DemoConfig.head_epochs, "--head-epochs", help="Phase B epochs."),
    workers: int = typer.Option(DemoConfig.workers, "--workers", help="DataLoader worker processes."),
    config: Optional[Path] = config_option(),
    seed: int = seed_option(),
    device: str = device_option(),
) -> None:
    """Run the whole pipeline on real images on this machine: Phase A on Fashion-MNIST-LT with
    the tiny ViT, one extraction, then zero-shot, BALLAD, cosine + LA, NCM and kNN on the cache.

    Prints one table (overall / many / medium / few) and writes result JSONs, a leaderboard and a
    per-class accuracy plot under --out.
    """
    p = resolve_options(ctx, config)
    names = {f.name for f in fields(DemoConfig)}
    cfg = DemoConfig(**{k: (str(v) if isinstance(v, Path) else v) for k, v in p.items() if k in names})
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    write_resolved_config(Path(cfg.out), p, "demo")
    result = run_demo(cfg)
    t = Table(title=f"ltbench demo: Fashion-MNIST-LT, {cfg.model} (test set, top-1 %)")
    t.add_column("method")
    for col in ("overall", "many", "medium", "few"):
        t.add_column(col, justify="right")
    for label, rec in result.records.items():
        m = rec["metrics"]
        t.add_row(label, *(fmt_cell(m[c], None) for c in ("overall", "many", "medium", "few")))
    Console().print(t)
    if result.reused:
        stderr_console.print(f"reused finished steps: {', '.join(result.reused)}")
    stderr_console.print(f"done in {result.seconds:.0f} s; results in {result.out}/results/, "
                         f"leaderboard {result.files['leaderboard']}, plot {result.files['plot']}")
