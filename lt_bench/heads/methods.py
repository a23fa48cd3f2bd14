"""The leaderboard's methods: each head-level method once, with how it is fitted, its defaults and
the few hyperparameters worth tuning (its search space), declared next to each other.

A *method* is what a leaderboard row is: a registered trained head or baseline run with the
options that define it (``fixed``: e.g. ``linear`` with ``loss = "logit_adjusted"`` is the
method ``logit_adjusted``), plus optionally a post-hoc step. ``fit_method(name, data, params,
seed)`` fits it on ``data.train`` (selecting epochs on ``data.val`` where the head does) and
returns a ``Fitted`` whose ``logits(x)`` scores any features. ``MethodData`` holds only train and
val: the tuning code is given no handle on test (``tune`` builds it without opening test).

Contract (used by ``lt_bench.tune``; new methods add a ``Method`` entry and, when needed, a
branch in ``fit_method``):
- ``Method.space``: hyperparameter -> ``Param``; every name is a key ``fit_method`` accepts in
  ``params`` (for trained heads: a ``TrainConfig`` field; for baselines: one of its registered
  options). Unset names take the method's defaults (the head's registered defaults, then
  ``fixed``).
- ``params`` given to ``fit_method`` override the defaults; an unknown name is an ``LTBenchError``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import LTBenchError, known


@dataclass(frozen=True)
class Param:
    """One hyperparameter's search range: ``float`` / ``int`` in [low, high] (``log``: sampled
    on a log scale), or ``choice`` among ``choices``. ``grid``: the values a grid search tries."""

    kind: str  # "float" | "int" | "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    grid: tuple = ()

    def __post_init__(self):
        if self.kind not in ("float", "int", "choice"):
            raise ValueError(f"Param kind must be float, int or choice, not {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError("a choice Param needs choices")
        if self.kind != "choice" and not (self.low is not None and self.high is not None and self.low <= self.high):
            raise ValueError(f"a {self.kind} Param needs low <= high, not {self.low}, {self.high}")
        if self.log and self.kind != "choice" and self.low <= 0:
            raise ValueError("a log-scale Param needs low > 0")

    def values(self) -> tuple:
        """The grid: ``grid`` when given, else ``choices``, else low, high and the points between
        (geometric for ``log``; five points; integers deduplicated)."""
        if self.grid:
            return self.grid
        if self.kind == "choice":
            return self.choices
        pts = (np.geomspace(self.low, self.high, 5) if self.log else np.linspace(self.low, self.high, 5))
        if self.kind == "int":
            return tuple(sorted({int(round(p)) for p in pts}))
        return tuple(float(p) for p in pts)


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # "trained" (a head trained by `adapt`) or "baseline" (fitted at eval time)
    base: str  # the registered head or baseline it runs
    fixed: dict = field(default_factory=dict)  # the options that make it this method
    space: dict = field(default_factory=dict)  # name -> Param
    doc: str = ""
    paper: str = ""


@dataclass
class SplitData:
    features: np.ndarray  # (N, D) center views, float32
    labels: np.ndarray  # (N,) int64
    aug: Any = None  # (rows (M, D), offsets (N + 1,)) augmented views, or None


@dataclass
class MethodData:
    """What a method may see while it is fitted and tuned: train, val (or a held-out part of
    train), the text classifier and the train counts of the shot groups. Never test."""

    train: SplitData
    val: SplitData | None
    text_classifier: np.ndarray  # (C, D)
    train_counts: np.ndarray  # (C,) int64: the prior of the adjusted losses

    @property
    def num_classes(self) -> int:
        return int(self.text_classifier.shape[0])


@dataclass
class Fitted:
    method: str
    config: dict  # every option the fit used (defaults, fixed and params), for the result
    logits: Callable[[np.ndarray], np.ndarray]  # (N, D) -> (N, C) float32
    seconds: float  # training / fitting time
    extra: dict = field(default_factory=dict)  # e.g. the selected epoch, val accuracy per epoch


_LR = Param("float", 1e-3, 1.0, log=True)

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("zeroshot", "baseline", "zeroshot", doc="CLIP zero-shot with the cache's text classifier.",
           paper="Radford et al. 2021"),
    Method("ncm", "baseline", "ncm", doc="Nearest class mean of normalised train features."),
    Method("knn", "baseline", "knn", space={"k": Param("int", 1, 100, log=True, grid=(1, 5, 10, 20, 50, 100))},
           doc="k nearest train features, similarity-weighted vote."),
    Method("linear", "trained", "linear", space={"lr": _LR},
           doc="Linear probe, CE, instance sampling."),
    Method("logit_adjusted", "trained", "linear", fixed={"loss": "logit_adjusted"},
           space={"lr": _LR, "tau": Param("float", 0.5, 2.0, grid=(0.5, 1.0, 1.5, 2.0))},
           doc="Linear probe with the logit-adjusted loss.", paper="Menon et al., ICLR 2021"),
    Method("balanced_softmax", "trained", "linear", fixed={"loss": "balanced_softmax"}, space={"lr": _LR},
           doc="Linear probe with balanced softmax.", paper="Ren et al., NeurIPS 2020"),
    Method("cosine", "trained", "cosine", space={"lr": _LR, "tau": Param("float", 0.5, 2.0, grid=(0.5, 1.0, 1.5, 2.0))},
           doc="LIFT's cosine classifier from the text embeddings, logit-adjusted loss.",
           paper="Shi et al., ICML 2024 (LIFT)"),
    Method("ballad", "trained", "ballad",
           space={"lr": Param("float", 0.01, 1.0, log=True), "alpha": Param("float", 0.05, 0.8,
                                                                          grid=(0.05, 0.1, 0.2, 0.4, 0.8))},
           doc="BALLAD's balanced residual linear adapter (Phase B).", paper="Ma et al. 2021 (BALLAD)"),
)}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise LTBenchError(f"unknown method {name!r}; known: {known(sorted(METHODS))}")
    return METHODS[name]


def list_methods() -> list[str]:
    return sorted(METHODS)


def _check_params(method: Method, params: dict, allowed) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise LTBenchError(f"method {method.name!r} has no option {', '.join(map(repr, unknown))}; "
                           f"it takes: {known(sorted(allowed))}")


def fit_method(name: str, data: MethodData, params: dict | None = None, seed: int = 0,
               device: str = "cpu") -> Fitted:
    """Fit method ``name`` on ``data.train`` with ``params`` over its defaults; see the module doc."""
    import torch

    from .config import TrainConfig
    from .predict import baseline_options
    from .registry import create_head, get_head_spec
    from .train import resolve_config, train_on_arrays

    method = get_method(name)
    params = dict(params or {})
    if method.kind == "baseline":
        spec = get_head_spec(method.base, kind="baseline")
        _check_params(method, params, spec.defaults)
        opts = baseline_options(method.base, **{**method.fixed, **params})
        t0 = time.perf_counter()
        base = create_head(method.base, text_classifier=data.text_classifier, device=device, **opts)
        if spec.needs_train:
            base.fit(data.train.features, data.train.labels)
        return Fitted(name, opts, base.logits, time.perf_counter() - t0)
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"head", "seed"}
    _check_params(method, params, fields)
    cfg = resolve_config(method.base, seed=seed, **{**method.fixed, **params})
    val = (data.val.features, data.val.labels) if data.val is not None else None
    res = train_on_arrays(None if cfg.views and data.train.aug is not None else data.train.features,
                          data.train.labels, data.train_counts, data.text_classifier, cfg,
                          aug_features=data.train.aug, device=device, val=val)
    head = res.head
    dev = next(head.parameters()).device

    def logits(x: np.ndarray, batch: int = 16384) -> np.ndarray:
        out = np.empty((len(x), data.num_classes), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(x), batch):
                xb = torch.as_tensor(np.asarray(x[s:s + batch]), dtype=torch.float32)
                out[s:s + batch] = head(xb.to(dev)).float().cpu().numpy()
        return out

    return Fitted(name, cfg.to_dict(), logits, res.seconds,
                  {"selected_epoch": res.selected_epoch, "val_acc": res.val_acc, "head": head, "train_result": res})


def method_data(cache, train_split: str = "train", val_split: str | None = "val", views: bool = True) -> MethodData:
    """Read a cache's train and val splits (never test) into a ``MethodData``."""
    if val_split is not None and val_split not in cache.splits:
        val_split = None
    train = SplitData(cache.features(train_split), cache.labels(train_split),
                      cache.aug_features(train_split) if views else None)
    val = SplitData(cache.features(val_split), cache.labels(val_split)) if val_split else None
    return MethodData(train, val, cache.text_classifier, cache.train_counts)
