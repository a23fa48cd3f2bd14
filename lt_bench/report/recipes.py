"""Recipes: whole-pipeline configs (TOML) shipped in ``lt_bench/recipes/``, and the plan of
commands ``ltbench reproduce`` runs from one.

A recipe has the sections ``[recipe]`` (name, description: metadata), ``[dataset]`` (name,
root, splits_dir, options), and one section per step, ``[finetune]``, ``[extract]``,
``[adapt]``, ``[eval]``, whose keys are the option names of that ``ltbench`` command (with
underscores, as in the commands' own ``--config`` files). The keys ``reproduce`` fills in
itself (dataset, paths, seed, device) are not allowed there. ``[eval] methods`` is the one
key of reproduce's own: the baselines and/or the adapted head to evaluate.

``STEP_OPTIONS`` below is the single table of what each step accepts; the tests check it
against the real commands' options.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..errors import LTBenchError, known

STEPS = ("finetune", "extract", "adapt", "eval")
DEFAULT_HEAD = "ballad"  # the [adapt] head when a recipe names none (`ltbench adapt`'s default)
SECTIONS = ("recipe", "dataset", *STEPS)

# ---------------------------------------------------------------- the mapping table
# step -> keys a recipe may set (the command's option names). Adjust here when a command changes.
STEP_OPTIONS: dict[str, set[str]] = {
    "finetune": {
        "model", "pretrained", "loss", "logit_scale", "lock_image", "lock_text",
        "freeze_bn", "epochs", "batch_size", "accum_steps", "optimizer", "lr", "momentum",
        "weight_decay", "warmup_steps", "grad_clip", "precision", "augment", "workers",
        "val_fraction", "steps_per_epoch",
    },
    "extract": {
        "model", "pretrained", "splits", "views", "templates", "batch_size", "workers", "skip_bad",
    },
    "adapt": {
        "head", "loss", "tau", "sampler", "k_per_class", "epochs", "batch_size", "lr", "schedule", "momentum",
        "weight_decay", "alpha", "scale", "views", "select",
    },
    "eval": {"split", "posthoc_tau", "k"},
}
# Keys of reproduce's own (not passed to the command as options).
RECIPE_KEYS: dict[str, set[str]] = {
    "recipe": {"name", "description", "reference", "notes"},
    "dataset": {"name", "root", "splits_dir", "options"},
    "eval": {"methods"},
}
# Options reproduce sets itself; a recipe naming one is refused (it would be overridden).
RESERVED: dict[str, set[str]] = {
    "finetune": {"dataset", "root", "splits_dir", "option", "out", "seed", "device", "config", "resume",
                 "overwrite"},
    "extract": {"dataset", "root", "splits_dir", "option", "out", "seed", "device", "config", "overwrite"},
    "adapt": {"features", "out", "seed", "device", "config"},
    "eval": {"features", "head", "baseline", "json", "json_out", "seed", "device", "config"},
}
DATASET_OPTION_FLAG = "--option"  # `--option key=value`, repeated (finetune, extract)
FINETUNE_CHECKPOINT = "best.pt"  # what extract reads from the finetune run (best validation)
FINETUNE_LAST = "last.pt"
DONE_MARKER = ".reproduce-done"  # written by reproduce beside a step's output when it succeeded
BASELINES = ("zeroshot", "ncm", "knn")


# ---------------------------------------------------------------- recipes

@dataclass
class Recipe:
    name: str
    path: Path | None
    sections: dict[str, dict[str, Any]]
    text: str = ""  # the TOML as read
    overrides: tuple[str, ...] = ()  # --set SECTION.KEY=VALUE applied on top

    @property
    def description(self) -> str:
        return str(self.sections.get("recipe", {}).get("description", ""))

    @property
    def dataset(self) -> dict[str, Any]:
        return self.sections["dataset"]

    def step(self, name: str) -> dict[str, Any] | None:
        return self.sections.get(name)


def _recipes_dir():
    return resources.files("lt_bench").joinpath("recipes")


def shipped_recipes() -> dict[str, str]:
    """Shipped recipe names -> one-line descriptions."""
    out = {}
    for entry in sorted(_recipes_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out[entry.name.removesuffix(".toml")] = str(data.get("recipe", {}).get("description", ""))
    return out


def load_recipe(name_or_path: str | os.PathLike, overrides: list[str] | None = None) -> Recipe:
    """A shipped recipe by name, or a TOML file by path; validated (unknown keys named).

    ``overrides`` are ``section.key=value`` strings (value in TOML syntax, else a string).
    """
    s = str(name_or_path)
    path = Path(s)
    if s.endswith(".toml") or path.exists() or os.sep in s:
        if not path.is_file():
            raise LTBenchError(f"recipe file {path} does not exist; shipped recipes: {known(shipped_recipes())}")
        text, name = path.read_text(encoding="utf-8"), path.stem
    else:
        entry = _recipes_dir().joinpath(f"{s}.toml")
        if not entry.is_file():
            raise LTBenchError(f"unknown recipe {s!r}; shipped recipes: {known(shipped_recipes())} "
                               "(or give a path to a .toml file)")
        text, name, path = entry.read_text(encoding="utf-8"), s, None
    where = str(path) if path else f"recipe {name!r}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LTBenchError(f"{where} is not valid TOML: {e}") from None
    for ov in overrides or []:
        _apply_override(data, ov)
    recipe = Recipe(name=str(data.get("recipe", {}).get("name", name)), path=path, sections=data, text=text,
                    overrides=tuple(overrides or ()))
    validate_recipe(recipe, where)
    return recipe


def _apply_override(data: dict, override: str) -> None:
    key, sep, value = override.partition("=")
    section, dot, k = key.strip().partition(".")
    if not sep or not dot or not section or not k:
        raise LTBenchError(f"--set {override!r}: write SECTION.KEY=VALUE, e.g. adapt.epochs=1")
    try:
        v = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        v = value
    data.setdefault(section, {})[k.replace("-", "_")] = v


def validate_recipe(recipe: Recipe, where: str = "recipe",
                    command_options: dict[str, set[str]] | None = None) -> None:
    """Refuse unknown sections and keys, naming the key and the section.

    ``command_options`` (step -> option names of the real command) adds a check against the
    commands as installed, for steps whose command is known.
    """
    data = recipe.sections
    for section, body in data.items():
        if section not in SECTIONS:
            raise LTBenchError(f"{where}: unknown section [{section}]; sections: {', '.join(SECTIONS)}")
        if not isinstance(body, dict):
            raise LTBenchError(f"{where}: [{section}] must be a table of keys")
        for key in body:
            k = key.replace("-", "_")
            if section in STEP_OPTIONS and k in RESERVED[section]:
                raise LTBenchError(f"{where}: key {key!r} in section [{section}] is set by `ltbench reproduce` "
                                   "itself; remove it")
            allowed = STEP_OPTIONS.get(section, set()) | RECIPE_KEYS.get(section, set())
            if k not in allowed:
                raise LTBenchError(f"{where}: unknown key {key!r} in section [{section}]; "
                                   f"known: {known(allowed)}")
            if command_options and section in command_options and section in STEP_OPTIONS \
                    and k in STEP_OPTIONS[section] and k not in command_options[section]:
                raise LTBenchError(f"{where}: key {key!r} in section [{section}] is not an option of "
                                   f"`ltbench {section}` as installed")
    if "dataset" not in data or "name" not in data["dataset"]:
        raise LTBenchError(f"{where}: missing key 'name' in section [dataset]")
    if "extract" not in data:
        raise LTBenchError(f"{where}: missing section [extract]")
    if "finetune" not in data and "model" not in data["extract"]:
        raise LTBenchError(f"{where}: without [finetune], section [extract] needs key 'model'")
    opts = data["dataset"].get("options", {})
    if not isinstance(opts, dict):
        raise LTBenchError(f"{where}: key 'options' in section [dataset] must be a table")
    methods = data.get("eval", {}).get("methods", [])
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise LTBenchError(f"{where}: key 'methods' in section [eval] must be a list of names")
    head = data["adapt"].get("head", DEFAULT_HEAD) if "adapt" in data else None
    for m in methods:
        if m not in BASELINES and m != head:
            raise LTBenchError(f"{where}: [eval] methods names {m!r}, neither a baseline "
                               f"({', '.join(BASELINES)}) nor the [adapt] head ({head or 'none'})")


# ---------------------------------------------------------------- the plan

@dataclass
class Step:
    """One command of the plan: ``argv``; skipped (with ``reason``) when its output is complete."""

    name: str
    argv: list[str]
    output: Path
    skip: bool = False
    reason: str = ""
    marker: Path | None = None

    def shell(self) -> str:
        return shlex.join(self.argv)


@dataclass
class Plan:
    recipe: Recipe
    out: Path
    steps: list[Step] = field(default_factory=list)

    @property
    def results(self) -> list[Path]:
        return [s.output for s in self.steps if s.name.startswith("eval")]

    def lines(self) -> list[str]:
        """The plan as shell lines, skipped steps as comments."""
        out = []
        for s in self.steps:
            out.append(f"# skip {s.name}: {s.reason}" if s.skip else s.shell())
        return out


# How a command's options are spelled: name -> (flag, negative flag or None, takes a value).
OptionSpec = dict[str, tuple[str, str | None, bool]]


def _flag(key: str, value: Any, spec: OptionSpec | None) -> list[str]:
    if spec and key in spec:
        flag, neg, takes_value = spec[key]
    else:
        flag, neg, takes_value = "--" + key.replace("_", "-"), "--no-" + key.replace("_", "-"), not isinstance(value, bool)
    if isinstance(value, bool) and not takes_value:
        if value:
            return [flag]
        if neg is None:
            return []  # a plain flag left off is False
        return [neg]
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, float):
        value = repr(value)
    return [flag, str(value)]


def _options(step: str, body: dict[str, Any], spec: OptionSpec | None, skip: set[str] = frozenset()) -> list[str]:
    argv = []
    for key, value in body.items():
        k = key.replace("-", "_")
        if k in RECIPE_KEYS.get(step, set()) or k in skip or value is None:
            continue
        argv += _flag(k, value, spec)
    return argv


def finetune_done(run_dir: Path, epochs: int | None) -> tuple[bool, str]:
    """A finished Phase A run: reproduce's done-marker, or last.pt at the final epoch."""
    if (run_dir / DONE_MARKER).exists() and (run_dir / FINETUNE_CHECKPOINT).exists():
        return True, f"{run_dir} is a finished run ({DONE_MARKER})"
    last = run_dir / FINETUNE_LAST
    if last.exists() and epochs is not None:
        try:
            import torch

            ckpt = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
            done = int(ckpt.get("epoch", -1))  # epochs completed
        except Exception as e:  # a damaged file: run (resume will say what is wrong)
            return False, f"cannot read {last}: {e}"
        if done >= epochs and (run_dir / FINETUNE_CHECKPOINT).exists():
            return True, f"{last} has completed all {epochs} epochs"
        return False, f"{last} has completed {done} of {epochs} epochs"
    return False, ""


