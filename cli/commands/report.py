"""`ltbench report`: result files -> leaderboard tables (+ published numbers) and a plot."""

from __future__ import annotations

import io
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from lt_bench.io import write_text
from lt_bench.report import build_tables, load_results, render
from lt_bench.report.plots import plot_per_class

from .._common import config_option, resolve_options, write_resolved_config


class Format(str, Enum):
    rich = "rich"
    md = "md"
    latex = "latex"
    csv = "csv"


def rich_to_text(tables, width: int = 160) -> str:
    """Plain-text rendering of rich tables (for --out with --format rich)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, no_color=True, force_terminal=False)
    for t in tables:
        console.print(t)
        console.print()
    return buf.getvalue()


def print_report(results, fmt: str = "rich", out: Path | None = None, published: bool = True,
                 bold_best: bool = True) -> None:
    """Render the tables of ``results`` to stdout or ``out`` (atomically); shared with reproduce."""
    tables = build_tables(results, published=published)
    if len(tables) > 1:
        typer.echo(f"ltbench: note: the results are of {len(tables)} datasets "
                   f"({', '.join(t.dataset for t in tables)}); one table per dataset", err=True)
    rendered = render(tables, fmt, bold_best=bold_best)
    if fmt == "rich":
        if out is not None:
            write_text(out, rich_to_text(rendered))
        else:
            from rich.console import Console

            console = Console()
            if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
                console = Console(width=max(console.width, 160))
            for t in rendered:
                console.print(t)
                console.print()
        return
    if out is not None:
        write_text(out, rendered)
    else:
        typer.echo(rendered, nl=False)


def report(
    ctx: typer.Context,
    results: List[Path] = typer.Argument(..., help="Result files written by `ltbench eval --json`.",
                                         show_default=False),
    format: Format = typer.Option(Format.rich, "--format", "-f",
                                  help="rich (terminal table), md, latex (booktabs) or csv."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write a PNG of per-class accuracy "
                                        "against training-image count (log x, shot groups shaded)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the table here (atomically) "
                                       "instead of stdout."),
    published: bool = typer.Option(True, "--published/--no-published",
                                   help="Show the published numbers (REFERENCE.md) for the same dataset "
                                        "and backbone as reference rows."),
    bold_best: bool = typer.Option(True, "--bold-best/--no-bold-best",
                                   help="Mark the best value of each column (md, latex, rich)."),
    config: Optional[Path] = config_option(),
    seed: int = typer.Option(0, "--seed", hidden=True, help="Unused (every command takes it)."),
    device: str = typer.Option("auto", "--device", hidden=True, help="Unused (every command takes it)."),
) -> None:
    """Leaderboard of result files: seeds of one configuration as mean ± std (n shown),
    published numbers as reference rows, one table per dataset."""
    p = resolve_options(ctx, config)
    loaded = load_results(p["results"])
    fmt = p["format"].value if isinstance(p["format"], Enum) else str(p["format"])
    print_report(loaded, fmt, p["out"], p["published"], p["bold_best"])
    if p["out"] is not None:
        write_resolved_config(Path(p["out"]), p, "report")
    if p["plot"] is not None:
        written = plot_per_class(loaded, p["plot"])
        typer.echo(f"ltbench: wrote plot {written}", err=True)
