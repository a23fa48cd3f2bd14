"""`ltbench finetune`: Phase A contrastive finetuning (one process, or many under torchrun)."""

from __future__ import annotations

import json

import typer

from lt_bench.pipeline.configs import FinetuneConfig

from .._options import command, derive, require


@command(derive(FinetuneConfig), doc="""Phase A: finetune both CLIP towers contrastively on the long-tailed train set.

    Plain: one process. Under `torchrun --nproc_per_node N --no-python ltbench finetune ...`: DDP
    over N processes (NCCL on GPUs, gloo on CPU); --batch-size stays the global batch.
    """)
def finetune(ctx: typer.Context, p: dict) -> None:
    from lt_bench import distributed as dist_
    from lt_bench.options import from_values
    from lt_bench.pipeline import run_finetune

    require(ctx, FinetuneConfig, p)
    summary = run_finetune(from_values(FinetuneConfig, p))
    if dist_.env_rank() == 0:
        typer.echo(json.dumps(summary))
