"""The leaderboard's methods: each head-level method once, with how it is fitted, its defaults and
the few hyperparameters worth tuning (its search space), declared next to each other.

A *method* is what a leaderboard row is: a registered trained head or baseline run with the
options that define it (``fixed``: e.g. ``linear`` with ``loss = "logit_adjusted"`` is the
method ``logit_adjusted``), plus optionally post-hoc steps. ``fit_method(name, data, params,
seed)`` fits it on ``data.train`` (selecting epochs on ``data.val`` where the head does) and
returns a ``Fitted`` whose ``logits(x)`` scores any features. ``MethodData`` holds only train and
val: the tuning code is given no handle on test (``tune`` builds it without opening test).

Contract (used by ``lt_bench.tune``; new methods add a ``Method`` entry and, when needed, a
branch in ``fit_method``):
- ``Method.space``: hyperparameter -> ``Param``; every name is a key ``fit_method`` accepts in
  ``params`` (for trained heads: a ``TrainConfig`` field; for baselines: one of its registered
  options; for both: a post-hoc name). Unset names take the method's defaults (the head's
  registered defaults, then ``fixed``).
- ``params`` given to ``fit_method`` override the defaults; an unknown name is an ``LTBenchError``.

Post-hoc parameters (the fast path). ``Method.posthoc`` names the parameters of ``space`` that
act on an already fitted model without refitting it: ``tau_norm`` (tau-normalisation of a
linear / cosine head), ``ensemble`` (the zero-shot weight w of the ``<method>+zs`` methods),
``tip_alpha`` / ``tip_beta`` (Tip-Adapter's alpha and beta; ``heads/posthoc.py``, ``heads/tip.py``).
- Given in ``params``, they are applied as given.
- Left out, ``fit_method`` selects them on ``data.val`` by a grid search over their
  ``Param.values()`` (jointly; the selection metric: mean per-class accuracy), as the papers do
  (tau-norm's 0..2 step 0.1; Tip-Adapter's search on val); without val they take ``fixed``'s
  values. ``Fitted.extra["posthoc_val"]`` records each tried combination's val score.
- A trained head is trained once per ``MethodData`` and recipe: ``fit_method`` keeps the most
  recent trained heads in ``data.trained`` (keyed by the full recipe, seed included, and lws's
  stage-1 recipe; up to ``KEEP_TRAINED_BYTES`` of parameters), so trials that differ only in
  post-hoc values, lws trials (its stage-1 linear probe), and the methods of one
  ``training_family`` (``linear``, ``tau_norm``, ``linear+zs``, ...: the same trained recipes)
  reuse the training; ``Fitted.seconds`` still reports the training's seconds (lws: both
  stages), the cost of that configuration.
- ``fitted.with_posthoc(**values)`` returns the same fitted model with other post-hoc values,
  in milliseconds and without training (``seconds`` stays the fit's). So ``tune`` can train a
  method's trained hyperparameters once per trial and search its post-hoc ones on that fit:
  ``base = fit_method(name, data, trained_params)``, then ``base.with_posthoc(tau_norm=t)``
  for each t, scoring ``.logits(val)``.

The zero-shot ensemble is one generic mechanism: ``<m>+zs`` exists for every trained method m
(but ``tip_adapter_f``, which already adds zero-shot), with m's space plus ``ensemble`` (w in
0..1). ``ENSEMBLE_SUFFIX`` names them; ``Method.of`` is m.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
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
    fixed: dict = field(default_factory=dict)  # the options that make it this method (and post-hoc defaults)
    space: dict = field(default_factory=dict)  # name -> Param
    doc: str = ""
    paper: str = ""
    posthoc: tuple = ()  # names in ``space`` applied after the fit, without refitting (module docstring)
    of: str | None = None  # a ``+zs`` method: the method it ensembles with zero-shot


@dataclass
class SplitData:
    features: np.ndarray  # (N, D) center views (train: as stored, float16 from a cache; val: float32)
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
    # trained heads by (recipe, base recipe), most recent last: a recipe trains once per MethodData
    trained: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return int(self.text_classifier.shape[0])


@dataclass
class Fitted:
    method: str
    config: dict  # every option the fit used (defaults, fixed, params and post-hoc values), for the result
    logits: Callable[[np.ndarray], np.ndarray]  # (N, D) -> (N, C) float32
    seconds: float  # training / fitting time
    extra: dict = field(default_factory=dict)  # e.g. the selected epoch, val accuracy per epoch
    posthoc: dict = field(default_factory=dict)  # the post-hoc values in effect
    rescore: Callable[[dict], Callable] | None = field(default=None, repr=False)  # post-hoc values -> logits

    def with_posthoc(self, **values) -> "Fitted":
        """This fit with other post-hoc values (names of its method's ``posthoc``); no training."""
        unknown = sorted(set(values) - set(self.posthoc))
        if unknown:
            raise LTBenchError(f"method {self.method!r} has no post-hoc option {', '.join(map(repr, unknown))}; "
                               f"it takes: {known(sorted(self.posthoc)) if self.posthoc else 'none'}")
        new = {**self.posthoc, **{k: float(v) for k, v in values.items()}}
        return dataclasses.replace(self, config={**self.config, **new}, logits=self.rescore(new), posthoc=new)


ENSEMBLE_SUFFIX = "+zs"
_LR = Param("float", 1e-3, 1.0, log=True)
_TAU = Param("float", 0.5, 2.0, grid=(0.5, 1.0, 1.5, 2.0))
_ALPHA = Param("float", 0.05, 0.8, grid=(0.05, 0.1, 0.2, 0.4, 0.8))
_SGD_LR = Param("float", 0.01, 1.0, log=True)
# Tip-Adapter's val search (main.py:99-118, configs/imagenet.yaml: alpha 0.1..3, beta 0.1..7), coarser
_TIP = {"tip_alpha": Param("float", 0.1, 3.0, grid=(0.1, 0.3, 0.5, 1.0, 1.17, 1.5, 2.0, 3.0)),
        "tip_beta": Param("float", 0.5, 7.0, grid=(0.5, 1.0, 2.0, 3.0, 4.0, 5.5, 7.0))}
_TIP_DEFAULTS = {"tip_alpha": 1.17, "tip_beta": 1.0}


def _tau_norm_param() -> Param:
    from .posthoc import TAU_NORM_GRID

    return Param("float", 0.0, 2.0, grid=TAU_NORM_GRID)


_BASE_METHODS = (
    Method("zeroshot", "baseline", "zeroshot", doc="CLIP zero-shot with the cache's text classifier.",
           paper="Radford et al. 2021"),
    Method("ncm", "baseline", "ncm", doc="Nearest class mean of normalised train features."),
    Method("knn", "baseline", "knn", space={"k": Param("int", 1, 100, log=True, grid=(1, 5, 10, 20, 50, 100))},
           doc="k nearest train features, similarity-weighted vote."),
    Method("linear", "trained", "linear", space={"lr": _LR},
           doc="Linear probe, CE, instance sampling."),
    Method("logit_adjusted", "trained", "linear", fixed={"loss": "logit_adjusted"}, space={"lr": _LR, "tau": _TAU},
           doc="Linear probe with the logit-adjusted loss.", paper="Menon et al., ICLR 2021"),
    Method("balanced_softmax", "trained", "linear", fixed={"loss": "balanced_softmax"}, space={"lr": _LR},
           doc="Linear probe with balanced softmax.", paper="Ren et al., NeurIPS 2020"),
    Method("cosine", "trained", "cosine", space={"lr": _LR, "tau": _TAU},
           doc="LIFT's cosine classifier from the text embeddings, logit-adjusted loss.",
           paper="Shi et al., ICML 2024 (LIFT)"),
    Method("ballad", "trained", "ballad", space={"lr": _SGD_LR, "alpha": _ALPHA},
           doc="BALLAD's balanced residual linear adapter (Phase B).", paper="Ma et al. 2021 (BALLAD)"),
    Method("crt", "trained", "crt", space={"lr": _SGD_LR},
           doc="cRT: a linear classifier re-trained with class-balanced sampling.",
           paper="Kang et al., ICLR 2020 (Decoupling)"),
    Method("tau_norm", "trained", "linear", fixed={"tau_norm": 1.0}, space={"lr": _LR, "tau_norm": _tau_norm_param()},
           posthoc=("tau_norm",), doc="Tau-normalised class weights of the linear probe (bias dropped).",
           paper="Kang et al., ICLR 2020 (Decoupling)"),
    Method("lws", "trained", "lws", space={"lr": _SGD_LR},
           doc="Learnable per-class scales of the frozen linear probe, class-balanced sampling.",
           paper="Kang et al., ICLR 2020 (Decoupling)"),
    Method("clip_adapter", "trained", "clip_adapter", space={"lr": _SGD_LR, "alpha": _ALPHA},
           doc="CLIP-Adapter: residual bottleneck MLP adapter, fixed text classifier.",
           paper="Gao et al. 2021 (CLIP-Adapter)"),
    Method("tip_adapter", "baseline", "tip_adapter", fixed=dict(_TIP_DEFAULTS),
           space={**_TIP, "shots": Param("choice", choices=(0, 4, 16, 64))}, posthoc=("tip_alpha", "tip_beta"),
           doc="Tip-Adapter, training-free: zero-shot plus a cache model of the train features.",
           paper="Zhang et al., ECCV 2022 (Tip-Adapter)"),
    Method("tip_adapter_f", "trained", "tip_adapter_f", fixed=dict(_TIP_DEFAULTS),
           space={"lr": Param("float", 1e-4, 1e-2, log=True), **_TIP}, posthoc=("tip_alpha", "tip_beta"),
           doc="Tip-Adapter-F: the cache keys fine-tuned (AdamW), alpha and beta chosen after.",
           paper="Zhang et al., ECCV 2022 (Tip-Adapter)"),
    Method("ldam_drw", "trained", "cosine", fixed={"loss": "ldam", "drw": True, "scale": 30.0}, space={"lr": _LR},
           doc="LDAM loss (margins ~ n_c^-1/4, max 0.5, s 30) with deferred re-weighting, cosine head.",
           paper="Cao et al., NeurIPS 2019 (LDAM-DRW)"),
)
_ENSEMBLE = Param("float", 0.0, 1.0, grid=tuple(round(0.1 * i, 1) for i in range(11)))


def _with_zero_shot(m: Method) -> Method:
    """``m`` ensembled with zero-shot in output space (WiSE-FT): w = ``ensemble``, a post-hoc step."""
    return Method(m.name + ENSEMBLE_SUFFIX, m.kind, m.base, fixed={**m.fixed, "ensemble": 0.5},
                  space={**m.space, "ensemble": _ENSEMBLE}, posthoc=(*m.posthoc, "ensemble"), of=m.name,
                  doc=f"{m.name}, its logits mixed with zero-shot's: (1 - w) head + w zero-shot.",
                  paper="Wortsman et al., CVPR 2022 (WiSE-FT, output-space ensemble)")


METHODS: dict[str, Method] = {m.name: m for m in (
    *_BASE_METHODS,
    *(_with_zero_shot(m) for m in _BASE_METHODS if m.kind == "trained" and m.name != "tip_adapter_f"),
)}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise LTBenchError(f"unknown method {name!r}; known: {known(sorted(METHODS))}")
    return METHODS[name]


def training_family(name: str) -> tuple:
    """What a method trains, post-hoc steps aside: its head, the options that make it and the
    hyperparameters its tune searches. Methods with equal families train the same heads under the
    same search (``tau_norm`` and ``linear+zs`` train exactly ``linear``'s), so a leaderboard that
    runs them one after another trains each head once (``fit_method``'s ``data.trained``)."""
    m = get_method(name)
    fixed = sorted((k, repr(v)) for k, v in m.fixed.items() if k not in m.posthoc)
    return m.kind, m.base, tuple(fixed), tuple(sorted(k for k in m.space if k not in m.posthoc))


def list_methods(ensembles: bool = True) -> list[str]:
    """Every method's name; ``ensembles=False`` leaves out the ``<method>+zs`` variants."""
    return sorted(n for n, m in METHODS.items() if ensembles or m.of is None)


def _check_params(method: Method, params: dict, allowed) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise LTBenchError(f"method {method.name!r} has no option {', '.join(map(repr, unknown))}; "
                           f"it takes: {known(sorted(allowed))}")


def fit_method(name: str, data: MethodData, params: dict | None = None, seed: int = 0,
               device: str = "cpu", space: dict | None = None) -> Fitted:
    """Fit method ``name`` on ``data.train`` with ``params`` over its defaults; post-hoc values
    left out are selected on ``data.val`` over the grids of ``space`` (default: the method's own;
    see the module doc)."""
    method = get_method(name)
    params = dict(params or {})
    posthoc = {k: params.pop(k) for k in method.posthoc if k in params}
    fixed = {k: v for k, v in method.fixed.items() if k not in method.posthoc}
    if method.kind == "baseline":
        fitted = _fit_baseline(method, data, params, fixed, seed, device)
    else:
        fitted = _fit_trained(method, data, params, fixed, seed, device)
    if not method.posthoc:
        return fitted
    missing = [k for k in method.posthoc if k not in posthoc]
    if missing and data.val is not None and len(data.val.labels):
        t0 = time.perf_counter()
        chosen, scores = _select_on_val(method, fitted, data, posthoc, missing, space or method.space)
        posthoc.update(chosen)
        fitted.extra.update(posthoc_val=scores, posthoc_seconds=time.perf_counter() - t0)
    posthoc = {k: float(posthoc.get(k, method.fixed[k])) for k in method.posthoc}
    return fitted.with_posthoc(**posthoc)


def _fit_baseline(method: Method, data: MethodData, params: dict, fixed: dict, seed: int, device: str) -> Fitted:
    from .predict import baseline_options
    from .registry import create_head, get_head_spec

    spec = get_head_spec(method.base, kind="baseline")
    _check_params(method, params, set(spec.defaults) - set(method.posthoc))
    opts = baseline_options(method.base, **{**fixed, **params})
    t0 = time.perf_counter()
    base = create_head(method.base, text_classifier=data.text_classifier, device=device, seed=seed, **opts)
    if spec.needs_train:
        aug = {"aug": data.train.aug} if getattr(base, "uses_views", False) else {}
        base.fit(data.train.features, data.train.labels, **aug)
    seconds = time.perf_counter() - t0
    if not method.posthoc:
        return Fitted(method.name, opts, base.logits, seconds)

    def rescore(values: dict) -> Callable:
        return lambda x: base.logits(x, **values)

    return Fitted(method.name, opts, base.logits, seconds, {"model": base}, posthoc={k: None for k in method.posthoc},
                  rescore=rescore)


def _fit_trained(method: Method, data: MethodData, params: dict, fixed: dict, seed: int, device: str) -> Fitted:
    from .config import TrainConfig
    from .posthoc import apply_posthoc
    from .tip import TipAdapter, TipAdapterFHead
    from .train import resolve_config

    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"head", "seed"} - set(method.posthoc)
    _check_params(method, params, fields)
    cfg = resolve_config(method.base, seed=seed, **{**fixed, **params})
    base = None
    if cfg.head == "lws":  # its stage 1, the linear probe: trained once per data, seed and views
        base = _train(resolve_config("linear", seed=seed, views=cfg.views), data, device)
    res = _train(cfg, data, device, base)
    head = res.head
    seconds = res.seconds + (base.seconds if base is not None else 0.0)  # what the method costs, stage 1 included
    extra = {"selected_epoch": res.selected_epoch, "val_acc": res.val_acc, "head": head, "train_result": res}

    if isinstance(head, TipAdapterFHead):  # score alpha / beta as the training-free cache does (one pass per val)
        extra["model"] = TipAdapter.of_head(head)

        def rescore(values: dict) -> Callable:
            return lambda x: extra["model"].logits(x, **values)
    else:
        def rescore(values: dict) -> Callable:
            return _module_logits(apply_posthoc(head, data.text_classifier, **values), data.num_classes)

    return Fitted(method.name, cfg.to_dict(), _module_logits(head, data.num_classes), seconds, extra,
                  posthoc={k: None for k in method.posthoc}, rescore=rescore)


