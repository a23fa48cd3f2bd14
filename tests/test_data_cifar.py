import numpy as np
import pytest

from _data_helpers import write_cifar10, write_cifar100
from lt_bench.data import load_dataset, shot_groups
from lt_bench.errors import LTBenchError


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    """The real 150 MB of pickles (the recipe needs 500 train images per class), written once per module."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root)
    return root


@pytest.fixture(scope="module")
def cifar100(cifar_root):
    return load_dataset("cifar100_lt", root=cifar_root)


def test_imbalance_100_counts_and_groups(cifar100):
    ds = cifar100
    assert ds.num_classes == 100 and ds.classnames[4] == "aquarium fish"
    assert len(ds.split("train")) == 10_847
    assert len(ds.split("test")) == 10_000
    assert "val" not in ds.splits
    counts = ds.train_counts
    assert counts[0] == 500 and counts[99] == 5
    g = shot_groups(counts)
    assert (g["many"].sum(), g["medium"].sum(), g["few"].sum()) == (35, 35, 30)
    assert ds.options == {"imbalance": 100}
    arr = ds.split("train").arrays
    assert arr.shape == (10_847, 32, 32, 3) and arr.dtype == np.uint8
    assert ds.split("test").load_image(0).size == (32, 32)


@pytest.mark.parametrize("imb,total,last", [(10, 19_573, 50), (50, 12_608, 10)])
def test_other_imbalance_factors(cifar_root, imb, total, last):
    ds = load_dataset("cifar100_lt", root=cifar_root, imbalance=imb)
    assert len(ds.split("train")) == total and ds.train_counts[99] == last
    assert len(ds.split("test")) == 10_000


def test_selection_matches_cao_reference_code(cifar_root, cifar100):
    """Same images as LDAM-DRW's IMBALANCECIFAR100 (global seed 0, shuffle per class)."""
    import pickle
    with open(cifar_root / "cifar-100-python" / "train", "rb") as f:
        d = pickle.load(f, encoding="bytes")
    data = d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    targets = np.array(d[b"fine_labels"], dtype=np.int64)
    state = np.random.get_state()
    try:
        np.random.seed(0)
        new_data = []
        for c in np.unique(targets):
            n = int(500 * (0.01 ** (c / 99.0)))
            idx = np.where(targets == c)[0]
            np.random.shuffle(idx)
            new_data.append(data[idx[:n], ...])
        expected = np.vstack(new_data)
    finally:
        np.random.set_state(state)
    ds = cifar100
    assert np.array_equal(ds.split("train").arrays, expected)
    # Image pixels: row i of the pickle is CHW; the loaded image is HWC.
    i = int(ds.split("train").ids[0].split("/")[1])
    assert np.array_equal(ds.split("train").arrays[0][..., 0], d[b"data"][i, :1024].reshape(32, 32))


def test_pickles_directly_in_root(tmp_path, cifar_root):
    for f in ("train", "test", "meta"):
        (tmp_path / f).symlink_to(cifar_root / "cifar-100-python" / f)
    ds = load_dataset("cifar100_lt", root=tmp_path, imbalance=10)
    assert len(ds.split("train")) == 19_573


def test_errors(tmp_path, cifar_root):
    with pytest.raises(LTBenchError, match="--root"):
        load_dataset("cifar100_lt")
    with pytest.raises(LTBenchError, match="no CIFAR-100 python pickles"):
        load_dataset("cifar100_lt", root=tmp_path)
    with pytest.raises(LTBenchError, match="imbalance must be one of 10, 50, 100"):
        load_dataset("cifar100_lt", root=cifar_root, imbalance=20)


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory):
    """The CIFAR-10 pickles at full size (5,000 train images per class), written once per module."""
    root = tmp_path_factory.mktemp("cifar10")
    write_cifar10(root)
    return root


@pytest.mark.parametrize("imb,total,last", [(100, 12_406, 50), (50, 13_996, 100), (10, 20_431, 500)])
def test_cifar10_lt_counts(cifar10_root, imb, total, last):
    ds = load_dataset("cifar10_lt", root=cifar10_root, imbalance=imb)
    assert ds.num_classes == 10 and ds.classnames[0] == "airplane"
    assert len(ds.split("train")) == total and ds.train_counts[0] == 5000 and ds.train_counts[9] == last
    assert len(ds.split("test")) == 10_000 and "val" not in ds.splits
    assert ds.options == {"imbalance": imb}


def test_cifar10_selection_matches_cao_reference_code(cifar10_root):
    """Same images as LDAM-DRW's IMBALANCECIFAR10: torchvision's batch order, global seed 0, shuffle per class."""
    import pickle
    data, targets = [], []
    for b in range(1, 6):
        with open(cifar10_root / "cifar-10-batches-py" / f"data_batch_{b}", "rb") as f:
            d = pickle.load(f, encoding="bytes")
        data.append(d[b"data"])
        targets.extend(d[b"labels"])
    data = np.vstack(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    targets = np.array(targets, dtype=np.int64)
    state = np.random.get_state()
    try:
        np.random.seed(0)
        expected = []
        for c in np.unique(targets):
            n = int(5000 * (0.01 ** (c / 9.0)))
            idx = np.where(targets == c)[0]
            np.random.shuffle(idx)
            expected.append(data[idx[:n], ...])
    finally:
        np.random.set_state(state)
    ds = load_dataset("cifar10_lt", root=cifar10_root)
    assert np.array_equal(ds.split("train").arrays, np.vstack(expected))


def test_cifar10_errors(tmp_path, cifar10_root):
    with pytest.raises(LTBenchError, match="no CIFAR-10 python pickles"):
        load_dataset("cifar10_lt", root=tmp_path)
    with pytest.raises(LTBenchError, match="imbalance must be one of"):
        load_dataset("cifar10_lt", root=cifar10_root, imbalance=200)
