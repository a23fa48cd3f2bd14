"""`ltbench demo`: the whole BALLAD pipeline on Fashion-MNIST-LT with the tiny model."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from lt_bench.pipeline.configs import DemoConfig

from .._options import command, derive


@command(derive(DemoConfig), doc="""Run the whole pipeline on real images on this machine: Phase A on Fashion-MNIST-LT with
    the tiny ViT, one extraction, then zero-shot, BALLAD, cosine + LA, NCM and kNN on the cache.

    Prints one table (overall / many / medium / few) and writes result JSONs, a leaderboard and a
    per-class accuracy plot under --out.
    """)
def demo(ctx: typer.Context, p: dict) -> None:
    from lt_bench.log import stderr_console
    from lt_bench.options import check_options, from_values
    from lt_bench.pipeline import run_demo
    from lt_bench.report.tables import fmt_cell

    cfg = from_values(DemoConfig, p)
    check_options(cfg)
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
