"""One definition per option: config dataclass fields that carry their help, choices and bounds.

Each step's config dataclass (``FinetuneConfig``, ``ExtractConfig``, ``AdaptConfig``, ...) is the
single source of its options' names, defaults, types, choices and help. ``ltbench``'s Typer
options are derived from these fields (``lt_bench_cli._options``), recipes are checked against
them, and ``check_options`` validates values once, for every caller (CLI, demo, reproduce,
Python)::

    @dataclass
    class Config:
        epochs: int = option(10, "Passes over the train set.", min=1)
        loss: str = option("ce", "Training loss.", choices=("ce", "logit_adjusted"))

A field without ``option(...)`` metadata is internal: no command-line option, no check.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import typing
from dataclasses import MISSING, Field
from typing import Any, Callable

from .errors import LTBenchError

_META = "lt_bench"


def option(default: Any = MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
           choices: tuple | None = None, min: float | None = None, max: float | None = None,
           gt: float | None = None, lt: float | None = None, flag: str | None = None,
           short: str | None = None, name: str | None = None, argument: bool = False,
           required: bool = False, cli: bool = True, from_cli: Callable[[Any, dict], Any] | None = None,
           cli_type: Any = None, hidden: bool = False) -> Any:
    """A dataclass field that is also a command-line option.

    Args:
        default: the default value (``factory`` for mutable ones).
        help: one line for ``--help``; also the field's documentation.
        choices: the allowed values (a choice on the command line, checked everywhere).
        min, max: inclusive bounds; ``gt``, ``lt``: exclusive bounds.
        flag: the option's spelling when not ``--field-name`` (e.g. ``"--views/--no-views"``).
        short: a short alias (``"-o"``).
        name: the option's (and config-file key's) name when it differs from the field's.
        argument: a positional argument instead of an option.
        required: must be given (on the command line or in ``--config``); missing is a usage
            error, exit 2.
        cli: False for a field the command line does not set.
        from_cli: converts the command-line value (and the other parsed values) to the field's.
        cli_type: the command-line type when it differs from the field's (``str`` for a list
            given comma-separated, ``list[str]`` for a repeated option).
        hidden: left out of ``--help``.
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None, "min": min, "max": max, "gt": gt,
            "lt": lt, "flag": flag, "short": short, "name": name, "argument": argument, "required": required,
            "cli": cli, "from_cli": from_cli, "cli_type": cli_type, "hidden": hidden}
    kw = {"metadata": {_META: meta}}
    if factory is not None:
        return dataclasses.field(default_factory=factory, **kw)
    return dataclasses.field(default=default, **kw)


def meta(f: Field) -> dict | None:
    """The option metadata of a dataclass field (None for an internal field)."""
    return f.metadata.get(_META)


def option_name(f: Field) -> str:
    """The option's name: its config-file key and, dashed, its flag (``--option-name``)."""
    m = meta(f) or {}
    return m.get("name") or f.name


def flag_of(f: Field) -> str:
    """How the command line spells the option (its first long flag)."""
    m = meta(f) or {}
    if m.get("flag"):
        return m["flag"].split("/")[0]
    return "--" + option_name(f).replace("_", "-")


def option_fields(cls) -> list[Field]:
    """The fields of ``cls`` that are options, in declaration order."""
    return [f for f in dataclasses.fields(cls) if meta(f) is not None]


def field_types(cls) -> dict[str, Any]:
    """The resolved type hints of ``cls``'s fields (the modules use postponed annotations)."""
    return typing.get_type_hints(cls)


def base_type(tp: Any) -> tuple[Any, bool]:
    """(the type without Optional, whether None is allowed)."""
    args = typing.get_args(tp)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else tp), True
    return tp, False


