"""`ltbench eval`."""

from __future__ import annotations

import typer


def eval_() -> None:
    """(coming: see the open issues) Not implemented yet."""
    typer.echo("ltbench eval: not implemented yet; it comes with a later change", err=True)
    raise typer.Exit(1)
