"""`ltbench demo`."""

from __future__ import annotations

import typer


def demo() -> None:
    """(coming: see the open issues) Not implemented yet."""
    typer.echo("ltbench demo: not implemented yet; it comes with a later change", err=True)
    raise typer.Exit(1)
