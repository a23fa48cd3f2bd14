"""`ltbench datasets` on files the tests write (in process; the console script itself: test_cli_help.py)."""

import json

import pytest

from _cli import run_cli
from _data_helpers import write_cifar100, write_fashion, write_oltr, write_png


def run(*args):
    return run_cli("datasets", *args)


def assert_error(r, *fragments):
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines and lines[-1].startswith("ltbench: error: "), r.stderr
    assert sum(l.startswith("ltbench: error:") for l in lines) == 1
    for f in fragments:
        assert f in lines[-1], (f, lines[-1])
    return lines[-1]


@pytest.fixture
def places(tmp_path):
    root = tmp_path / "places"
    write_oltr(root, "Places_LT", 365, {"train": [0, 0, 0, 1, 2], "val": [0, 1], "test": [0, 1, 2]})
    return root


def test_list():
    r = run()
    assert r.returncode == 0, r.stderr
    for name in ("imagenet_lt", "places_lt", "cifar100_lt", "fashion_mnist_lt", "folder", "synthetic"):
        assert name in r.stdout
    assert "fashion-mni" in r.stdout


def test_list_json():
    r = run("--json")
    assert r.returncode == 0
    listed = {d["name"]: d for d in json.loads(r.stdout)}
    assert listed["cifar100_lt"]["options"] == {"imbalance": 100}
    assert "/usr/share/datasets/fashion-mnist" in listed["fashion_mnist_lt"]["location"]


def test_describe_places(places):
    r = run("--dataset", "places_lt", "--root", places)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "places_lt" in out and "train" in out and "val" in out and "test" in out
    assert "classes: 365" in out and "3..0" in out  # train max..min over all 365 classes
    assert "many / medium / few-shot classes: 0 / 0 / 365" in out


def test_json_and_verify_ok(places):
    r = run("-d", "places_lt", "--root", places, "--verify", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["num_classes"] == 365
    assert {k: v["images"] for k, v in s["splits"].items()} == {"train": 5, "val": 2, "test": 3}
    assert s["train_per_class"] == {"max": 3, "min": 0}
    assert s["shot_groups"] == {"many": 0, "medium": 0, "few": 365}
    assert s["verify"] == {"checked": 10, "bad": []}


def test_verify_reports_missing_and_undecodable(places):
    (places / "train/c0/img 0.png").unlink()
    (places / "test/c1/img 1.jpg").write_bytes(b"\x00garbage")
    r = run("-d", "places_lt", "--root", places, "--verify")
    assert_error(r, "2 of 10 images", "train/c0/img 0.png", "test/c1/img 1.jpg")
    assert "train/c0/img 0.png: missing" in r.stdout
    assert "test/c1/img 1.jpg: undecodable" in r.stdout


def test_cifar_errors(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root, train_per_class=50, test_per_class=2)  # too few for the recipe
    r = run("-d", "cifar100_lt", "--root", root)
    assert_error(r, "has 50 images of class 0", "recipe keeps 500")
    r = run("-d", "cifar100_lt", "--root", root, "--imbalance", "20")
    assert_error(r, "imbalance must be one of 10, 50, 100")


def test_fashion_from_root_with_options(tmp_path):
    root = write_fashion(tmp_path / "fm", train_per_class=40, test_per_class=3)
    r = run("-d", "fashion_mnist_lt", "--root", root, "--imbalance", "10",
            "-o", "max_per_class=30", "--option", "val-per-class=4", "--seed", "1", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["options"] == {"max_per_class": 30, "imbalance": 10.0, "seed": 1, "val_per_class": 4}
    assert s["splits"]["val"]["images"] == 40 and s["splits"]["test"]["images"] == 30
    assert s["train_per_class"] == {"max": 30, "min": 3}


def test_config_file(tmp_path, places):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'dataset = "places_lt"\nroot = "{places}"\njson = true\n')
    r = run("--config", cfg)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["num_classes"] == 365
    cfg.write_text('dataset = "places_lt"\ncolour = "red"\n')
    assert_error(run("--config", cfg), "unknown key 'colour'")


def test_fashion_mnist_default_location():
    from lt_bench.data.fashion_mnist import DEFAULT_DIR
    if not (DEFAULT_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed in {DEFAULT_DIR} (apt-get install dataset-fashion-mnist)")
    r = run("-d", "fashion_mnist_lt")
    assert r.returncode == 0, r.stderr
    assert "2,478" in r.stdout and "10,000" in r.stdout and "1000..10" in r.stdout
    assert "many / medium / few-shot classes: 5 / 3 / 2" in r.stdout


def test_folder_ok(tmp_path):
    for split, cls in (("train", "a"), ("train", "b"), ("test", "a"), ("test", "b")):
        write_png(tmp_path / split / cls / "0.png")
    r = run("-d", "folder", "--root", tmp_path, "--verify")
    assert r.returncode == 0, r.stderr
    assert "classes: 2" in r.stdout and "all 4 images exist and decode" in r.stdout


# ---- each bad input: exit 1, one line on stderr starting `ltbench: error:` ----

def test_error_missing_root(tmp_path):
    assert_error(run("-d", "imagenet_lt"), "--root")
    assert_error(run("-d", "imagenet_lt", "--root", tmp_path / "nope"),
                 str(tmp_path / "nope"), "--root")


def test_error_missing_split_file(places):
    (places / "Places_LT_train.txt").unlink()
    assert_error(run("-d", "places_lt", "--root", places),
                 "Places_LT_train.txt", "--splits-dir")
    assert_error(run("-d", "places_lt", "--root", places, "--splits-dir", places.parent / "nosplits"),
                 "--splits-dir")


def test_error_malformed_line(places):
    f = places / "Places_LT_test.txt"
    f.write_text(f.read_text() + "just/a/path.jpg\n")
    assert_error(run("-d", "places_lt", "--root", places),
                 str(f), "line 5")  # line 4 is the blank line the writer leaves


def test_error_label_out_of_range(places):
    f = places / "Places_LT_val.txt"
    f.write_text("val/c0/img 0.png 0\nval/c1/img 1.jpg 400\n")
    assert_error(run("-d", "places_lt", "--root", places),
                 str(f), "line 2", "0..364")


def test_error_classnames_count_mismatch(tmp_path):
    for split, cls in (("train", "a"), ("train", "b"), ("test", "a")):
        write_png(tmp_path / split / cls / "0.png")
    names = tmp_path / "names.txt"
    names.write_text("alpha\nbeta\ngamma\n")
    assert_error(run("-d", "folder", "--root", tmp_path,
                     "-o", f"classnames={names}"), "3 class names", "2 class folders")


def test_error_unknown_dataset():
    assert_error(run("-d", "imagenet"), "unknown dataset 'imagenet'",
                 "cifar100_lt", "fashion_mnist_lt", "folder", "imagenet_lt", "places_lt")


def test_error_unknown_option(places):
    assert_error(run("-d", "cifar100_lt", "-o", "colour=red"),
                 "no option 'colour'", "imbalance")
    assert_error(run("-d", "places_lt", "--root", places, "--imbalance", "10"),
                 "no option 'imbalance'", "takes no options")
    assert_error(run("-d", "places_lt", "-o", "oops"), "key=value")
