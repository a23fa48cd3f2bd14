"""`ltbench datasets`: list the known datasets, or describe (and verify) one."""

from __future__ import annotations

import json as jsonlib

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from lt_bench.data import (dataset_info, list_datasets, load_dataset, parse_dataset_options,
                           shot_groups, verify_images)
from lt_bench.errors import LTBenchError
from lt_bench.log import progress_bar
from lt_bench.pipeline.configs import DatasetsConfig

from .._options import command, derive

_MAX_BAD_SHOWN = 50


@command(derive(DatasetsConfig), doc="Known datasets and where their files are; with --dataset, its splits, classes, "
                                     "shot groups.")
def datasets(ctx: typer.Context, p: dict) -> None:
    # A pipe gets 120 columns rather than rich's 80, so the tables stay readable in a file.
    probe = Console()
    out = Console(width=None if probe.is_terminal else 120)
    if not p["dataset"]:
        _list(out, p["json"])
        return
    name = p["dataset"]
    info = dataset_info(name)  # unknown dataset -> error listing the known ones
    options = parse_dataset_options(name, p["option"])
    if p["imbalance"] is not None:
        if "imbalance" in options:
            raise LTBenchError("imbalance given twice (--imbalance and --option imbalance=...): keep one")
        options["imbalance"] = p["imbalance"]
    if "seed" in info.options and "seed" not in options:
        options["seed"] = p["seed"]
    ds = load_dataset(name, root=p["root"], splits_dir=p["splits_dir"], **options)
    summary = _summary(ds, p)
    bad = None
    if p["verify"]:
        bad = _verify(ds)
        summary["verify"] = {"checked": sum(len(s) for s in ds.splits.values()),
                             "bad": [{"split": b.split, "id": b.id, "reason": b.reason} for b in bad]}
    if p["json"]:
        typer.echo(jsonlib.dumps(summary, indent=2))
    else:
        _render(out, summary, bad)
    if bad:
        first = ", ".join(f"{b.split}:{b.id} ({b.reason.split(':')[0]})" for b in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise LTBenchError(f"{len(bad)} of {summary['verify']['checked']} images of {name} are "
                           f"missing or cannot be decoded: {first}{more}; fix or remove them "
                           f"(or check --root)")


def _list(out: Console, as_json: bool) -> None:
    infos = [dataset_info(n) for n in list_datasets()]
    if as_json:
        typer.echo(jsonlib.dumps([{"name": i.name, "description": i.description,
                                "location": i.location, "options": i.options} for i in infos],
                              indent=2, default=str))
        return
    table = Table(title="Known datasets (ltbench datasets --dataset NAME for counts)")
    table.add_column("dataset", style="bold", no_wrap=True)
    table.add_column("description", overflow="fold")
    table.add_column("files (default location)", overflow="fold")
    table.add_column("options", overflow="fold")
    for i in infos:
        opts = ", ".join(f"{k}={v}" for k, v in i.options.items()) or "-"
        table.add_row(i.name, i.description, i.location or "-", opts)
    out.print(table)


def _summary(ds, p) -> dict:
    counts = ds.train_counts
    groups = shot_groups(counts)
    splits = {}
    for name, s in ds.splits.items():
        per = np.bincount(s.labels, minlength=ds.num_classes)
        splits[name] = {"images": len(s), "classes_present": int((per > 0).sum()),
                        "per_class_max": int(per.max()), "per_class_min": int(per.min())}
    return {
        "dataset": ds.name,
        "location": ds.location or None,
        "root": str(p["root"]) if p["root"] else None,
        "splits_dir": str(p["splits_dir"]) if p["splits_dir"] else None,
        "options": ds.options,
        "num_classes": ds.num_classes,
        "splits": splits,
        "train_per_class": {"max": int(counts.max()), "min": int(counts.min())},
        "shot_groups": {k: int(v.sum()) for k, v in groups.items()},
    }


def _render(out: Console, s: dict, bad) -> None:
    table = Table(title=s["dataset"])
    table.add_column("split", style="bold")
    table.add_column("images", justify="right")
    table.add_column("classes", justify="right")
    table.add_column("per class max..min", justify="right")
    for name, sp in s["splits"].items():
        table.add_row(name, f"{sp['images']:,}", f"{sp['classes_present']}",
                      f"{sp['per_class_max']}..{sp['per_class_min']}")
    out.print(table)
    g = s["shot_groups"]
    out.print(f"classes: {s['num_classes']}", highlight=False)
    out.print(f"many / medium / few-shot classes: {g['many']} / {g['medium']} / {g['few']}",
              highlight=False)
    out.print(f"train per class: {s['train_per_class']['max']}..{s['train_per_class']['min']}",
              highlight=False)
    if s["options"]:
        out.print("options: " + ", ".join(f"{k}={v}" for k, v in s["options"].items()),
                  highlight=False)
    if s["location"]:
        out.print(f"files: {s['location']}", highlight=False)
    if bad is not None:
        checked = s["verify"]["checked"]
        if not bad:
            out.print(f"verify: all {checked:,} images exist and decode")
            return
        out.print(f"verify: {len(bad)} bad of {checked:,} images:")
        for b in bad[:_MAX_BAD_SHOWN]:
            out.print(f"  {b.split}: {b.id}: {b.reason}", highlight=False, markup=False)
        if len(bad) > _MAX_BAD_SHOWN:
            out.print(f"  ... and {len(bad) - _MAX_BAD_SHOWN} more (--json lists all)")


def _verify(ds):
    total = sum(len(s) for s in ds.splits.values())
    with progress_bar("verifying images") as progress:
        task = progress.add_task("verify", total=total)
        return verify_images(ds, progress=lambda n: progress.advance(task, n))
