import numpy as np
import pytest

from lt_bench.data import read_split_file
from lt_bench.errors import LTBenchError


def test_good_file_spaces_and_blank_lines(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("a/b.jpg 0\n\n  train/my image 1.png   2  \nc.JPEG 1\n\n")
    ids, labels = read_split_file(f, num_classes=3)
    assert ids == ["a/b.jpg", "train/my image 1.png", "c.JPEG"]
    assert labels.dtype == np.int64 and labels.tolist() == [0, 2, 1]


def test_empty_file_gives_empty_split(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("\n\n")
    ids, labels = read_split_file(f)
    assert ids == [] and len(labels) == 0


@pytest.mark.parametrize("bad", ["just_a_path.jpg", "img.jpg cat", "img.jpg 1.5"])
def test_malformed_line_names_file_and_line(tmp_path, bad):
    f = tmp_path / "train.txt"
    f.write_text(f"a.jpg 0\n\n{bad}\n")
    with pytest.raises(LTBenchError) as e:
        read_split_file(f, num_classes=2)
    msg = str(e.value)
    assert str(f) in msg and "line 3" in msg and "\n" not in msg


@pytest.mark.parametrize("label", [5, -1])
def test_label_out_of_range_names_file_line_and_range(tmp_path, label):
    f = tmp_path / "val.txt"
    f.write_text(f"a.jpg 0\nb.jpg {label}\n")
    with pytest.raises(LTBenchError) as e:
        read_split_file(f, num_classes=5)
    msg = str(e.value)
    assert str(f) in msg and "line 2" in msg and "0..4" in msg and f"label {label}" in msg


def test_missing_file(tmp_path):
    with pytest.raises(LTBenchError, match="does not exist"):
        read_split_file(tmp_path / "nope.txt")