def make_plan(recipe: Recipe, out: str | os.PathLike, *, root: str | None = None,
              splits_dir: str | None = None, seed: int = 0, device: str | None = None,
              ltbench: list[str] | None = None, specs: dict[str, OptionSpec] | None = None,
              launcher: Callable[[str], list[str]] | None = None, force: bool = False) -> Plan:
    """The commands that reproduce ``recipe`` into ``out``, with complete steps marked skipped.

    Layout: ``out/finetune/`` (RUN_DIR), ``out/features.h5``, ``out/heads/<head>.pt``,
    ``out/results/<method>.json``. Once a step runs, every later step runs too (its inputs
    changed). ``launcher(step)`` may replace the ltbench prefix (e.g. torchrun) for a step.
    """
    out = Path(out)
    exe = list(ltbench or ["ltbench"])
    specs = specs or {}
    ds = recipe.dataset
    root = root if root is not None else ds.get("root")
    splits_dir = splits_dir if splits_dir is not None else ds.get("splits_dir")
    common = ["--seed", str(seed)] + (["--device", device] if device else [])
    data_args = ["--dataset", str(ds["name"])]
    if root:
        data_args += ["--root", str(root)]
    if splits_dir:
        data_args += ["--splits-dir", str(splits_dir)]
    for k, v in ds.get("options", {}).items():
        data_args += [DATASET_OPTION_FLAG, f"{k}={_scalar(v)}"]
    plan = Plan(recipe=recipe, out=out)
    stale = force  # set once a step runs: everything after it must run too

    def prefix(step: str) -> list[str]:
        return (launcher(step) if launcher else None) or exe

    def add(name: str, argv: list[str], output: Path, done: bool, reason: str, marker: Path | None = None):
        nonlocal stale
        skip = done and not stale
        if not skip:
            stale = True
        plan.steps.append(Step(name=name, argv=argv, output=output, skip=skip, reason=reason if skip else "",
                               marker=marker))

    ft = recipe.step("finetune")
    ex = dict(recipe.step("extract") or {})
    if ft is not None:
        run_dir = out / "finetune"
        epochs = ft.get("epochs")
        done, why = finetune_done(run_dir, epochs if epochs is not None else None)
        argv = [*prefix("finetune"), "finetune", *data_args, *_options("finetune", ft, specs.get("finetune")),
                "--out", str(run_dir), *common]
        if not done and (run_dir / FINETUNE_LAST).exists():
            argv.append("--resume")
        add("finetune", argv, run_dir, done, why, marker=run_dir / DONE_MARKER)
        ex.setdefault("model", ft.get("model"))
        ex["pretrained"] = str(run_dir / FINETUNE_CHECKPOINT)
    features = out / "features.h5"
    argv = [*prefix("extract"), "extract", *data_args, *_options("extract", ex, specs.get("extract")),
            "--out", str(features), *common]
    done = features.exists()
    if not done or stale:
        if done:
            argv.append("--overwrite")
    add("extract", argv, features, done, f"{features} exists")

    ad = recipe.step("adapt")
    head_path = None
    if ad is not None:
        head = str(ad.get("head", DEFAULT_HEAD))
        head_path = out / "heads" / f"{head}.pt"
        argv = [*exe, "adapt", str(features), *_options("adapt", ad, specs.get("adapt")),
                "--out", str(head_path), *common]
        add("adapt", argv, head_path, head_path.exists(), f"{head_path} exists")

    ev = recipe.step("eval") or {}
    methods = ev.get("methods") or (["zeroshot"] + ([str(ad.get("head", DEFAULT_HEAD))] if ad is not None else []))
    stale_before_eval = stale
    for m in methods:
        result = out / "results" / f"{m}.json"
        which = ["--baseline", m] if m in BASELINES and not (ad is not None and m == ad.get("head")) \
            else ["--head", str(head_path)]
        argv = [*exe, "eval", str(features), *which, *_options("eval", ev, specs.get("eval")),
                "--json", str(result), *common]
        # Evaluations are independent of one another: only upstream changes make them stale.
        stale = stale_before_eval
        add(f"eval {m}", argv, result, result.exists(), f"{result} exists")
    return plan


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
