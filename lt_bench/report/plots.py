"""Per-class accuracy against the class's number of training images (log x), one colour per method.

Each class is a faint dot; a line joins the mean accuracy of classes binned by training count
(log-spaced bins), so head-to-tail trends stay readable with 1000 classes. The few / medium /
many-shot ranges (< 20, 20..100, > 100 training images) are shaded. Agg backend, no pyplot
state; the PNG is written atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..data.base import FEW_SHOT_MAX, MANY_SHOT_MIN
from ..errors import LTBenchError
from ..io import atomic_path
from .published import dataset_title
from .results import Result, ResultGroup, aggregate

# Shot groups by training images per class (docs/protocol.md): few < 20, medium 20..100, many > 100.
BANDS = (
    ("few-shot (<20)", 0.0, FEW_SHOT_MAX + 0.5, "#d62728"),
    ("medium-shot (20-100)", FEW_SHOT_MAX + 0.5, MANY_SHOT_MIN - 0.5, "#ff7f0e"),
    ("many-shot (>100)", MANY_SHOT_MIN - 0.5, math.inf, "#2ca02c"),
)
PALETTE = ("#1f77b4", "#9467bd", "#e377c2", "#17becf", "#8c564b", "#bcbd22", "#7f7f7f",
           "#393b79", "#637939", "#843c39")


def _binned_means(counts: np.ndarray, acc: np.ndarray, max_bins: int = 14):
    """Mean accuracy per log-spaced count bin (or per distinct count when there are few)."""
    ok = np.isfinite(acc)
    counts, acc = counts[ok], acc[ok]
    uniq = np.unique(counts)
    if len(uniq) <= max_bins:
        xs = uniq.astype(float)
        ys = np.array([acc[counts == u].mean() for u in uniq])
        return xs, ys
    edges = np.geomspace(max(counts.min(), 1), counts.max() + 1, max_bins + 1)
    idx = np.clip(np.digitize(counts, edges) - 1, 0, max_bins - 1)
    xs, ys = [], []
    for b in range(max_bins):
        sel = idx == b
        if sel.any():
            xs.append(float(np.exp(np.log(np.maximum(counts[sel], 1)).mean())))
            ys.append(float(acc[sel].mean()))
    return np.array(xs), np.array(ys)


def _draw(ax, groups: list[ResultGroup], dataset: str, colours: dict[str, str]) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    all_counts = []
    series = []
    for g in groups:
        acc, counts = g.per_class_mean()
        series.append((g, np.asarray(acc, float), np.asarray(counts, float)))
        all_counts.extend(counts)
    lo, hi = max(min(all_counts), 1) / 1.35, max(all_counts) * 1.35
    ymax = 105
    for label, a, b, colour in BANDS:
        a, b = max(a, lo), min(b, hi)
        if a >= b:
            continue
        ax.axvspan(a, b, color=colour, alpha=0.07, lw=0, zorder=0)
        ax.text(math.sqrt(a * b), ymax - 1.5, label, ha="center", va="top", fontsize=8.5,
                color=colour, alpha=0.9, fontweight="bold")
    for edge in (FEW_SHOT_MAX + 0.5, MANY_SHOT_MIN - 0.5):
        if lo < edge < hi:
            ax.axvline(edge, color="#999999", lw=0.8, ls=":", zorder=1)
    k = len(series)
    rng = np.random.default_rng(0)
    for i, (g, acc, counts) in enumerate(series):
        colour = colours.setdefault(g.label + g.first.backbone, PALETTE[len(colours) % len(PALETTE)])
        # Small multiplicative dodge per method and jitter so equal counts do not overprint.
        dodge = 1.0 + 0.04 * (i - (k - 1) / 2)
        jitter = np.exp(rng.uniform(-0.03, 0.03, size=len(counts)))
        ax.scatter(counts * dodge * jitter, acc, s=10 if len(acc) > 200 else 18, color=colour,
                   alpha=0.28 if len(acc) > 200 else 0.45, lw=0, zorder=2)
        xs, ys = _binned_means(counts, acc)
        overall = g.mean("overall")
        label = g.label
        if g.first.backbone not in label and len({x.first.backbone for x in groups}) > 1:
            label += f" · {g.first.backbone}"
        if overall is not None:
            label += f"  ({overall:.1f}% overall" + (f", n={g.n})" if g.n > 1 else ")")
        ax.plot(xs * dodge, ys, color=colour, lw=2.2, marker="o", ms=4.5, zorder=3, label=label)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-2, ymax)
    ax.set_xlabel("training images of the class (log scale)")
    ax.set_ylabel("per-class top-1 accuracy (%)")
    ax.grid(True, which="major", color="#dddddd", lw=0.6, zorder=0)
    ax.grid(True, which="minor", axis="x", color="#eeeeee", lw=0.4, zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    models = sorted({g.first.backbone for g in groups})
    split = "/".join(sorted({g.first.split for g in groups}))
    ax.set_title(f"{dataset_title(dataset)} ({split}) · {', '.join(models)}", fontsize=11.5)
    # Below the axes: per-class dots fill the whole plot area, so no corner is free.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(len(series), 3), fontsize=9,
              frameon=False, title="lines: mean of classes binned by training count; dots: single classes",
              title_fontsize=8.5)


def plot_per_class(results: list[Result], path: str | os.PathLike, dpi: int = 150) -> Path:
    """Write a PNG of per-class accuracy vs training count; one panel per dataset."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not results:
        raise LTBenchError("nothing to plot: no result files")
    by_dataset: dict[str, list[Result]] = {}
    for r in results:
        r.per_class()  # validate before drawing anything
        by_dataset.setdefault(r.dataset, []).append(r)
    n = len(by_dataset)
    fig = Figure(figsize=(9.5 * n if n > 1 else 10, 5.8), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    colours: dict[str, str] = {}  # one colour per method across panels
    for ax, (dataset, rs) in zip(axes, by_dataset.items()):
        _draw(ax, aggregate(rs), dataset, colours)
    fig.suptitle("Per-class accuracy against training-set frequency", fontsize=13, fontweight="bold")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
