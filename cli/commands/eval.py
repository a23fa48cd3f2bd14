"""`ltbench eval FEATURES.h5 (--head HEAD.pt | --baseline NAME)`: metrics table, optional JSON result."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from lt_bench.metrics import METRIC_KEYS
from lt_bench.pipeline.configs import EvalConfig

from .._options import command, derive, require

_LABELS = {"overall": "overall", "many": "many", "medium": "medium", "few": "few",
           "balanced_accuracy": "balanced acc", "macro_f1": "macro-F1", "harmonic_mean": "harmonic mean",
           "worst_class": "worst class", "ece": "ECE"}


def _cell(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_table(record: dict) -> Table:
    """The metrics of one result as a rich table (percent, one decimal; '-' for an empty group)."""
    title = f"{record.get('label') or record['head']} on {record['dataset']} / {record['model']} ({record['split']}"
    steps = [f"{name} {record['config'][key]:g}" for key, name in (("tau_norm", "tau-norm"), ("ensemble", "zero-shot w"))
             if record["kind"] == "trained" and record["config"].get(key) is not None]
    if record["posthoc_tau"]:
        steps.append(f"post-hoc tau {record['posthoc_tau']:g}")
    title += "".join(f", {s}" for s in steps) + ")"
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("%", justify="right")
    t.add_column("classes", justify="right")
    sizes = record["group_sizes"]
    for k in METRIC_KEYS:
        t.add_row(_LABELS[k], _cell(record["metrics"][k]), str(sizes[k]) if k in sizes else "")
    return t


@command(derive(EvalConfig), doc="""Evaluate a trained head or a baseline: overall, many / medium / few, F1, ECE, ...

    The table goes to stdout; `--json` writes the full result (per-class accuracies,
    provenance) for `ltbench report`.
    """)
def eval_(ctx: typer.Context, p: dict) -> None:
    from lt_bench.options import from_values
    from lt_bench.pipeline import run_eval

    require(ctx, EvalConfig, p)
    Console().print(render_table(run_eval(from_values(EvalConfig, p))))
