"""Heads whose starting point is made from the training data: what ``train_on_arrays`` builds
before its loop, instead of a fresh ``create_head``.

- ``lws``: a frozen trained linear head to scale: ``base`` (a loaded ``linear`` HEAD.pt, from
  ``adapt --base``) or, without one, the ``linear`` head trained here first with its own
  recipe, the same seed and views (the decoupling paper's stage 1: instance-balanced CE).
- ``tip_adapter_f``: the cache model (``tip.cache_keys``: at most ``shots`` images per class)
  as the initial keys; it then trains on the cached images only, as the reference trains on
  its few-shot set (``main.py:180-181``: the cache and the fine-tuning loader share
  ``dataset.train_x``).

Every other head returns ``None`` and the data unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import LTBenchError
from ..log import get_logger

log = get_logger(__name__)


def prepare_head(config, features, labels, aug, train_counts, text_classifier, device, val=None, base=None):
    """(head or None, features, labels, aug) for ``config.head`` (see the module docstring)."""
    if config.head == "lws":
        return _lws(config, features, labels, aug, train_counts, text_classifier, device, val, base), \
            features, labels, aug
    if base is not None:
        raise LTBenchError(f"--base is for the lws head (a trained linear HEAD.pt to scale), not {config.head!r}")
    if config.head == "tip_adapter_f":
        return _tip(config, features, labels, aug, text_classifier)
    return None, features, labels, aug


def _lws(config, features, labels, aug, train_counts, text_classifier, device, val, base):
    from .modules import LinearHead, LWSHead
    from .train import resolve_config, train_on_arrays

    if base is None:
        stage1 = resolve_config("linear", seed=config.seed, views=config.views)
        log.info("lws: training its base, the linear head (%s sampler, %d epochs), first", stage1.sampler, stage1.epochs)
        base = train_on_arrays(features, labels, train_counts, text_classifier, stage1, aug_features=aug,
                               device=device, val=val).head
    if type(base) is not LinearHead:
        raise LTBenchError(f"lws scales a trained linear head (`ltbench adapt --head linear`), not a "
                           f"{type(base).__name__}: pass one to --base")
    c, d = np.asarray(text_classifier).shape
    return LWSHead(c, d, scale=config.scale, base=base)  # copies the weights: base itself stays as it is


def _tip(config, features, labels, aug, text_classifier):
    from .tip import TipAdapterFHead, cache_keys
    from .train import _ragged

    labels = np.asarray(labels, dtype=np.int64)
    views = aug if (config.views and aug is not None) else None
    if views is not None:
        rows, offsets = _ragged(views, len(labels))
        views = (rows, offsets.numpy())
    keys, key_labels, idx = cache_keys(features, labels, views, config.shots, config.seed)
    c, d = np.asarray(text_classifier).shape
    head = TipAdapterFHead(c, d, text_classifier, keys, key_labels, config.tip_alpha, config.tip_beta, config.scale)
    log.info("tip_adapter_f: a cache of %d keys (%s per class), trained on those images", len(keys),
             f"at most {config.shots}" if config.shots else "all")
    if len(idx) == len(labels):
        return head, features, labels, aug
    sub_features = None if features is None else np.asarray(features)[idx]
    return head, sub_features, labels[idx], (_subset_views(views, idx) if views is not None else None)


def _subset_views(views, idx: np.ndarray):
    """(rows, offsets) of the images ``idx`` only."""
    rows, offsets = views
    counts = offsets[idx + 1] - offsets[idx]
    new_offsets = np.concatenate([[0], np.cumsum(counts)])
    gather = np.repeat(offsets[idx] - new_offsets[:-1], counts) + np.arange(new_offsets[-1])
    rows = rows.index_select(0, torch.as_tensor(gather)) if isinstance(rows, torch.Tensor) else np.asarray(rows)[gather]
    return rows, new_offsets
