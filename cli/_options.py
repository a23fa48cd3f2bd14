"""Typer commands derived from the pipeline's config dataclasses (``lt_bench.options``).

A command is a function ``body(ctx, params)`` plus the dataclasses whose option fields become
its options: names, defaults, types, choices and help all come from the fields, so an option
is defined once. ``--config FILE.toml`` is added to every command and merged by
``_common.resolve_options`` (defaults < config file < command line).
"""

from __future__ import annotations

import dataclasses
import inspect
from enum import Enum
from typing import Any, Callable, List, Optional

import click
import typer

from lt_bench.options import base_type, field_types, flag_of, meta, option_fields, option_name

from ._common import config_option, resolve_options

_ENUMS: dict[tuple, type] = {}


def _choice_enum(name: str, choices: tuple) -> type:
    """A str Enum of the choices (Typer's portable way to offer a choice)."""
    key = (name, choices)
    if key not in _ENUMS:
        _ENUMS[key] = Enum("".join(w.title() for w in name.split("_")), {c: c for c in choices}, type=str)
    return _ENUMS[key]


def _cli_type(tp: Any, m: dict) -> Any:
    if m["cli_type"] is not None:
        tp = m["cli_type"]
    if getattr(tp, "__origin__", None) in (list, tuple):
        return List[str]
    return tp


def derive(cls, *, exclude: tuple[str, ...] = (), unset: bool = False, help_suffix: str = "") -> list[inspect.Parameter]:
    """Typer parameters for the option fields of ``cls``.

    Args:
        cls: a config dataclass.
        exclude: option names to leave out (set by the command itself).
        unset: every option defaults to None ("not given": the library fills its default).
        help_suffix: appended to each option's help (e.g. where an unset option's value comes from).
    """
    hints = field_types(cls)
    params = []
    for f in option_fields(cls):
        m, name = meta(f), option_name(f)
        if not m["cli"] or name in exclude:
            continue
        tp = _cli_type(base_type(hints[f.name])[0], m)
        default = None
        if not (unset or m["required"]):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            if isinstance(default, (tuple, list)) and tp is str:
                default = ",".join(default)
            if isinstance(default, dict):
                default = None
        if m["choices"]:
            tp = _choice_enum(name, m["choices"])
            default = tp(default) if default is not None else None
        text = m["help"] + (f" ({help_suffix})" if unset and help_suffix else "")
        if m["argument"]:
            # never required by click: a required argument may come from --config (`require` checks)
            info = typer.Argument(default, help=text, show_default=False, metavar=name.upper())
        else:
            decls = [m["flag"] or "--" + name.replace("_", "-")] + ([m["short"]] if m["short"] else [])
            info = typer.Option(default, *decls, help=text, hidden=m["hidden"], show_default=default is not None)
        annotation = Optional[tp] if default is None else tp
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation))
    return params


def command(*params: list[inspect.Parameter], doc: str) -> Callable:
    """Decorator: ``body(ctx, options)`` becomes a Typer command taking ``params`` + ``--config``.

    ``options`` are the merged values by option name (``--config`` applied).
    """
    flat = [p for group in params for p in group]
    names = [p.name for p in flat]
    if len(set(names)) != len(names):
        raise ValueError(f"an option is defined twice: {sorted(n for n in names if names.count(n) > 1)}")

    def deco(body: Callable[[typer.Context, dict], Any]) -> Callable:
        def cmd(ctx: typer.Context, **kwargs):
            return body(ctx, resolve_options(ctx, kwargs.get("config")))

        sig = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context), *flat,
               inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=config_option(),
                                 annotation=Optional[str])]
        cmd.__signature__ = inspect.Signature(sig)
        cmd.__annotations__ = {p.name: p.annotation for p in sig}
        cmd.__name__, cmd.__doc__ = body.__name__, doc
        return cmd

    return deco


def require(ctx: typer.Context, cls, values: dict) -> None:
    """A usage error (exit 2) for each required option of ``cls`` given neither on the command line
    nor in ``--config``."""
    for f in option_fields(cls):
        m = meta(f)
        if m["required"] and values.get(option_name(f)) in (None, "", ()):
            what = option_name(f).upper() if m["argument"] else f"option {flag_of(f)}"
            raise click.UsageError(f"missing {what} (on the command line or in --config)", ctx=ctx)