# parameters of the heads kept per MethodData: a family's tune (8 trials + 3 seeds) of ImageNet-LT
# linear probes is 45 MB; a Tip-Adapter-F head there is 64 MB (16 shots) to 0.5 GB (every image)
KEEP_TRAINED_BYTES = 1 << 30


def _head_bytes(res) -> int:
    return sum(t.numel() * t.element_size() for t in res.head.state_dict().values())


def _train(cfg, data: MethodData, device: str, base=None):
    """``train_on_arrays`` of ``cfg`` on ``data``, or the result of the same recipe (and base)
    trained earlier on this ``data``: same seed, same head bit for bit on CPU, so a tune that
    varies only post-hoc values (or lws's scales) trains each head once."""
    import json

    from .train import train_on_arrays

    key = json.dumps([cfg.to_dict(), None if base is None else base.config.to_dict(), str(device)], sort_keys=True)
    if key in data.trained:
        data.trained.move_to_end(key)
        return data.trained[key]
    val = (data.val.features, data.val.labels) if data.val is not None else None
    res = train_on_arrays(None if cfg.views and data.train.aug is not None else data.train.features,
                          data.train.labels, data.train_counts, data.text_classifier, cfg,
                          aug_features=data.train.aug, device=device, val=val,
                          base=None if base is None else base.head)
    data.trained[key] = res
    while len(data.trained) > 1 and sum(map(_head_bytes, data.trained.values())) > KEEP_TRAINED_BYTES:
        data.trained.popitem(last=False)
    return res


