"""`ltbench report`: result files -> leaderboard tables (+ published numbers) and a plot."""

from __future__ import annotations

import typer

from lt_bench.pipeline.configs import ReportConfig

from .._options import command, derive, require


def print_rendered(rendered, fmt: str) -> None:
    """A report's tables to stdout (rich tables unsqueezed when piped)."""
    if fmt != "rich":
        typer.echo(rendered, nl=False)
        return
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=max(console.width, 160))
    for t in rendered:
        console.print(t)
        console.print()



@command(derive(ReportConfig), doc="""Leaderboard of result files: seeds of one configuration as mean ± std (n shown),
    published numbers as reference rows, one table per dataset.""")
def report(ctx: typer.Context, p: dict) -> None:
    from lt_bench.options import from_values
    from lt_bench.pipeline import run_report

    require(ctx, ReportConfig, p)
    cfg = from_values(ReportConfig, p)
    result = run_report(cfg)
    if cfg.out is None:
        print_rendered(result.rendered, cfg.format)
