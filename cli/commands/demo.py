"""`ltbench demo`: the whole BALLAD pipeline on Fashion-MNIST-LT with the tiny model, ending in the leaderboard."""

from __future__ import annotations

import typer

from lt_bench.pipeline.configs import DemoConfig

from .._options import command, derive


@command(derive(DemoConfig), doc="""Run the whole pipeline on real images on this machine: Phase A on Fashion-MNIST-LT with
    the tiny ViT, one extraction, then the leaderboard on the cache: every method tuned on the
    val split, fitted with 3 seeds, evaluated on test.

    Prints the leaderboard (overall / many / medium / few, mean ± std over seeds, bootstrap 95 %
    interval, selected hyperparameters) and writes it under --out/leaderboard/ (Markdown, LaTeX,
    CSV, result JSONs, per-class accuracy plot).
    """)
def demo(ctx: typer.Context, p: dict) -> None:
    from lt_bench.log import stderr_console
    from lt_bench.options import check_options, from_values
    from lt_bench.pipeline import run_demo
    from lt_bench.tune import render_rich

    from .report import print_rendered

    cfg = from_values(DemoConfig, p)
    check_options(cfg)
    result = run_demo(cfg)
    print_rendered([render_rich(result.board)], "rich")
    if result.reused:
        stderr_console.print(f"reused finished steps: {', '.join(result.reused)}")
    stderr_console.print(f"done in {result.seconds:.0f} s; leaderboard {result.files['md']}, "
                         f"plot {result.files.get('plot')}")
