"""What each phase of a tune reads from the cache, and when.

Selection sees a ``MethodData`` only (train and val, never test): ``read_method_data`` reads the
cache's train and val splits once per process, and ``tuning_data`` derives what the trials fit
and score on: the cache's val split, or, when the cache has none (CIFAR-LT), a seeded
class-stratified holdout of train by the rule Phase A uses (``finetune.data.holdout_indices``).
The final fits use all of train (``final_data``). The test split is read by ``read_test``, which
the tune calls only once selection is over.
"""

from __future__ import annotations

import numpy as np

from ..errors import LTBenchError
from ..heads.methods import MethodData, SplitData, method_data

HOLDOUT_FRACTION = 0.1  # Phase A's default val_fraction: the same held-out slice of train


def cache_identity(cache) -> dict:
    """What makes two caches the same for a tune folder: the content fingerprint
    (``FeatureCache.fingerprint``; a moved cache is the same cache)."""
    return {"fingerprint": cache.fingerprint}


def describe_identity(ident: dict) -> str:
    """One short phrase naming a cache identity (for messages)."""
    return f"fingerprint {str(ident.get('fingerprint'))[:16]}"


def check_tunable(cache) -> None:
    """Refuse, before anything is written, a cache a tune cannot finish on: no train split, no test
    split (looked up by name, not read: a tune must not select for minutes and then find nothing
    to evaluate on), or no val split and no class of train with 2 images to hold one out from."""
    if "train" not in cache.splits:
        raise LTBenchError(f"cache {cache.path} has no train split: a tune fits on train; extract one with "
                           "`ltbench extract --splits train,val,test`")
    if "test" not in cache.splits:
        raise LTBenchError(f"cache {cache.path} has no test split to evaluate the selected configuration on: "
                           "extract one with `ltbench extract --splits train,val,test`")
    if "val" not in cache.splits:
        _holdout(cache.labels("train"))


def _holdout(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from ..finetune.data import holdout_indices

    keep, held = holdout_indices(labels, HOLDOUT_FRACTION)
    if len(held) == 0:
        raise LTBenchError("the cache has no val split and no class with 2 or more train images to hold one "
                           "out from: extract a val split (`ltbench extract --splits train,val,test`)")
    return keep, held


def read_method_data(cache, views: bool = True) -> MethodData:
    """Train and val of ``cache`` (never test), read once (``check_tunable`` first)."""
    check_tunable(cache)
    return method_data(cache, views=views)


def _subset(split: SplitData, rows: np.ndarray) -> SplitData:
    """The images ``rows`` of a split, with their augmented views."""
    aug = None
    if split.aug is not None:
        from ..features.cache import AugViews

        counts = split.aug.counts[rows]
        starts = split.aug.offsets[rows]
        take = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(counts.sum())
        aug = AugViews(split.aug.rows[take], np.concatenate(([0], np.cumsum(counts))).astype(np.int64))
    return SplitData(split.features[rows], split.labels[rows], aug)


def tuning_data(data: MethodData) -> tuple[MethodData, str]:
    """What the trials fit and score on, and where its val comes from ("val" or "train holdout").

    Raises:
        LTBenchError: no val split and no class with two train images to hold one out from.
    """
    if data.val is not None:
        return data, "val"
    keep, held = _holdout(data.train.labels)
    train = _subset(data.train, keep)
    counts = np.bincount(train.labels, minlength=data.num_classes).astype(np.int64)
    val = _subset(data.train, held)
    val = SplitData(val.features.astype(np.float32), val.labels)  # scored as a val split is: float32, center views
    return MethodData(train, val, data.text_classifier, counts), "train holdout"


def final_data(data: MethodData, val_source: str) -> MethodData:
    """What the final fits use: all of train, and the cache's val (for a head's best-val epoch)
    only when it is a real val split (a holdout of train is part of train now)."""
    return data if val_source == "val" else MethodData(data.train, None, data.text_classifier, data.train_counts)


def read_test(cache) -> SplitData:
    """The test split: read only after selection (``tune.study.tune_method``)."""
    return SplitData(cache.features("test"), cache.labels("test"))