def _module_logits(module, num_classes: int) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> (N, C)`` logits of ``module`` on its own device (``predict.module_logits``)."""
    from .predict import module_logits

    dev = next(iter(module.state_dict().values())).device
    return lambda x: module_logits(module, x, num_classes, dev)


def mean_class_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean per-class top-1 accuracy (%) over the classes present in ``labels``: the selection
    metric (``metrics.balanced_accuracy``, as eval reports it)."""
    from ..metrics.accuracy import balanced_accuracy, per_class_accuracy

    logits = np.asarray(logits)
    return 100.0 * balanced_accuracy(per_class_accuracy(logits.argmax(1), np.asarray(labels), logits.shape[1]))


def _select_on_val(method: Method, fitted: Fitted, data: MethodData, given: dict, missing: list,
                   space: dict) -> tuple:
    """The grid values of ``missing`` post-hoc parameters with the best val score, and every score."""
    import itertools

    grids = [space[k].values() for k in missing]
    model = fitted.extra.get("model")
    if hasattr(model, "prime"):  # Tip-Adapter: every beta of the grid in one pass over the cache
        model.prime(data.val.features, space["tip_beta"].values() if "tip_beta" in missing
                    else [given.get("tip_beta", method.fixed["tip_beta"])])
    scores = []
    mix = _EnsembleMix(fitted, data.val.features) if "ensemble" in missing and not hasattr(model, "prime") else None
    for combo in itertools.product(*grids):
        values = {**given, **dict(zip(missing, combo))}
        values = {**{k: method.fixed[k] for k in method.posthoc if k not in values}, **values}
        logits = mix(values) if mix else fitted.rescore(values)(data.val.features)
        acc = mean_class_accuracy(logits, data.val.labels)
        scores.append({**dict(zip(missing, combo)), "val": acc})
    best = max(scores, key=lambda r: r["val"])  # ties: the first in grid order
    if hasattr(model, "prime"):
        model._primed = None
    return {k: best[k] for k in missing}, scores


