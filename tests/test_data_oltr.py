import pytest

from _data_helpers import write_oltr
from lt_bench.data import load_dataset, verify_images
from lt_bench.errors import LTBenchError


@pytest.fixture
def imagenet_tree(tmp_path):
    root = tmp_path / "imagenet"
    train = [0] * 3 + [1] * 2 + [999]
    write_oltr(root, "ImageNet_LT", 1000, {"train": train, "val": [0, 1], "test": [0, 1, 999]})
    return root


def test_imagenet_lt_from_split_files(imagenet_tree):
    ds = load_dataset("imagenet_lt", root=imagenet_tree)
    assert ds.num_classes == 1000
    assert ds.classnames[0] == "tench" and ds.classnames[1] == "goldfish"
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 6, "val": 2, "test": 3}
    assert ds.train_counts[0] == 3 and ds.train_counts[999] == 1
    assert ds.split("train").ids[0] == "train/c0/img 0.png"
    img = ds.split("train").load_image(1)  # a JPEG
    assert img.mode == "RGB" and img.size == (8, 8)
    assert ds.location == str(imagenet_tree)
    assert verify_images(ds) == []


def test_val_is_optional_train_and_test_required(imagenet_tree):
    (imagenet_tree / "ImageNet_LT_val.txt").unlink()
    ds = load_dataset("imagenet_lt", root=imagenet_tree)
    assert set(ds.splits) == {"train", "test"}
    (imagenet_tree / "ImageNet_LT_test.txt").unlink()
    with pytest.raises(LTBenchError) as e:
        load_dataset("imagenet_lt", root=imagenet_tree)
    assert "ImageNet_LT_test.txt" in str(e.value) and "--splits-dir" in str(e.value)


def test_places_lt_with_separate_splits_dir(tmp_path):
    root, splits = tmp_path / "places", tmp_path / "splits"
    write_oltr(root, "Places_LT", 365, {"train": [0, 0, 1, 364], "test": [0, 1, 364]},
               splits_dir=splits)
    ds = load_dataset("places_lt", root=root, splits_dir=splits)
    assert ds.num_classes == 365
    assert ds.classnames[0] == "airfield" and ds.classnames[1] == "airplane cabin"
    assert all("_" not in n and "/" not in n and "-" not in n for n in ds.classnames)
    assert len(ds.split("train")) == 4 and "val" not in ds.splits
    # Without --splits-dir the split files are looked for in root: a clear error.
    with pytest.raises(LTBenchError, match="Places_LT_train.txt.*--splits-dir"):
        load_dataset("places_lt", root=root)


def test_missing_root_says_what_to_pass(tmp_path):
    with pytest.raises(LTBenchError, match="--root"):
        load_dataset("imagenet_lt")
    with pytest.raises(LTBenchError) as e:
        load_dataset("places_lt", root=tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value) and "--root" in str(e.value)


def test_label_out_of_range(tmp_path):
    root = tmp_path / "p"
    write_oltr(root, "Places_LT", 365, {"train": [0], "test": [0]})
    (root / "Places_LT_train.txt").write_text("train/c0/img 0.png 365\n")
    with pytest.raises(LTBenchError) as e:
        load_dataset("places_lt", root=root)
    assert "line 1" in str(e.value) and "0..364" in str(e.value)


def test_verify_finds_missing_and_undecodable(imagenet_tree):
    ds = load_dataset("imagenet_lt", root=imagenet_tree)
    (imagenet_tree / "train/c0/img 0.png").unlink()
    (imagenet_tree / "test/c1/img 1.jpg").write_bytes(b"this is not a jpeg")
    bad = verify_images(ds)
    by_id = {b.id: b for b in bad}
    assert set(by_id) == {"train/c0/img 0.png", "test/c1/img 1.jpg"}
    assert by_id["train/c0/img 0.png"].reason == "missing"
    assert by_id["test/c1/img 1.jpg"].reason.startswith("undecodable")
