import pytest

from lt_bench.data import dataset_info, list_datasets, load_dataset, parse_dataset_options
from lt_bench.errors import LTBenchError


def test_all_loaders_registered_with_info():
    names = list_datasets()
    for n in ("imagenet_lt", "places_lt", "cifar100_lt", "fashion_mnist_lt", "folder", "synthetic"):
        assert n in names
        info = dataset_info(n)
        assert info.description and info.location


def test_unknown_option_names_it_and_lists_known():
    with pytest.raises(LTBenchError) as e:
        load_dataset("synthetic", colour="red")
    msg = str(e.value)
    assert "'colour'" in msg and "num_classes" in msg and "imbalance" in msg


def test_unknown_option_for_loader_without_options():
    with pytest.raises(LTBenchError, match="takes no options"):
        load_dataset("imagenet_lt", root="/nonexistent", foo=1)


def test_unknown_dataset_lists_known():
    with pytest.raises(LTBenchError) as e:
        load_dataset("imagenet")
    assert "cifar100_lt" in str(e.value) and "fashion_mnist_lt" in str(e.value)


def test_parse_options_coerces_to_default_types():
    opts = parse_dataset_options("fashion_mnist_lt", ["imbalance=10", "max-per-class=50", "seed=3"])
    assert opts == {"imbalance": 10.0, "max_per_class": 50, "seed": 3}
    assert isinstance(opts["imbalance"], float) and isinstance(opts["max_per_class"], int)
    assert parse_dataset_options("folder", ["classnames=/x/names.txt"]) == {"classnames": "/x/names.txt"}
    with pytest.raises(LTBenchError, match="key=value"):
        parse_dataset_options("folder", ["classnames"])
    with pytest.raises(LTBenchError, match="seed=abc"):
        parse_dataset_options("fashion_mnist_lt", ["seed=abc"])


def test_options_record_what_built_it():
    ds = load_dataset("synthetic", num_classes=4, seed=2)
    again = load_dataset("synthetic", **ds.options)
    assert again.options == ds.options
    assert (again.train_counts == ds.train_counts).all()
