"""What every command shares: --config TOML merging, errors, the resolved-config file.

Precedence: option defaults < ``--config FILE.toml`` (keys are the option names, with dashes or
underscores) < flags given on the command line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click
import typer

from lt_bench.errors import LTBenchError

# typer >= 0.2x runs on its own copy of click (typer._click): its exceptions and enums are not
# click's, so code that catches or compares them must accept both.
try:
    from typer import _click as _typer_click
    CLICK_MODULES = (click, _typer_click)
except ImportError:  # older typer: plain click
    CLICK_MODULES = (click,)
USAGE_ERRORS = tuple({m.exceptions.UsageError for m in CLICK_MODULES})
# typer's own click has no Abort of its own: its aborts are typer.Abort or click's
ABORTS = tuple({getattr(m.exceptions, "Abort", typer.Abort) for m in CLICK_MODULES})
CLICK_EXCEPTIONS = tuple({m.exceptions.ClickException for m in CLICK_MODULES})
_BAD_PARAMETER = tuple({m.exceptions.BadParameter for m in CLICK_MODULES})

CONFIG_HELP = "TOML file whose keys are this command's option names; flags given on the command line win."


def config_option():
    """``--config FILE.toml``, which every command takes (``_options.command`` adds it)."""
    return typer.Option(None, "--config", help=CONFIG_HELP, exists=False, dir_okay=False)


def resolve_options(ctx: typer.Context, config: Path | None) -> dict[str, Any]:
    """Return the command's parameters with ``--config`` values filled in where no flag was given.

    Unknown keys in the file are an error naming them.
    """
    params = dict(ctx.params)
    if config is None:
        return params
    config = Path(config)
    if not config.is_file():
        raise LTBenchError(f"config file {config} does not exist")
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise LTBenchError(f"config file {config} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise LTBenchError(f"config file {config} is not UTF-8 text: give a TOML file") from None
    by_name = {p.name: p for p in ctx.command.params if p.name}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in by_name or name == "config":
            known = ", ".join(sorted(n.replace("_", "-") for n in by_name if n != "config"))
            raise LTBenchError(f"unknown key {key!r} in {config}; `ltbench {ctx.command.name}` takes: {known}")
        source = ctx.get_parameter_source(name)
        if source is not None and source.name in ("DEFAULT", "DEFAULT_MAP"):
            param = by_name[name]
            if isinstance(value, list) and not getattr(param, "multiple", False) and getattr(param, "nargs", 1) == 1:
                value = ",".join(map(str, value))  # e.g. splits = ["train", "test"], as recipes write it
            flag = bool(getattr(param, "is_bool_flag", False))
            if isinstance(value, bool) != flag:  # click would take true as 1 and 0 as false
                if flag:
                    raise LTBenchError(f"{config}: key {key!r} takes true or false, not {value!r}")
                flag_name = "--" + name.replace("_", "-")
                raise LTBenchError(f"{config}: key {key!r} is {str(value).lower()}, a boolean, but {flag_name} "
                                   "is not a true/false option: give it a value of its type")
            try:
                params[name] = _cast(param, ctx, value)
            except _BAD_PARAMETER as e:
                raise LTBenchError(f"{config}: key {key!r}: {e.message}") from None
    return params


def _cast(param, ctx, value):
    """A config-file value converted as the option's own type would convert it."""
    if hasattr(param, "type_cast_value"):  # plain click
        return param.type_cast_value(ctx, value)
    return param.get_runtime_param().coerce(value, param=param, ctx=ctx)  # typer's own click
