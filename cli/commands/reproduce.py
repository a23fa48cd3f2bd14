"""`ltbench reproduce`: a recipe -> finetune, extract, adapt, eval (skipping finished steps) -> table.

Each step runs as a subprocess of the ``ltbench`` console script beside ``sys.executable``, so
a step's crash, memory or CUDA state never leaks into the next, and the exact command lines
can be printed (``--dry-run``) and rerun by hand.
"""

from __future__ import annotations

import subprocess
import sys
import time
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from lt_bench.errors import LTBenchError
from lt_bench.io import write_text
from lt_bench.report import load_results
from lt_bench.report.plots import plot_per_class
from lt_bench.report.recipes import STEPS, Plan, load_recipe, make_plan, shipped_recipes, validate_recipe

from .._common import config_option, device_option, resolve_options, seed_option, write_resolved_config
from .report import Format, print_report


def ltbench_prefix() -> list[str]:
    """The console script of this environment (or ``python -m lt_bench_cli``)."""
    exe = Path(sys.executable).with_name("ltbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lt_bench_cli"]


def _command_specs() -> tuple[dict, dict]:
    """Option spellings and names of the installed step commands (those that take options)."""
    from ..app import app

    group = typer.main.get_command(app)
    specs, names = {}, {}
    for step in STEPS:
        # Duck-typed: typer may bring its own copy of click, so no isinstance on click classes.
        cmd = getattr(group, "commands", {}).get(step)
        params = [p for p in (cmd.params if cmd else []) if getattr(p, "param_type_name", "") == "option"]
        if not params or all(p.name == "help" for p in params):
            continue  # a stub: the recipe mapping table alone decides
        spec = {}
        for p in params:
            longs = [o for o in p.opts if o.startswith("--")] or list(p.opts)
            neg = [o for o in p.secondary_opts if o.startswith("--")]
            spec[p.name] = (longs[0], neg[0] if neg else None, not p.is_flag)
        specs[step] = spec
        names[step] = {p.name for p in cmd.params if p.name}
    return specs, names


def _recipe_help() -> str:
    try:
        return "Shipped recipe name (" + ", ".join(shipped_recipes()) + ") or a path to a recipe .toml."
    except Exception:  # never let help text break the CLI
        return "Shipped recipe name or a path to a recipe .toml."


def reproduce(
    ctx: typer.Context,
    recipe: str = typer.Argument(..., help=_recipe_help(), show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory: finetune/, features.h5, heads/, "
                             "results/*.json, plan.sh.", show_default=False),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset root (overrides the recipe's)."),
    splits_dir: Optional[str] = typer.Option(None, "--splits-dir", help="Split files folder (overrides "
                                             "the recipe's)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands it would run (skipped "
                                 "steps as comments) and exit."),
    set_: List[str] = typer.Option([], "--set", help="Override a recipe key: SECTION.KEY=VALUE (TOML "
                                   "value), e.g. adapt.epochs=1; repeatable."),
    force: bool = typer.Option(False, "--force", help="Run every step, even those already complete."),
    nproc_per_node: int = typer.Option(1, "--nproc-per-node", help="Run finetune and extract under "
                                       "torchrun with this many processes."),
    format: Format = typer.Option(Format.rich, "--format", "-f", help="Format of the final table."),
    config: Optional[Path] = config_option(),
    seed: int = seed_option(),
    device: str = device_option(),
) -> None:
    """Reproduce a recipe: finetune, extract, adapt and eval in order, skipping steps whose
    outputs are complete, then print the report table of OUT/results/*.json."""
    p = resolve_options(ctx, config)
    rec = load_recipe(p["recipe"], overrides=p["set_"])
    specs, names = _command_specs()
    validate_recipe(rec, str(rec.path or f"recipe {rec.name!r}"), command_options=names)
    n = int(p["nproc_per_node"])
    if n < 1:
        raise LTBenchError(f"--nproc-per-node must be at least 1 (got {n})")

    def launcher(step: str):
        if n > 1 and step in ("finetune", "extract"):
            return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={n}", "-m", "lt_bench_cli"]
        return None

    device_arg = None if p["device"] == "auto" else p["device"]
    plan = make_plan(rec, p["out"], root=p["root"], splits_dir=p["splits_dir"], seed=p["seed"],
                     device=device_arg, ltbench=ltbench_prefix(), specs=specs, launcher=launcher,
                     force=p["force"])
    report_line = " ".join([*ltbench_prefix(), "report", *map(str, plan.results)])
    if p["dry_run"]:
        for line in plan.lines():
            typer.echo(line)
        typer.echo(report_line)
        return
    plan.out.mkdir(parents=True, exist_ok=True)
    write_resolved_config(plan.out, p, "reproduce")
    _run(plan, rec)
    fmt = p["format"].value if isinstance(p["format"], Enum) else str(p["format"])
    results = load_results(plan.results)
    print_report(results, fmt)
    try:
        png = plot_per_class(results, plan.out / "per_class.png")
        typer.echo(f"ltbench reproduce: wrote plot {png}", err=True)
    except LTBenchError as e:  # a plot is a bonus; the table is the result
        typer.echo(f"ltbench reproduce: no plot: {e}", err=True)


def _run(plan: Plan, rec) -> None:
    out = plan.out
    out.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# applied on top: --set {o}\n" for o in rec.overrides)
    write_text(out / "recipe.toml", header + rec.text)
    write_text(out / "plan.sh", "#!/bin/sh\n# written by `ltbench reproduce`; skipped steps as comments\nset -e\n"
               + "\n".join(plan.lines()) + "\n")
    todo = [s for s in plan.steps if not s.skip]
    for s in plan.steps:
        if s.skip:
            typer.echo(f"ltbench reproduce: skip {s.name}: {s.reason}", err=True)
    for i, s in enumerate(todo, 1):
        typer.echo(f"ltbench reproduce: [{i}/{len(todo)}] {s.name}: {s.shell()}", err=True)
        t0 = time.time()
        # The step's stdout goes to our stderr: our stdout carries only the final table.
        sys.stderr.flush()
        try:
            fd = sys.stderr.fileno()
        except (OSError, ValueError):  # a stderr without a file descriptor (captured, embedded)
            fd = None
        rc = subprocess.call(s.argv, stdout=fd)
        if rc != 0:
            raise LTBenchError(f"step {s.name} failed (exit {rc}); fix it and rerun the same "
                               f"`ltbench reproduce` (finished steps are skipped): {s.shell()}")
        if s.marker is not None:
            write_text(s.marker, f"finished {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        typer.echo(f"ltbench reproduce: {s.name} done in {time.time() - t0:.1f} s", err=True)
