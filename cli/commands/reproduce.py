"""`ltbench reproduce`: a recipe -> finetune, extract, adapt, eval (skipping finished steps) -> table.

The steps run in this process through `lt_bench.pipeline` (finetune and extract under torchrun
with --nproc-per-node > 1); --dry-run prints the equivalent `ltbench` command lines.
"""

from __future__ import annotations

import typer

from lt_bench.pipeline.configs import ReportConfig, ReproduceConfig

from .._options import command, derive, require
from .report import print_rendered


@command(derive(ReproduceConfig), doc="""Reproduce a recipe: finetune, extract, adapt and eval in order, skipping steps whose
    outputs are complete, then print the report table of OUT/results/*.json.""")
def reproduce(ctx: typer.Context, p: dict) -> None:
    from lt_bench.errors import LTBenchError
    from lt_bench.options import check_options, from_values
    from lt_bench.pipeline import load_recipe, make_plan, run_plan, run_report

    require(ctx, ReproduceConfig, p)
    cfg = from_values(ReproduceConfig, p)
    check_options(cfg)
    rec = load_recipe(cfg.recipe, overrides=list(cfg.set_))
    plan = make_plan(rec, cfg.out, root=cfg.root, splits_dir=cfg.splits_dir, seed=cfg.seed, device=cfg.device,
                     nproc_per_node=cfg.nproc_per_node, force=cfg.force)
    report_line = " ".join(["ltbench", "report", *map(str, plan.results)])
    if cfg.dry_run:
        for line in plan.lines():
            typer.echo(line)
        typer.echo(report_line)
        return
    run_plan(plan, cfg)
    from lt_bench.report import load_results
    from lt_bench.report.plots import plot_per_class

    results = load_results(plan.results)
    print_rendered(run_report(ReportConfig(format=cfg.format), results=results).rendered, cfg.format)
    try:
        typer.echo(f"ltbench reproduce: wrote plot {plot_per_class(results, plan.out / 'per_class.png')}", err=True)
    except LTBenchError as e:  # a plot is a bonus; the table is the result
        typer.echo(f"ltbench reproduce: no plot: {e}", err=True)
