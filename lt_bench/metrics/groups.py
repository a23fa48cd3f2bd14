"""Shot groups over classes and group means (many / medium / few, docs/protocol.md)."""

from __future__ import annotations

import numpy as np

from ..data.base import shot_groups

GROUPS = ("many", "medium", "few")


def group_means(per_class: np.ndarray, train_counts) -> dict[str, float | None]:
    """Mean of per-class values within each shot group.

    Classes whose value is NaN (no test image) are left out; a group with no class left is
    ``None`` (a dash in tables, ``null`` in JSON), never NaN.
    """
    per_class = np.asarray(per_class, dtype=np.float64)
    out: dict[str, float | None] = {}
    for name, mask in shot_groups(np.asarray(train_counts)).items():
        vals = per_class[mask & ~np.isnan(per_class)]
        out[name] = float(vals.mean()) if len(vals) else None
    return out


def group_sizes(train_counts) -> dict[str, int]:
    """Number of classes in each shot group."""
    return {k: int(v.sum()) for k, v in shot_groups(np.asarray(train_counts)).items()}