class _EnsembleMix:
    """Val logits of a ``+zs`` fit at any post-hoc values, the zero-shot weight w mixed in last:
    the head's logits are computed once per value of its other post-hoc steps (tau_norm's 21;
    ``ensemble`` is the last post-hoc name, so the grid runs every w of one such value in a row
    and one array is kept) and zero-shot's once, and each w is ``torch.lerp`` of the two, the
    operation ``posthoc.ZeroShotEnsemble`` applies, so the scores are the module's to the bit
    (tau_norm+zs: 22 passes over val instead of 231)."""

    def __init__(self, fitted: Fitted, x: np.ndarray):
        self.fitted, self.x, self.head, self.zero_shot = fitted, x, (None, None), None

    def __call__(self, values: dict) -> np.ndarray:
        import torch

        from .posthoc import check_ensemble_weight

        w = check_ensemble_weight(values["ensemble"])
        rest = {**values, "ensemble": None}
        key = tuple(sorted(rest.items()))
        if self.head[0] != key:
            self.head = (key, None)  # the previous array freed before the next is made
            self.head = (key, torch.from_numpy(self.fitted.rescore(rest)(self.x)))
        if self.zero_shot is None:  # lerp(head, zero-shot, 1) is zero-shot exactly
            self.zero_shot = torch.from_numpy(self.fitted.rescore({**values, "ensemble": 1.0})(self.x))
        return torch.lerp(self.head[1], self.zero_shot, w).numpy()


def method_data(cache, train_split: str = "train", val_split: str | None = "val", views: bool = True) -> MethodData:
    """Read a cache's train and val splits (never test) into a ``MethodData``."""
    if val_split is not None and val_split not in cache.splits:
        val_split = None
    # train as stored (float16: half the memory; heads and baselines convert per batch or chunk)
    train = SplitData(cache.stored_features(train_split), cache.labels(train_split),
                      cache.aug_features(train_split) if views else None)
    val = SplitData(cache.features(val_split), cache.labels(val_split)) if val_split else None
    return MethodData(train, val, cache.text_classifier, cache.train_counts)
