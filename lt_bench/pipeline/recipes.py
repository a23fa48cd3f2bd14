"""Recipes: whole-pipeline configs (TOML) shipped in ``lt_bench/recipes/``.

A recipe has the sections ``[recipe]`` (name, description: metadata), ``[dataset]`` (name,
root, splits_dir, options), and one section per step, ``[finetune]``, ``[extract]``,
``[adapt]``, ``[eval]``, whose keys are the option names of that step's config (``FinetuneConfig``,
``ExtractConfig``, ``AdaptConfig`` + the head's ``TrainConfig``, ``EvalConfig``): the schema is
derived from those dataclasses, never spelled twice. The keys ``reproduce`` fills in itself
(dataset, paths, seed, device) are not allowed there. ``[eval] methods`` is the one key of
reproduce's own: the baselines and/or the adapted head to evaluate.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import LTBenchError, known
from ..heads.config import BASELINES, RECIPE_OPTIONS
from ..options import option_fields, option_name
from .configs import AdaptConfig, EvalConfig, ExtractConfig, FinetuneConfig

STEPS = ("finetune", "extract", "adapt", "eval")
DEFAULT_HEAD = "ballad"  # the [adapt] head when a recipe names none (`ltbench adapt`'s default)
SECTIONS = ("recipe", "dataset", *STEPS)
STEP_CONFIGS = {"finetune": FinetuneConfig, "extract": ExtractConfig, "adapt": AdaptConfig, "eval": EvalConfig}
# Options reproduce sets itself; a recipe naming one is refused (it would be overridden).
RESERVED: dict[str, set[str]] = {
    "finetune": {"dataset", "root", "splits_dir", "option", "out", "seed", "device", "resume", "overwrite"},
    "extract": {"dataset", "root", "splits_dir", "option", "out", "seed", "device", "overwrite"},
    "adapt": {"features", "out", "seed", "device"},
    "eval": {"features", "head", "baseline", "json", "seed", "device"},
}
# Keys of reproduce's own (not options of a step).
RECIPE_KEYS: dict[str, set[str]] = {
    "recipe": {"name", "description", "reference", "notes"},
    "dataset": {"name", "root", "splits_dir", "options"},
    "eval": {"methods"},
}


def step_options(step: str) -> set[str]:
    """The keys a recipe may set in a step's section: its config's option names, less RESERVED."""
    names = {option_name(f) for f in option_fields(STEP_CONFIGS[step])}
    if step == "adapt":
        names |= set(RECIPE_OPTIONS)
    return names - RESERVED[step]


STEP_OPTIONS: dict[str, set[str]] = {s: step_options(s) for s in STEPS}


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


def validate_recipe(recipe: Recipe, where: str = "recipe") -> None:
    """Refuse unknown sections and keys, naming the key and the section."""
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
