"""`ltbench extract`: run the backbone once over a dataset's splits into a feature cache.

Single process when launched plainly; under `torchrun --nproc_per_node N --no-python ltbench
extract ...` every rank computes a share of each round of batches and rank 0 writes.
"""

from __future__ import annotations

import typer

from lt_bench.pipeline.configs import ExtractConfig

from .._options import command, derive, require


@command(derive(ExtractConfig), doc="Extract image and text features once into an HDF5 cache "
                                    "(resumable; torchrun-shardable).")
def extract(ctx: typer.Context, p: dict) -> None:
    from lt_bench import distributed as dist_
    from lt_bench.options import from_values
    from lt_bench.pipeline import run_extract

    require(ctx, ExtractConfig, p)
    cfg = from_values(ExtractConfig, p)
    result = run_extract(cfg)
    if dist_.env_rank() != 0:
        return
    if result.status == "written":
        parts = [f"{s} {n} rows" + (f" ({result.skipped[s]} skipped)" if result.skipped.get(s) else "")
                 for s, n in result.rows.items()]
        typer.echo(f"{cfg.out}: " + ", ".join(parts))
    else:
        typer.echo(f"{cfg.out}: up to date")
