"""`ltbench eval FEATURES.h5 (--head HEAD.pt | --baseline NAME)`: metrics table, optional JSON result."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from lt_bench.errors import LTBenchError
from lt_bench.features import FeatureCache
from lt_bench.io import write_json
from lt_bench.log import get_logger
from lt_bench.metrics import METRIC_KEYS, evaluate
from lt_bench.report.results import result_record

# Spelled out so that `ltbench --help` need not import torch; tests/test_cli_help.py checks it
# against the registry.
BASELINES = ("knn", "ncm", "zeroshot")

from .._common import config_option, device_option, resolve_options, seed_option, write_resolved_config

log = get_logger("cli.eval")

_LABELS = {"overall": "overall", "many": "many", "medium": "medium", "few": "few",
           "balanced_accuracy": "balanced acc", "macro_f1": "macro-F1", "harmonic_mean": "harmonic mean",
           "worst_class": "worst class", "ece": "ECE"}


def _cell(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_table(record: dict) -> Table:
    """The metrics of one result as a rich table (percent, one decimal; '-' for an empty group)."""
    title = f"{record.get('label') or record['head']} on {record['dataset']} / {record['model']} ({record['split']}"
    title += f", post-hoc tau {record['posthoc_tau']:g})" if record["posthoc_tau"] else ")"
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("%", justify="right")
    t.add_column("classes", justify="right")
    sizes = record["group_sizes"]
    for k in METRIC_KEYS:
        t.add_row(_LABELS[k], _cell(record["metrics"][k]), str(sizes[k]) if k in sizes else "")
    return t


def eval_(
    ctx: typer.Context,
    features: Path = typer.Argument(..., help="Feature cache written by `ltbench extract`.", dir_okay=False),
    head: Optional[Path] = typer.Option(None, "--head", help="HEAD.pt written by `ltbench adapt`.", dir_okay=False),
    baseline: Optional[str] = typer.Option(None, "--baseline",
                                           help=f"Baseline instead of a head: {', '.join(BASELINES)}."),
    split: str = typer.Option("test", "--split", help="Split to evaluate: train, val or test."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON here.",
                                            dir_okay=False),
    posthoc_tau: float = typer.Option(0.0, "--posthoc-tau", help="Subtract tau * log(train prior) from the logits."),
    k: int = typer.Option(20, "--k", help="Neighbours of the knn baseline."),
    label: Optional[str] = typer.Option(None, "--label", help="Method name for tables (default: the head's name)."),
    config: Optional[Path] = config_option(),
    seed: int = seed_option(),
    device: str = device_option(),
) -> None:
    """Evaluate a trained head or a baseline: overall, many / medium / few, F1, ECE, ...

    The table goes to stdout; `--json` writes the full result (per-class accuracies,
    provenance) for `ltbench report`.
    """
    p = resolve_options(ctx, config)
    if (p["head"] is None) == (p["baseline"] is None):
        raise LTBenchError("give exactly one of --head HEAD.pt or --baseline NAME "
                           f"({', '.join(BASELINES)})")
    from lt_bench.heads.predict import baseline_logits, trained_logits

    with FeatureCache(p["features"]) as cache:
        if p["head"] is not None:
            pred = trained_logits(cache, p["head"], p["split"], p["device"])
        else:
            pred = baseline_logits(cache, p["baseline"], p["split"], p["device"], p["seed"], k=p["k"])
        ev = evaluate(pred.logits, pred.labels, cache.train_counts, posthoc_tau=p["posthoc_tau"])
        record = result_record(ev, head=pred.head, kind=pred.kind, split=p["split"], cache=cache,
                               config=pred.config,
                               # a trained head's seed is the one it was trained with, not eval's
                               seed=pred.config.get("seed", p["seed"]) if pred.kind == "trained" else p["seed"],
                               posthoc_tau=p["posthoc_tau"],
                               head_path=pred.head_path, label=p["label"])
    Console().print(render_table(record))
    if p["json_out"] is not None:
        write_json(p["json_out"], record)
        write_resolved_config(Path(p["json_out"]), {k_: (str(v) if isinstance(v, Path) else v) for k_, v in p.items()},
                              "eval")
        log.info("wrote %s", p["json_out"])
