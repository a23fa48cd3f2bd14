import numpy as np
import pytest

from _data_helpers import write_fashion
from lt_bench.data import load_dataset, long_tail_counts, shot_groups
from lt_bench.data.fashion_mnist import CLASSNAMES, DEFAULT_DIR, FILES
from lt_bench.errors import LTBenchError

HAVE_REAL = all((DEFAULT_DIR / f).is_file() for f in FILES.values())
needs_real = pytest.mark.skipif(
    not HAVE_REAL, reason=f"Fashion-MNIST not installed in {DEFAULT_DIR} "
                          "(apt-get install dataset-fashion-mnist)")


@needs_real
def test_real_files_default_location():
    ds = load_dataset("fashion_mnist_lt")
    assert ds.classnames == CLASSNAMES and ds.location == str(DEFAULT_DIR)
    assert ds.train_counts.tolist() == [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10]
    assert len(ds.split("train")) == 2_478
    assert len(ds.split("test")) == 10_000
    assert np.bincount(ds.split("test").labels).tolist() == [1000] * 10
    assert np.bincount(ds.split("val").labels).tolist() == [20] * 10
    g = shot_groups(ds.train_counts)
    assert all(g[k].sum() > 0 for k in ("many", "medium", "few"))
    img = ds.split("train").load_image(0)
    assert img.mode == "RGB" and img.size == (28, 28)
    # val images come from train images the long-tailed split did not take
    assert not set(ds.split("train").ids) & set(ds.split("val").ids)


@needs_real
def test_real_files_deterministic_per_seed():
    a, b = load_dataset("fashion_mnist_lt"), load_dataset("fashion_mnist_lt")
    c = load_dataset("fashion_mnist_lt", seed=1)
    assert a.split("train").ids == b.split("train").ids
    assert a.split("train").ids != c.split("train").ids
    assert np.array_equal(a.split("train").arrays, b.split("train").arrays)


def test_from_written_idx_files_via_root(tmp_path):
    root = write_fashion(tmp_path / "fm", train_per_class=40, test_per_class=6)
    ds = load_dataset("fashion_mnist_lt", root=root, max_per_class=30, imbalance=10,
                      val_per_class=5)
    assert ds.train_counts.tolist() == long_tail_counts(30, 10, 10) == [30, 23, 17, 13, 10, 8, 6, 5, 3, 3]
    assert len(ds.split("val")) == 50 and len(ds.split("test")) == 60
    assert ds.options == {"max_per_class": 30, "imbalance": 10.0, "seed": 0, "val_per_class": 5}
    # the arrays are the file's images, chosen by id
    from lt_bench.data.fashion_mnist import read_idx
    raw = read_idx(root / "train-images-idx3-ubyte.gz")
    i = int(ds.split("train").ids[3].split("/")[1])
    assert np.array_equal(ds.split("train").arrays[3], raw[i])
    assert ds.split("test").load_image(0).mode == "RGB"
    # no val split when val_per_class=0
    assert "val" not in load_dataset("fashion_mnist_lt", root=root, max_per_class=30,
                                     val_per_class=0).splits


def test_too_few_images_for_profile(tmp_path):
    root = write_fashion(tmp_path / "fm", train_per_class=10, test_per_class=2)
    with pytest.raises(LTBenchError, match="class 0 has 10 train images"):
        load_dataset("fashion_mnist_lt", root=root, max_per_class=10)


def test_missing_files_message(tmp_path):
    with pytest.raises(LTBenchError) as e:
        load_dataset("fashion_mnist_lt", root=tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "--root" in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_corrupt_idx(tmp_path):
    root = write_fashion(tmp_path / "fm", train_per_class=40, test_per_class=6)
    import gzip
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x10abc")  # says 16 labels, has 3
    with pytest.raises(LTBenchError, match="truncated or corrupt"):
        load_dataset("fashion_mnist_lt", root=root, max_per_class=30)
