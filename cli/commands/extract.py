"""`ltbench extract`."""

from __future__ import annotations

import typer


def extract() -> None:
    """(coming: see the open issues) Not implemented yet."""
    typer.echo("ltbench extract: not implemented yet; it comes with a later change", err=True)
    raise typer.Exit(1)
