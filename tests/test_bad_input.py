"""Bad input as a hostile user gives it: a one-line error naming what to fix, exit 1 or 2, no
traceback, and every file that existed before byte-for-byte unchanged (issue: outputs never
overwrite inputs; output paths are checked before any work)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from _cli import check_refused, run_cli
from lt_bench.features.synthetic import make_synthetic_cache

SYNTH = ["--dataset", "synthetic", "--model", "ltb-tiny-vit", "--pretrained", "none", "--device", "cpu"]
# A folder nothing can be written in, as the tests run it (as root, a chmod 555 folder is writable).
UNWRITABLE = "/proc"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    cache = make_synthetic_cache(d / "f.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3)
    assert run_cli("adapt", cache, "--head", "linear", "--epochs", "1", "--out", d / "h.pt").returncode == 0
    for name in ("a", "b"):
        assert run_cli("eval", cache, "--baseline", "zeroshot", "--json", d / f"{name}.json").returncode == 0
    os.symlink(d / "f.h5", d / "link.h5")
    os.link(d / "a.json", d / "hard.json")
    (d / "folder").mkdir()
    (d / "notutf8.toml").write_bytes(b"epochs = \xff\xfe\n")
    (d / "bool.toml").write_text("epochs = true\n")
    (d / "random.bin").write_bytes(bytes(range(256)) * 20)
    head = torch.load(d / "h.pt", weights_only=True)
    torch.save(dict(head, config=json.dumps(dict(json.loads(head["config"]), bogus=1))), d / "badkey.pt")
    torch.save(dict(head, dim=99), d / "baddim.pt")
    empty = d / "empty"  # a folder dataset whose train split file lists no image
    empty.mkdir()
    (empty / "classnames.txt").write_text("cat\ndog\n")
    (empty / "train.txt").write_text("")
    (empty / "test.txt").write_text("t.png 0\nu.png 1\n")
    return d


# case -> (argv with {d} for the folder, exit code, words the message must hold)
CASES = {
    "adapt --out the cache": (["adapt", "{d}/f.h5", "--out", "{d}/f.h5"], 1, "is the input"),
    "adapt --out a symlink to the cache": (["adapt", "{d}/f.h5", "--out", "{d}/link.h5"], 1, "is the input"),
    "eval --json the cache": (["eval", "{d}/f.h5", "--baseline", "ncm", "--json", "{d}/f.h5"], 1, "is the input"),
    "eval --json the head": (["eval", "{d}/f.h5", "--head", "{d}/h.pt", "--json", "{d}/h.pt"], 1, "is the input"),
    "report --out a result": (["report", "{d}/a.json", "{d}/b.json", "--out", "{d}/a.json"], 1, "is the input"),
    "report --out a hard link of a result": (["report", "{d}/a.json", "--out", "{d}/hard.json", "-f", "md"], 1,
                                             "is the input"),
    "adapt --out a folder": (["adapt", "{d}/f.h5", "--out", "{d}/folder"], 1, "is a folder"),
    "eval --json under a file": (["eval", "{d}/f.h5", "--baseline", "zeroshot", "--json", "{d}/a.json/x.json"], 1,
                                 "cannot be made"),
    "report --plot unknown format": (["report", "{d}/a.json", "--plot", "{d}/p.xyz"], 1, "--plot"),
    "config not UTF-8": (["adapt", "{d}/f.h5", "--out", "{d}/x.pt", "--config", "{d}/notutf8.toml"], 1, "UTF-8"),
    "posthoc tau nan": (["eval", "{d}/f.h5", "--baseline", "zeroshot", "--posthoc-tau", "nan"], 1, "finite"),
    "momentum negative": (["adapt", "{d}/f.h5", "--out", "{d}/x.pt", "--momentum", "-1"], 1, "--momentum"),
    "weight decay negative": (["adapt", "{d}/f.h5", "--out", "{d}/x.pt", "--weight-decay", "-1"], 1,
                              "--weight-decay"),
    "missing --out": (["adapt", "{d}/f.h5"], 2, "--out"),
    # output paths nothing can be written at, checked before the work (issue 11: 24 tracebacks)
    "extract --out in an unwritable folder": (["extract", *SYNTH, "--out", f"{UNWRITABLE}/f.h5"], 1,
                                              f"cannot write in the folder {UNWRITABLE}"),
    "adapt --out in an unwritable folder": (["adapt", "{d}/f.h5", "--out", f"{UNWRITABLE}/h.pt"], 1,
                                            f"cannot write in the folder {UNWRITABLE}"),
    "eval --json in an unwritable folder": (["eval", "{d}/f.h5", "--baseline", "ncm", "--json",
                                             f"{UNWRITABLE}/r.json"], 1, f"cannot write in the folder {UNWRITABLE}"),
    "report --out in an unwritable folder": (["report", "{d}/a.json", "--out", f"{UNWRITABLE}/t.md"], 1,
                                             f"cannot write in the folder {UNWRITABLE}"),
    "report --plot in an unwritable folder": (["report", "{d}/a.json", "--plot", f"{UNWRITABLE}/p.png"], 1,
                                              f"cannot write in the folder {UNWRITABLE}"),
    "finetune --out in an unwritable folder": (["finetune", *SYNTH, "--out", f"{UNWRITABLE}/run"], 1,
                                               f"cannot write in the folder {UNWRITABLE}"),
    "extract --out a folder": (["extract", *SYNTH, "--out", "{d}/folder"], 1, "is a folder"),
    "eval --json a folder": (["eval", "{d}/f.h5", "--baseline", "ncm", "--json", "{d}/folder"], 1, "is a folder"),
    "report --out a folder": (["report", "{d}/a.json", "--out", "{d}/folder"], 1, "is a folder"),
    "report --plot a folder": (["report", "{d}/a.json", "--plot", "{d}/folder"], 1, "is a folder"),
    "finetune --out a file": (["finetune", *SYNTH, "--out", "{d}/f.h5"], 1, "is a file, not a folder"),
    # options and files of the wrong kind or size
    "extract --views 1000000000": (["extract", *SYNTH, "--views", "1000000000", "--out", "{d}/v.h5"], 1,
                                   "1000000000 augmented views"),
    "adapt --batch-size 100000000": (["adapt", "{d}/f.h5", "--head", "linear", "--batch-size", "100000000",
                                      "--out", "{d}/x.pt"], 1, "--batch-size 100000000"),
    "config bool for an int": (["adapt", "{d}/f.h5", "--out", "{d}/x.pt", "--config", "{d}/bool.toml"], 1,
                               "key 'epochs' is true, a boolean"),
    "head with an unknown config key": (["eval", "{d}/f.h5", "--head", "{d}/badkey.pt"], 1, "bogus"),
    "head whose dim disagrees with its weights": (["eval", "{d}/f.h5", "--head", "{d}/baddim.pt"], 1, "dim"),
    "empty train split file": (["extract", "--dataset", "folder", "--root", "{d}/empty", "--model", "ltb-tiny-vit",
                                "--pretrained", "none", "--device", "cpu", "--splits", "train,test",
                                "--out", "{d}/e.h5"], 1,
                               "split 'train' of dataset folder has no images"),
    # messages that mislead (issue 15, item 5)
    "pretrained not a checkpoint": (["extract", *SYNTH[:4], "--pretrained", "{d}/random.bin", "--device", "cpu",
                                     "--out", "{d}/w.h5"], 1, "is not a plain PyTorch checkpoint"),
    "pretrained a text file": (["extract", *SYNTH[:4], "--pretrained", "{d}/bool.toml", "--device", "cpu",
                                "--out", "{d}/w.h5"], 1, "is not a PyTorch checkpoint of a state_dict"),
    "tau nan": (["adapt", "{d}/f.h5", "--head", "cosine", "--tau", "nan", "--out", "{d}/x.pt"], 1,
                "--tau must be a finite number"),
    "alpha nan": (["adapt", "{d}/f.h5", "--head", "ballad", "--alpha", "nan", "--out", "{d}/x.pt"], 1,
                  "--alpha must be a finite number"),
    "eval --split validation": (["eval", "{d}/f.h5", "--baseline", "ncm", "--split", "validation"], 2,
                                "'validation' is not one of 'train', 'val', 'test'"),
    "report a folder": (["report", "{d}/folder"], 1, "is a folder, not a result file"),
    "datasets --root a file": (["datasets", "--dataset", "folder", "--root", "{d}/a.json"], 1,
                               "is a file, not a folder"),
    "demo --epochs 0": (["demo", "--epochs", "0", "--out", "{d}/demo"], 1, "--epochs must be at least 1"),
    # every step's options checked before any work (issue 15, item 6)
    "demo --views -1": (["demo", "--views", "-1", "--out", "{d}/demo"], 1, "--views must be at least 0"),
    "reproduce --set adapt.epochs=-1": (["reproduce", "smoke", "--set", "adapt.epochs=-1", "--out", "{d}/rep"], 1,
                                        "--epochs must be at least 1"),
    "reproduce --dry-run --set finetune.epochs=ten": (["reproduce", "smoke", "--set", "finetune.epochs=ten",
                                                       "--out", "{d}/rep", "--dry-run"], 1,
                                                      "--epochs takes a whole number, not 'ten'"),
}

@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_costs_nothing(files, case):
    check_refused(files, *CASES[case])


@pytest.mark.parametrize("error,words", [
    (ZeroDivisionError("boom"), "unexpected ZeroDivisionError: boom (rerun with LTBENCH_DEBUG=1"),
    (OSError(28, "No space left on device", "/data/out.json"), "No space left on device: /data/out.json"),
    (PermissionError(13, "Permission denied", "/data/x.h5"), "Permission denied: /data/x.h5"),
])
def test_the_last_line_of_defence(files, monkeypatch, error, words):
    """A failure no check foresaw (here injected into the eval step) still prints one line; the
    traceback only with LTBENCH_DEBUG=1."""
    from lt_bench.pipeline import steps

    def fail(*_, **__):
        raise error

    monkeypatch.setattr(steps, "run_eval", fail)
    r = run_cli("eval", files / "f.h5", "--baseline", "zeroshot")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("ltbench: error: " + words), r.stderr
    monkeypatch.setenv("LTBENCH_DEBUG", "1")
    with pytest.raises(type(error)):
        run_cli("eval", files / "f.h5", "--baseline", "zeroshot")


# Issue 11's 46 bad inputs (4 that destroyed data, 18 that succeeded silently, 24 tracebacks;
# "trains and evaluates" counted as one case per command), each a row of a table-driven test:
# module -> the case (a CASES key, or a test function of that module) that covers it.
ISSUE_11 = {
    # destroyed data
    "adapt f.h5 --out f.h5": ("test_bad_input", "adapt --out the cache"),
    "eval f.h5 --baseline ncm --json f.h5": ("test_bad_input", "eval --json the cache"),
    "eval f.h5 --head h.pt --json h.pt": ("test_bad_input", "eval --json the head"),
    "report 0.json 1.json --out 0.json": ("test_bad_input", "report --out a result"),
    # succeeded silently
    "an empty train split file": ("test_bad_input", "empty train split file"),
    "32 flipped metadata bytes, trained": ("test_cache_integrity", "test_flipped_metadata_bytes_fail_in_one_line"),
    "32 flipped metadata bytes, evaluated": ("test_cache_integrity", "test_flipped_metadata_bytes_fail_in_one_line"),
    "a flipped byte of a data chunk": ("test_cache_integrity", "test_a_flipped_data_byte_fails_in_one_line"),
    "200 train values inf, trained": ("test_bad_cache", "200 train values inf, adapt"),
    "200 train values NaN, trained": ("test_bad_cache", "NaN train rows for a trained head"),
    "200 train values NaN, evaluated": ("test_bad_cache", "200 train values NaN, ncm"),
    "200 train values huge, trained": ("test_bad_cache", "200 train values huge, adapt"),
    "200 train values huge, evaluated": ("test_bad_cache", "200 train values huge, ncm"),
    "a head of another cache of the same names": ("test_cache_integrity",
                                                   "test_a_head_from_another_cache_of_the_same_names_is_refused"),
    "--posthoc-tau nan": ("test_bad_input", "posthoc tau nan"),
    "NaN in every test feature": ("test_bad_cache", "NaN in every test feature"),
    "inf in test rows": ("test_bad_cache", "inf in some test rows"),
    "a test split of 0 rows": ("test_bad_cache", "test split of 0 rows"),
    "NCM on NaN train rows": ("test_bad_cache", "NaN train rows for ncm"),
    "--config epochs = true": ("test_bad_input", "config bool for an int"),
    "report --plot out.xyz": ("test_bad_input", "report --plot unknown format"),
    "a damaged superblock or object header": ("test_cache_integrity", "test_flipped_metadata_bytes_fail_in_one_line"),
    # tracebacks
    "extract --out in a read-only folder": ("test_bad_input", "extract --out in an unwritable folder"),
    "adapt --out in a read-only folder": ("test_bad_input", "adapt --out in an unwritable folder"),
    "eval --json in a read-only folder": ("test_bad_input", "eval --json in an unwritable folder"),
    "report --out in a read-only folder": ("test_bad_input", "report --out in an unwritable folder"),
    "report --plot in a read-only folder": ("test_bad_input", "report --plot in an unwritable folder"),
    "finetune --out in a read-only folder": ("test_bad_input", "finetune --out in an unwritable folder"),
    "extract --out an existing folder": ("test_bad_input", "extract --out a folder"),
    "adapt --out an existing folder": ("test_bad_input", "adapt --out a folder"),
    "eval --json an existing folder": ("test_bad_input", "eval --json a folder"),
    "report --out an existing folder": ("test_bad_input", "report --out a folder"),
    "report --plot an existing folder": ("test_bad_input", "report --plot a folder"),
    "finetune --out an existing file": ("test_bad_input", "finetune --out a file"),
    "--config not UTF-8": ("test_bad_input", "config not UTF-8"),
    "--views 1000000000": ("test_bad_input", "extract --views 1000000000"),
    "a cache without /classes/names": ("test_bad_cache", "missing /classes/names"),
    "a cache without /text/classifier": ("test_bad_cache", "missing /text/classifier"),
    "a non-integer format_version": ("test_bad_cache", "format_version not an integer"),
    "a config attribute that is not JSON": ("test_bad_cache", "config not JSON"),
    "a train label outside 0..C-1": ("test_bad_cache", "train label out of range"),
    "a test label outside 0..C-1": ("test_bad_cache", "test label out of range"),
    "a negative label": ("test_bad_cache", "train label negative"),
    "--momentum -1": ("test_bad_input", "momentum negative"),
    "--weight-decay -1": ("test_bad_input", "weight decay negative"),
    "a head with an unknown config key": ("test_bad_input", "head with an unknown config key"),
    "a head whose dim disagrees with its weights": ("test_bad_input", "head whose dim disagrees with its weights"),
}


def test_every_bad_input_of_issue_11_is_a_row():
    import importlib

    assert len(ISSUE_11) >= 46
    for what, (module, case) in ISSUE_11.items():
        m = importlib.import_module(module)
        assert case in getattr(m, "CASES", {}) or callable(getattr(m, case, None)), (what, module, case)
