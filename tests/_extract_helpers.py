"""Shared by the extraction tests: one small synthetic command line and array comparison."""

from __future__ import annotations

import subprocess
from pathlib import Path

import h5py
import numpy as np

# Big enough that a kill lands mid-way through train (batch 8, 772 train images with 3..6 views
# each by a view budget of 6: ragged, and batches cut by the 4 x 8 views cap), small enough for
# seconds on 2 cores (the slow tier's kill -9 and torchrun).
KILL_MAX_PER_CLASS = 250
# The fast tier's reference: 119 train images, about a second in process.
SMALL_MAX_PER_CLASS = 40
VIEW_BUDGET = 6


def synth_options(max_per_class: int) -> list[str]:
    return ["--option", f"max_per_class={max_per_class}", "--option", "val_per_class=3",
            "--option", "test_per_class=6"]


def extract_args(out: Path, *extra: str, view_budget: int = VIEW_BUDGET, views: int | None = None,
                 batch_size: int = 8, workers: int = 0, max_per_class: int = KILL_MAX_PER_CLASS) -> list[str]:
    """`ltbench extract` arguments on the synthetic set: the view budget, or flat ``views`` when given."""
    budget = ["--views", str(views)] if views is not None else ["--view-budget", str(view_budget)]
    return ["extract", "--dataset", "synthetic", *synth_options(max_per_class), "--model", "ltb-tiny-vit",
            "--pretrained", "none", "--splits", "train,val,test", *budget,
            "--batch-size", str(batch_size), "--workers", str(workers), "--seed", "3", "--device", "cpu",
            "--out", str(out), *extra]


def run(cmd: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


ARRAYS = ("features", "aug_features", "aug_offsets", "labels", "paths")


def assert_same_arrays(a: Path, b: Path) -> None:
    """Every array of two caches equal (exactly), text side included; attrs equal but per-run ones."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for key in ("classes/names", "classes/train_counts", "text/templates", "text/features", "text/classifier"):
            assert np.array_equal(fa[key][()], fb[key][()]), key
        assert [s for s in ("train", "val", "test") if s in fa] == [s for s in ("train", "val", "test") if s in fb]
        for s in ("train", "val", "test"):
            if s not in fa:
                continue
            assert set(fa[s]) == set(fb[s]), s
            for name in ARRAYS:
                if name in fa[s]:
                    assert fa[s][name].shape == fb[s][name].shape, (s, name)
                    assert np.array_equal(fa[s][name][()], fb[s][name][()]), (s, name)
            assert dict(fa[s].attrs) == dict(fb[s].attrs), s
        per_run = {"created", "config", "environment"}
        ra = {k: v for k, v in fa.attrs.items() if k not in per_run}
        rb = {k: v for k, v in fb.attrs.items() if k not in per_run}
        assert ra == rb
