"""One registry of datasets; ``load_dataset`` is the public factory."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import LTBenchError, known
from .base import LTDataset

_REGISTRY: dict[str, Callable[..., LTDataset]] = {}
_INFO: dict[str, "DatasetInfo"] = {}

# Every loader takes these two; they are locations, not options.
_LOCATION_PARAMS = ("root", "splits_dir")


@dataclass(frozen=True)
class DatasetInfo:
    """What ``ltbench datasets`` lists: a one-line description and where the files are."""

    name: str
    description: str
    location: str
    options: dict[str, Any]  # option name -> default


def register_dataset(name: str, description: str | None = None, location: str = ""):
    """Register a loader ``fn(root=None, splits_dir=None, **options) -> LTDataset``.

    Args:
        name: the name users pass as ``--dataset``.
        description: one line for listings; defaults to the first line of the docstring.
        location: where the loader looks for its files by default, for listings.
    """

    def deco(fn):
        if name in _REGISTRY:
            raise RuntimeError(f"dataset {name!r} registered twice")
        _REGISTRY[name] = fn
        doc = (fn.__doc__ or "").strip().splitlines()
        _INFO[name] = DatasetInfo(
            name=name,
            description=description or (doc[0].rstrip(".") if doc else ""),
            location=location,
            options=_option_defaults(fn),
        )
        return fn

    return deco


def _option_defaults(fn) -> dict[str, Any]:
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in _LOCATION_PARAMS or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out[p.name] = None if p.default is p.empty else p.default
    return out


def _takes_any_option(fn) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def list_datasets() -> list[str]:
    return sorted(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    """Description, default location and options (with defaults) of a registered dataset."""
    if name not in _REGISTRY:
        raise LTBenchError(f"unknown dataset {name!r}; known: {known(_REGISTRY)}")
    return _INFO[name]


def load_dataset(name: str, root=None, splits_dir=None, **options) -> LTDataset:
    """Build dataset ``name``. Options a loader does not know are an error naming them."""
    if name not in _REGISTRY:
        raise LTBenchError(f"unknown dataset {name!r}; known: {known(_REGISTRY)}")
    fn = _REGISTRY[name]
    if not _takes_any_option(fn):
        allowed = _INFO[name].options
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            takes = f"its options: {known(allowed)}" if allowed else "it takes no options"
            raise LTBenchError(
                f"dataset {name} has no option {', '.join(repr(u) for u in unknown)}; {takes}"
            )
    ds = fn(root=root, splits_dir=splits_dir, **options)
    ds.validate()
    return ds


def parse_dataset_options(name: str, pairs: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` (as given to ``--option``) -> options for ``load_dataset(name)``.

    Values are converted to the type of the option's default (int, float, bool); options with
    no typed default stay strings. Unknown keys are left for ``load_dataset`` to report.
    """
    defaults = dataset_info(name).options
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise LTBenchError(f"--option {pair!r}: expected key=value (e.g. --option imbalance=50)")
        out[key] = _coerce(key, value.strip(), defaults.get(key))
    return out


def _coerce(key: str, value: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value) if value.lstrip("+-").isdigit() else float(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        kind = type(default).__name__
        raise LTBenchError(f"--option {key}={value}: expected a {kind}") from None
    return value
