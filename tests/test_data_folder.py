import pytest

from _data_helpers import write_png
from lt_bench.data import load_dataset, verify_images
from lt_bench.errors import LTBenchError


def _split_files(root, names=("cat", "dog", "red fox")):
    lines = {"train": [("a/1.png", 0), ("a/2.png", 0), ("b/1.png", 1), ("c/1.png", 2)],
             "test": [("t/1.png", 0), ("t/2.png", 2)]}
    for split, rows in lines.items():
        for rel, _ in rows:
            write_png(root / rel)
        (root / f"{split}.txt").write_text("".join(f"{r} {l}\n" for r, l in rows))
    (root / "classnames.txt").write_text("\n".join(names) + "\n")


def test_split_file_layout(tmp_path):
    _split_files(tmp_path)
    ds = load_dataset("folder", root=tmp_path)
    assert ds.classnames == ["cat", "dog", "red fox"]
    assert ds.train_counts.tolist() == [2, 1, 1] and set(ds.splits) == {"train", "test"}
    assert ds.options == {"layout": "splitfile"}
    assert verify_images(ds) == []


def test_split_file_layout_classnames_option_and_splits_dir(tmp_path):
    root, sdir = tmp_path / "img", tmp_path / "splits"
    _split_files(root)
    sdir.mkdir()
    for f in ("train.txt", "test.txt"):
        (root / f).rename(sdir / f)
    (root / "classnames.txt").rename(tmp_path / "names.txt")
    ds = load_dataset("folder", root=root, splits_dir=sdir, classnames=str(tmp_path / "names.txt"))
    assert ds.num_classes == 3 and len(ds.split("test")) == 2
    assert ds.options["classnames"] == str(tmp_path / "names.txt")


def test_classnames_count_mismatch(tmp_path):
    _split_files(tmp_path, names=("cat", "dog", "red fox", "owl"))
    with pytest.raises(LTBenchError) as e:
        load_dataset("folder", root=tmp_path)
    assert "4 class names" in str(e.value) and "0..2" in str(e.value)


def test_label_beyond_classnames(tmp_path):
    _split_files(tmp_path, names=("cat", "dog"))
    with pytest.raises(LTBenchError) as e:
        load_dataset("folder", root=tmp_path)
    msg = str(e.value)
    assert "train.txt line 4" in msg and "0..1" in msg and "2 class names" in msg


def test_missing_classnames_file(tmp_path):
    _split_files(tmp_path)
    (tmp_path / "classnames.txt").unlink()
    with pytest.raises(LTBenchError, match="classnames=PATH"):
        load_dataset("folder", root=tmp_path)


def _image_folders(root):
    for split, per in (("train", {"golden_retriever": 3, "tabby-cat": 2, "zebra": 1}),
                       ("val", {"zebra": 1}),
                       ("test", {"golden_retriever": 1, "tabby-cat": 1, "zebra": 1})):
        for cls, n in per.items():
            for k in range(n):
                write_png(root / split / cls / f"{k}.png")
    (root / "train" / "zebra" / "notes.txt").write_text("not an image")


def test_image_folder_layout(tmp_path):
    _image_folders(tmp_path)
    ds = load_dataset("folder", root=tmp_path)
    assert ds.classnames == ["golden retriever", "tabby cat", "zebra"]
    assert ds.train_counts.tolist() == [3, 2, 1]
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 6, "val": 1, "test": 3}
    assert ds.split("val").labels.tolist() == [2]
    assert ds.split("train").ids[0] == "train/golden_retriever/0.png"
    assert ds.options == {"layout": "imagefolder"}
    assert verify_images(ds) == []


def test_image_folder_classnames_file_and_mismatch(tmp_path):
    _image_folders(tmp_path)
    names = tmp_path / "names.txt"
    names.write_text("dog\ncat\nzebra\n")
    assert load_dataset("folder", root=tmp_path, classnames=str(names)).classnames == ["dog", "cat", "zebra"]
    names.write_text("dog\ncat\n")
    with pytest.raises(LTBenchError, match="2 class names but .* 3 class folders"):
        load_dataset("folder", root=tmp_path, classnames=str(names))


def test_image_folder_test_class_unknown_to_train(tmp_path):
    _image_folders(tmp_path)
    write_png(tmp_path / "test" / "unicorn" / "0.png")
    with pytest.raises(LTBenchError, match="unicorn"):
        load_dataset("folder", root=tmp_path)


def test_neither_layout(tmp_path):
    with pytest.raises(LTBenchError, match="train.txt.*train"):
        load_dataset("folder", root=tmp_path)
    with pytest.raises(LTBenchError, match="layout must be one of"):
        load_dataset("folder", root=tmp_path, layout="zip")
