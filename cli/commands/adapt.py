"""`ltbench adapt`."""

from __future__ import annotations

import typer


def adapt() -> None:
    """(coming: see the open issues) Not implemented yet."""
    typer.echo("ltbench adapt: not implemented yet; it comes with a later change", err=True)
    raise typer.Exit(1)
