"""`ltbench leaderboard FEATURES.h5 --out DIR`: every method tuned on val, several seeds, one table."""

from __future__ import annotations

import typer

from lt_bench.pipeline.configs import LeaderboardConfig

from .._options import command, derive, require


@command(derive(LeaderboardConfig), doc="""Tune every method (or --methods a,b) on the val split, fit each selection with --seeds
    seeds on train, evaluate on test, and table them beside the published numbers.

    Rows: methods, best first; columns: overall / many / medium / few (mean ± std over seeds),
    a bootstrap 95 % interval of overall accuracy (test images resampled), the val score, the
    selected hyperparameters and the training seconds. Writes DIR/leaderboard.{md,tex,csv,json}
    and DIR/per_class_accuracy.png; a rerun with the same DIR reuses finished work.
    """)
def leaderboard(ctx: typer.Context, p: dict) -> None:
    from lt_bench.log import stderr_console
    from lt_bench.options import from_values
    from lt_bench.pipeline import run_leaderboard
    from lt_bench.tune import render_csv, render_latex, render_markdown, render_rich

    from .report import print_rendered

    require(ctx, LeaderboardConfig, p)
    cfg = from_values(LeaderboardConfig, p)
    board = run_leaderboard(cfg)
    render = {"rich": lambda b: [render_rich(b)], "md": render_markdown, "latex": render_latex, "csv": render_csv}
    print_rendered(render[cfg.format](board), cfg.format)
    stderr_console.print(f"wrote {', '.join(str(f) for f in board.files.values())}")
