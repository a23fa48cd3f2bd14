"""Extraction throughput and cache read throughput.

``test_bench_extract``: ``extract_features`` (the library call behind ``ltbench extract``) on
the synthetic dataset with the tiny ViT, against the same model's forward pass alone on
preloaded, preprocessed tensors at the same batch size, measured in the same run:
``ratio`` = extraction images/s / forward images/s (1.0 = image loading, transforms and HDF5
writes cost nothing). With a 32 px tiny model the forward pass is nearly free, so the ratio
mostly shows the data side; with ViT-B/16 on a GPU the forward pass dominates.

``test_bench_cache_read``: ``FeatureCache(...).features('train')`` (float16 on disk -> float32,
finite check) on a 100,000 x 512 cache (quick: 20,000 x 512) against numpy reading an equally
sized raw file (``np.fromfile`` + ``astype(float32)``), and the raw float16 read
(``features_raw[()]``) against ``np.fromfile``; each for the cache as written now (checksummed:
4 MiB chunks with HDF5's Fletcher32, v110+ metadata checksums) and as written before checksums
(contiguous, unchecked), so the checksums' cost is the difference of two ratios of one run
(issue 11: what commands read, ``features``, must stay >= 0.8 of numpy). Files are in the page
cache (just written): this measures h5py's overhead, not the disk.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lt_bench.data import load_dataset
from lt_bench.features import FeatureCache, root_attrs, write_cache
from lt_bench.features.extract import ExtractOptions, extract_features
from lt_bench.models import create_model

from .conftest import QUICK

EXTRACT_TABLE = "Feature extraction: ltbench extract vs the model's forward pass alone"
READ_TABLE = "Feature cache read throughput: h5py vs numpy on the same bytes"
BATCH = 256
PER_CLASS = 100 if QUICK else 800  # synthetic, 10 classes, imbalance 1: 1,000 / 8,000 images
N_READ, D_READ = (20_000, 512) if QUICK else (100_000, 512)


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@torch.inference_mode()
def _forward_images_per_s(model, x: torch.Tensor) -> float:
    def run():
        for s in range(0, len(x), BATCH):
            model.encode_image(x[s:s + BATCH])

    run()  # warm-up
    return len(x) / _best(run, 2 if QUICK else 3)


@pytest.mark.parametrize("workers", [0, 2])
def test_bench_extract(benchmark, tmp_path, workers):
    torch.manual_seed(0)
    bundle = create_model("ltb-tiny-vit", "none")
    ds = load_dataset("synthetic", max_per_class=PER_CLASS, imbalance=1.0, val_per_class=0, test_per_class=0)
    split = ds.split("train")
    n = len(split)
    opts = ExtractOptions(splits=("train",), batch_size=BATCH, workers=workers, overwrite=True, progress=False)
    out = tmp_path / "f.h5"
    res = {}

    def run():
        res["r"] = extract_features(out, ds, bundle, opts)

    benchmark.pedantic(run, rounds=1 if QUICK else 2, iterations=1)
    extract_ips = n / benchmark.stats.stats.min
    x = torch.stack([bundle.preprocess_val(split.load_image(i)) for i in range(n)])
    forward_ips = _forward_images_per_s(bundle.model, x)
    with FeatureCache(out) as c:
        assert c.features("train").shape == (n, bundle.info.embed_dim)
    benchmark.extra_info.update(
        table=EXTRACT_TABLE,
        row=f"synthetic {n:,} images, ltb-tiny-vit 32 px, batch {BATCH}, {workers} workers" + (" (quick)" if QUICK else ""),
        images_per_s=round(extract_ips, 1), forward_images_per_s=round(forward_ips, 1),
        ratio=round(extract_ips / forward_ips, 3), torch_threads=torch.get_num_threads(),
        note="ratio = extraction images/s over forward-only images/s on preloaded tensors, same batch size, same run")


@pytest.fixture(scope="module")
def read_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("read")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_READ, D_READ), dtype=np.float32)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)  # unit rows, as extract writes
    attrs = root_attrs(model="m", pretrained="none", checkpoint_sha256="", dataset="d", num_classes=2,
                       embed_dim=D_READ, config={})
    caches = {}
    for name, checksums in (("checksummed", True), ("unchecked", False)):
        caches[name] = write_cache(
            d / f"{name}.h5", attrs=attrs, classnames=["a", "b"], train_counts=[1, 1], templates=["{}"],
            text_features=np.ones((1, 2, D_READ), np.float32), checksums=checksums,
            splits={"train": {"features": x, "labels": np.zeros(N_READ, np.int64), "paths": ["p"] * N_READ}})
    raw = d / "c.raw"
    x.tofile(raw)
    return caches, raw, x.nbytes


LAYOUTS = {"checksummed": "checksummed: Fletcher32, 4 MiB chunks", "unchecked": "before checksums: contiguous"}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("what", ["features_float32", "raw_float16"])
def test_bench_cache_read(benchmark, read_files, what, layout):
    caches, raw, nbytes = read_files
    repeat = 3 if QUICK else 5
    c = FeatureCache(caches[layout])
    assert c.checksummed == (layout == "checksummed")
    if what == "features_float32":
        fn, row = (lambda: c.features("train")), f"FeatureCache.features (float16 -> float32), {LAYOUTS[layout]}"
        ref, ref_name = (lambda: np.fromfile(raw, dtype=np.float16).astype(np.float32)), "np.fromfile + astype(float32)"
    else:
        fn, row = (lambda: c.features_raw("train")[()]), f"features_raw[()] (float16), {LAYOUTS[layout]}"
        ref, ref_name = (lambda: np.fromfile(raw, dtype=np.float16)), "np.fromfile"
    fn()
    benchmark.pedantic(fn, rounds=repeat, iterations=1)
    h5_gbs = nbytes / benchmark.stats.stats.min / 1e9
    np_gbs = nbytes / _best(ref, repeat) / 1e9
    benchmark.extra_info.update(
        table=READ_TABLE, row=f"{row}, {N_READ:,} x {D_READ}" + (" (quick)" if QUICK else ""),
        gb_per_s=round(h5_gbs, 3), numpy_gb_per_s=round(np_gbs, 3), numpy=ref_name,
        ratio=round(h5_gbs / np_gbs, 3),
        note="GB/s of the float16 bytes on disk, warm page cache; ratio = h5py / numpy, same run")
