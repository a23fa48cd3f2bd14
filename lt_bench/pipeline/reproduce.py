"""``ltbench reproduce``: a recipe -> the plan of steps -> run them in process, skipping done ones.

Every step is a config of ``lt_bench.pipeline.configs``, run by its ``run_*`` entry point in this
process; with ``nproc_per_node > 1`` finetune and extract run under ``torchrun`` (the one place a
step is a subprocess). Each step prints as the ``ltbench`` command line that does the same
(``--dry-run``, ``plan.sh``). A step is skipped by the reuse rules of ``steps.py``; once a step
runs, every later step runs too (its inputs changed).

Layout of OUT: ``finetune/`` (RUN_DIR), ``features.h5``, ``heads/<head>.pt``,
``results/<method>.json``, ``recipe.toml``, ``plan.sh``, ``config.toml``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import LTBenchError
from ..heads.config import RECIPE_OPTIONS
from ..io import write_text
from ..log import get_logger
from ..options import check_options, from_values, to_argv
from .configs import AdaptConfig, EvalConfig, ExtractConfig, FinetuneConfig
from .recipes import DEFAULT_HEAD, RECIPE_KEYS, Recipe
from .steps import (FINETUNE_BEST, extract_state, finetune_state, head_reusable, result_reusable, run_adapt,
                    run_eval, run_extract, run_finetune, train_config, write_resolved_config)

log = get_logger(__name__)

RUNNERS: dict[str, Callable[[Any], Any]] = {
    "finetune": run_finetune, "extract": run_extract, "adapt": run_adapt, "eval": run_eval}
DISTRIBUTED = ("finetune", "extract")  # steps torchrun can shard


@dataclass
class Step:
    """One step of the plan: its config; skipped (with ``reason``) when its output is done."""

    name: str  # "finetune", "extract", "adapt", "eval zeroshot", ...
    command: str  # the ltbench command
    config: Any
    output: Path
    skip: bool = False
    reason: str = ""
    launcher: list[str] = field(default_factory=list)  # torchrun's prefix, for a distributed step

    @property
    def argv(self) -> list[str]:
        """The command line that runs this step."""
        prefix = self.launcher or ["ltbench"]
        recipe = to_argv(train_config(self.config), skip=("head", "seed")) if self.command == "adapt" else []
        return [*prefix, self.command, *to_argv(self.config), *recipe]

    def shell(self) -> str:
        return shlex.join(self.argv)


@dataclass
class Plan:
    recipe: Recipe
    out: Path
    steps: list[Step] = field(default_factory=list)

    @property
    def results(self) -> list[Path]:
        return [s.output for s in self.steps if s.command == "eval"]

    def lines(self) -> list[str]:
        """The plan as shell lines, skipped steps as comments."""
        return [f"# skip {s.name}: {s.reason}" if s.skip else s.shell() for s in self.steps]


def _section(recipe: Recipe, step: str) -> dict[str, Any]:
    body = recipe.step(step) or {}
    return {k.replace("-", "_"): v for k, v in body.items() if k.replace("-", "_") not in RECIPE_KEYS.get(step, ())}


def make_plan(recipe: Recipe, out: str | Path, *, root: str | None = None, splits_dir: str | None = None,
              seed: int = 0, device: str = "auto", nproc_per_node: int = 1, force: bool = False) -> Plan:
    """The steps that reproduce ``recipe`` into ``out``, every option checked, done steps marked.

    Raises:
        LTBenchError: a recipe value a step would refuse (before any step runs).
    """
    out = Path(out)
    if nproc_per_node < 1:
        raise LTBenchError(f"--nproc-per-node must be at least 1 (got {nproc_per_node})")
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc-per-node={nproc_per_node}", "-m", "lt_bench_cli"] if nproc_per_node > 1 else [])
    ds = recipe.dataset
    data = {"dataset": str(ds["name"]), "root": root if root is not None else ds.get("root"),
            "splits_dir": splits_dir if splits_dir is not None else ds.get("splits_dir"),
            "dataset_options": dict(ds.get("options", {})), "seed": seed, "device": device}
    plan = Plan(recipe=recipe, out=out)
    stale = force  # set once a step runs: everything after it must run too

    def add(name: str, command: str, config, output: Path, done: bool, reason: str) -> Step:
        nonlocal stale
        skip = done and not stale
        stale = stale or not skip
        step = Step(name, command, config, output, skip, reason if skip else "",
                    launcher if command in DISTRIBUTED else [])
        plan.steps.append(step)
        return step

    extract_values = _section(recipe, "extract")
    if recipe.step("finetune") is not None:
        cfg = from_values(FinetuneConfig, _section(recipe, "finetune"), out=str(out / "finetune"), **data)
        state, why = finetune_state(cfg)
        cfg.resume = state == "resume" and not force
        cfg.overwrite = state == "changed" or (force and state != "fresh")
        cfg.validate()
        add("finetune", "finetune", cfg, Path(cfg.out), state == "done", why)
        extract_values.setdefault("model", cfg.model)
        extract_values["pretrained"] = str(Path(cfg.out) / FINETUNE_BEST)
    features = out / "features.h5"
    ex = from_values(ExtractConfig, extract_values, out=str(features), **data)
    ex.validate()
    state, why = extract_state(ex)
    # a stale cache (upstream ran) or another extraction is replaced; missing splits are added
    ex.overwrite = state == "different" or (stale and state != "fresh")
    done = state == "done"
    add("extract", "extract", ex, features, done, why)

    ad = _section(recipe, "adapt") if recipe.step("adapt") is not None else None
    head_path = None
    if ad is not None:
        head = str(ad.pop("head", DEFAULT_HEAD))
        head_path = out / "heads" / f"{head}.pt"
        cfg = AdaptConfig(features=str(features), head=head, out=str(head_path), seed=seed, device=device,
                          recipe={k: v for k, v in ad.items() if k in RECIPE_OPTIONS})
        recipe_cfg = train_config(cfg)  # refuses a bad value now, not after Phase A
        add("adapt", "adapt", cfg, head_path, not stale and _with_cache(features, head_reusable, head_path, recipe_cfg),
            f"{head_path} holds this recipe on this cache")

    ev = _section(recipe, "eval")
    methods = (recipe.step("eval") or {}).get("methods") or (["zeroshot"] + ([head] if ad is not None else []))
    stale_before_eval = stale
    for m in methods:
        result = out / "results" / f"{m}.json"
        which = {"head": str(head_path)} if (ad is not None and m == head) else {"baseline": m}
        cfg = from_values(EvalConfig, ev, features=str(features), json_out=str(result), seed=seed, device=device,
                          **which)
        check_options(cfg)
        stale = stale_before_eval  # evaluations are independent: only upstream changes make them stale
        add(f"eval {m}", "eval", cfg, result, not stale and _with_cache(features, result_reusable, result, cfg),
            f"{result} holds this evaluation")
    return plan


def _with_cache(features: Path, check: Callable[..., bool], *args) -> bool:
    """``check(*args, cache)`` on the cache at ``features``; False when there is none yet."""
    from ..errors import CacheError
    from ..features import FeatureCache

    if not features.is_file():
        return False
    try:
        with FeatureCache(features) as cache:
            return check(*args, cache)
    except CacheError:
        return False


def run_plan(plan: Plan, config: Any = None) -> None:
    """Run the plan's steps that are not skipped, in order, holding OUT's lock (``lt_bench.lock``).

    Args:
        plan: ``make_plan``'s.
        config: the resolved ``ReproduceConfig``, written as ``config.toml`` (when given).
    """
    from ..io import check_output
    from ..lock import output_lock

    check_output(plan.out, directory=True)
    with output_lock(plan.out, directory=True, stale=("config.toml", "recipe.toml", "plan.sh", "per_class.png")):
        if config is not None:
            write_resolved_config(plan.out, config, "reproduce")
        _run_plan(plan)


def _run_plan(plan: Plan) -> None:
    """Write ``recipe.toml`` and ``plan.sh``; run the steps that are not skipped."""
    out = plan.out
    header = "".join(f"# applied on top: --set {o}\n" for o in plan.recipe.overrides)
    write_text(out / "recipe.toml", header + plan.recipe.text)
    write_text(out / "plan.sh", "#!/bin/sh\n# written by `ltbench reproduce`; skipped steps as comments\nset -e\n"
               + "\n".join(plan.lines()) + "\n")
    for s in plan.steps:
        if s.skip:
            log.info("skip %s: %s", s.name, s.reason)
    todo = [s for s in plan.steps if not s.skip]
    for i, s in enumerate(todo, 1):
        log.info("[%d/%d] %s: %s", i, len(todo), s.name, s.shell())
        t0 = time.perf_counter()
        if s.launcher:
            _run_subprocess(s)
        else:
            RUNNERS[s.command](s.config)
        log.info("%s done in %.1f s", s.name, time.perf_counter() - t0)


def _run_subprocess(step: Step) -> None:
    """A distributed step under torchrun; its stdout goes to our stderr (stdout carries the table)."""
    sys.stderr.flush()
    try:
        fd = sys.stderr.fileno()
    except (OSError, ValueError):  # a stderr without a file descriptor (captured, embedded)
        fd = None
    rc = subprocess.call(step.argv, stdout=fd)
    if rc != 0:
        raise LTBenchError(f"step {step.name} failed (exit {rc}); fix it and rerun the same `ltbench reproduce` "
                           f"(finished steps are skipped): {step.shell()}")
