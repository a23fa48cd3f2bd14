"""One registry for every head: trained heads (Phase B on cached features) and baselines.

``@register_head(name, kind=..., defaults=...)`` on a small factory; ``create_head(name, **kw)``
builds one. A name registered twice is an error. Trained heads carry their training defaults
(see ``heads/modules.py``), baselines carry their options' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import LTBenchError, known


@dataclass(frozen=True)
class HeadSpec:
    """What the registry knows about a head."""

    name: str
    kind: str  # "trained" (an nn.Module trained by `adapt`) or "baseline" (fit on the cache at eval)
    factory: Callable[..., Any]
    needs_train: bool  # needs the cache's train split
    defaults: dict = field(default_factory=dict)
    doc: str = ""


_REGISTRY: dict[str, HeadSpec] = {}


def register_head(name: str, *, kind: str = "trained", needs_train: bool = True, defaults: dict | None = None):
    """Decorator registering ``factory`` under ``name``; registering a name twice raises ValueError."""
    if kind not in ("trained", "baseline"):
        raise ValueError(f"head kind must be 'trained' or 'baseline', not {kind!r}")

    def deco(factory):
        if name in _REGISTRY:
            raise ValueError(f"head {name!r} is already registered (by {_REGISTRY[name].factory.__module__})")
        doc = (factory.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = HeadSpec(name, kind, factory, needs_train, dict(defaults or {}), doc[0] if doc else "")
        return factory

    return deco


def _registered() -> dict[str, HeadSpec]:
    """The registry, after importing the modules whose decorators fill it."""
    from . import baselines, modules, tip  # noqa: F401

    return _REGISTRY


def list_heads(kind: str | None = None) -> list[str]:
    """Registered head names, optionally only of one kind."""
    _registered()
    return sorted(n for n, s in _REGISTRY.items() if kind is None or s.kind == kind)


def get_head_spec(name: str, kind: str | None = None) -> HeadSpec:
    """The spec of ``name``; an unknown name (or one of another kind) is an error listing the known ones."""
    spec = _registered().get(name)
    if spec is None or (kind is not None and spec.kind != kind):
        what = {"trained": "head", "baseline": "baseline", None: "head"}[kind]
        raise LTBenchError(f"unknown {what} {name!r}; known: {known(list_heads(kind))}")
    return spec


def create_head(name: str, **kwargs):
    """Build the head ``name`` (an nn.Module for trained heads, a fit/logits object for baselines)."""
    return get_head_spec(name).factory(**kwargs)
