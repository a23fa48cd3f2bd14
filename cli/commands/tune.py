"""`ltbench tune FEATURES.h5 --method M --out DIR`: select on val, then seeds on test."""

from __future__ import annotations

import typer

from lt_bench.pipeline.configs import TuneConfig

from .._options import command, derive, require


@command(derive(TuneConfig), doc="""Tune one method on a feature cache: search its declared hyperparameters on the val split
    only (Optuna, grid or TPE; the study lives in DIR/study.db, so a killed tune resumes), then
    fit the selection with --seeds seeds on all of train and evaluate on test.

    Without a val split, a seeded class-stratified 10 % of train is held out to select on.
    Writes DIR/results/seed*.json (the `ltbench eval --json` format, plus the tune) and
    DIR/tune.json; prints the selection and the test accuracy.
    """)
def tune(ctx: typer.Context, p: dict) -> None:
    from rich.table import Table

    from lt_bench.options import from_values
    from lt_bench.pipeline import run_tune
    from lt_bench.report.tables import fmt_cell
    from lt_bench.tune.board import fmt_params

    from .report import print_rendered

    require(ctx, TuneConfig, p)
    result = run_tune(from_values(TuneConfig, p))
    s = result.summary
    t = Table(title=f"ltbench tune: {s['method']} ({s['trials']} trials on {s['val_source']}, "
                    f"{len(s['seeds'])} seeds on test, top-1 %)")
    for col in ("selected", "val", "overall", "many", "medium", "few", "overall 95% CI", "train s"):
        t.add_column(col, justify="left" if col == "selected" else "right")
    g = {m: [v for v in s["test"][m] if v is not None] for m in s["test"]}
    cells = [fmt_cell(sum(v) / len(v) if v else None, _std(v)) for v in g.values()]
    t.add_row(fmt_params(s["selected"]), f"{s['val_score']:.1f}", *cells,
              "{:.1f}..{:.1f}".format(*s["overall_ci95"]), f"{sum(s['train_seconds']) / len(s['train_seconds']):.2f}")
    print_rendered([t], "rich")


def _std(v: list) -> float | None:
    import statistics

    return statistics.stdev(v) if len(v) >= 2 else None
