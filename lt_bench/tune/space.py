"""A method's search space as Optuna sees it, and the ``--space name=...`` overrides of it."""

from __future__ import annotations

import dataclasses

from ..errors import LTBenchError, known
from ..heads.methods import Method, Param

SAMPLERS = ("grid", "tpe")


def override_space(method: Method, overrides: tuple[str, ...] | list[str]) -> dict[str, Param]:
    """``method.space`` with ``name=LOW:HIGH`` (a new range, same kind and scale) or
    ``name=V1,V2,...`` (exactly these values) applied.

    Raises:
        LTBenchError: a malformed override or a name the method's space lacks.
    """
    space = dict(method.space)
    for text in overrides:
        name, sep, value = str(text).partition("=")
        name = name.strip()
        if not sep or not value.strip():
            raise LTBenchError(f"--space {text!r}: write NAME=LOW:HIGH or NAME=V1,V2,... (e.g. lr=0.01:0.5)")
        if name not in space:
            tunable = known(space) if space else "nothing (it has no hyperparameters to tune)"
            raise LTBenchError(f"--space {text!r}: method {method.name!r} has no hyperparameter {name!r}; "
                               f"it tunes: {tunable}")
        space[name] = _override(space[name], name, value.strip(), text)
    return space


def _override(p: Param, name: str, value: str, text: str) -> Param:
    try:
        if ":" in value and p.kind != "choice":
            lo, hi = (_number(p, v) for v in value.split(":", 1))
            return Param(p.kind, lo, hi, log=p.log)
        values = tuple(_number(p, v) if p.kind != "choice" else _choice(p, v) for v in value.split(","))
    except ValueError as e:
        raise LTBenchError(f"--space {text!r}: {e}") from None
    if p.kind == "choice":
        return dataclasses.replace(p, choices=values, grid=())
    return Param(p.kind, min(values), max(values), log=p.log, grid=values)


def _number(p: Param, v: str):
    v = v.strip()
    try:
        x = int(v) if p.kind == "int" else float(v)
    except ValueError:
        raise ValueError(f"{v!r} is not {'an integer' if p.kind == 'int' else 'a number'}") from None
    if p.log and x <= 0:
        raise ValueError(f"{v!r}: this hyperparameter is searched on a log scale and needs values > 0")
    return x


def _choice(p: Param, v: str):
    for c in p.choices:
        if str(c) == v.strip():
            return c
    raise ValueError(f"{v!r} is not one of {', '.join(map(str, p.choices))}")


def describe_space(space: dict[str, Param]) -> dict:
    """The space as JSON (recorded in the study, compared on resume)."""
    return {k: {"kind": p.kind, "low": p.low, "high": p.high, "log": p.log, "choices": list(p.choices),
                "grid": list(p.values())} for k, p in sorted(space.items())}


def grid_size(space: dict[str, Param]) -> int:
    n = 1
    for p in space.values():
        n *= len(p.values())
    return n


def suggest(trial, space: dict[str, Param]) -> dict:
    """One trial's hyperparameters (a grid sampler returns its grid values through these calls)."""
    params = {}
    for name, p in sorted(space.items()):
        if p.kind == "choice":
            params[name] = trial.suggest_categorical(name, list(p.values()))
        elif p.kind == "int":
            params[name] = trial.suggest_int(name, int(min(p.low, *p.values())), int(max(p.high, *p.values())),
                                             log=p.log)
        else:
            params[name] = trial.suggest_float(name, float(min(p.low, *p.values())),
                                               float(max(p.high, *p.values())), log=p.log)
    return params


def sampler_id(kind: str) -> str:
    """What a study records of its sampler: ``tpe/trial-seeded`` for TPE (``tpe.TrialSeededTPE``),
    so that a study sampled by a plain TPE stream is refused, not resumed with other draws."""
    return "tpe/trial-seeded" if kind == "tpe" else kind


def make_sampler(kind: str, space: dict[str, Param], seed: int):
    import optuna

    if kind == "grid":
        return optuna.samplers.GridSampler({k: list(p.values()) for k, p in space.items()}, seed=seed)
    if kind == "tpe":  # seeded per trial: a resumed search samples what an uninterrupted one does
        from .tpe import TrialSeededTPE

        return TrialSeededTPE(seed)
    raise LTBenchError(f"unknown sampler {kind!r}; known: {known(SAMPLERS)}")