def check_options(cfg: Any) -> None:
    """Refuse values of the wrong type, outside their bounds or choices, with a message naming
    the option (``--flag``) and what to give instead.

    Bools are not ints and ints are not bools; floats must be finite.
    """
    hints = field_types(type(cfg))
    for f in option_fields(type(cfg)):
        m = meta(f)
        value = getattr(cfg, f.name)
        flag = flag_of(f)
        tp, nullable = base_type(hints[f.name])
        if value is None:
            if not nullable:
                raise LTBenchError(f"{flag} is required" if m["required"] else f"{flag} needs a value")
            continue
        _check_type(flag, value, tp)
        if m["choices"] and value not in m["choices"]:
            raise LTBenchError(f"{flag} {value!r}: use one of {', '.join(map(str, m['choices']))}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_bounds(flag, value, m)


def _check_type(flag: str, value: Any, tp: Any) -> None:
    if tp is bool:
        if not isinstance(value, bool):
            raise LTBenchError(f"{flag} takes true or false, not {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LTBenchError(f"{flag} takes a whole number, not {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LTBenchError(f"{flag} takes a number, not {value!r}")
        if not math.isfinite(value):
            raise LTBenchError(f"{flag} must be a finite number, not {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise LTBenchError(f"{flag} takes a string, not {value!r}")


def _check_bounds(flag: str, value: float, m: dict) -> None:
    for bound, ok, words in (("min", lambda b: value >= b, "at least"), ("max", lambda b: value <= b, "at most"),
                             ("gt", lambda b: value > b, "greater than"), ("lt", lambda b: value < b, "less than")):
        if m[bound] is not None and not ok(m[bound]):
            what = "positive" if (bound, m[bound]) == ("gt", 0) else f"{words} {m[bound]:g}"
            raise LTBenchError(f"{flag} must be {what} (got {value})")


def from_values(cls, values: dict[str, Any], **fixed) -> Any:
    """Build ``cls`` from option values keyed by option name (a command's parsed options, a
    ``--config`` file, a recipe section), converted by each field's ``from_cli``; unset (None)
    values keep the field's default. ``fixed`` are field values given directly.
    """
    kwargs = dict(fixed)
    for f in dataclasses.fields(cls):
        if f.name in kwargs:
            continue
        m = meta(f)
        key = option_name(f)
        if m is None or key not in values:
            continue
        v = values[key]
        v = plain(v)
        if m["from_cli"] is not None:
            v = m["from_cli"](v, values)
        if v is None and not m["required"]:
            continue
        kwargs[f.name] = v
    return cls(**kwargs)


def plain(value: Any) -> Any:
    """A command-line value as the config holds it: a choice's Enum member as its value, a path as
    a string."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


# -- converters shared by several configs --------------------------------------------------------

def comma_list(value: Any, _values: dict | None = None) -> tuple[str, ...]:
    """``"train,val"`` or ``["train", "val"]`` -> ``("train", "val")``."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(s.strip() for s in value.split(",") if s.strip())
    return tuple(str(s) for s in value)


def optional_str(value: Any, _values: dict | None = None) -> str | None:
    """A path or string, or None."""
    return None if value is None else str(value)


# -- options several steps share: one definition each ------------------------------------------

def _dataset_options(value: Any, values: dict) -> dict:
    """``--option key=value`` strings (typed by the loader's defaults), or a dict as is."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    from .data import parse_dataset_options

    return parse_dataset_options(values.get("dataset"), list(value))


def dataset_option(required: bool = True) -> Any:
    return option(None, "Dataset name (see `ltbench datasets`).", required=required)


def root_option() -> Any:
    return option(None, "Image root / dataset files.", from_cli=optional_str)


def splits_dir_option() -> Any:
    return option(None, "Folder of the split files (default: --root).", from_cli=optional_str)


def dataset_options_option() -> Any:
    return option(None, "Dataset loader option KEY=VALUE (repeatable).", factory=dict, name="option", short="-o",
                  cli_type=list[str], from_cli=_dataset_options)


def seed_option(default: int = 0) -> Any:
    return option(default, "Random seed (same seed, same result on CPU).")


def device_option() -> Any:
    return option("auto", "auto, cpu or cuda[:N].")


def out_option(help: str) -> Any:
    return option(None, help, required=True, from_cli=optional_str)


def to_cli_values(cfg: Any) -> dict[str, Any]:
    """The command-line options of ``cfg`` keyed by option name, in their command-line types
    (comma-joined lists, ``KEY=VALUE`` strings): a valid ``--config`` file's content."""
    out = {}
    for f in option_fields(type(cfg)):
        m = meta(f)
        if not m["cli"]:
            continue
        v = getattr(cfg, f.name)
        if isinstance(v, dict):
            v = [f"{k}={x}" for k, x in v.items()]
        elif m["cli_type"] is str and isinstance(v, (list, tuple)):
            v = ",".join(map(str, v))
        out[option_name(f)] = v
    return out


def to_argv(cfg: Any, skip: tuple[str, ...] = ()) -> list[str]:
    """``cfg`` as command-line arguments of its command (every option spelled out; None left
    off), so that the command rebuilds the same config."""
    args, options = [], []
    values = to_cli_values(cfg)
    for f in option_fields(type(cfg)):
        m, key = meta(f), option_name(f)
        if key not in values or key in skip or values[key] is None:
            continue
        v = values[key]
        if m["argument"]:
            args += [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]
            continue
        flag, _, negative = (m["flag"] or "--" + key.replace("_", "-")).partition("/")
        if isinstance(v, bool):
            if v or negative:
                options.append(flag if v else negative)
        elif isinstance(v, (list, tuple)):
            for x in v:
                options += [flag, str(x)]
        else:
            options += [flag, repr(v) if isinstance(v, float) else str(v)]
    return args + options
