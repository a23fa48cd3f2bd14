"""Issue 15's bad inputs, as test_bad_input.py checks them (one line, exit 1, nothing touched):
split files that list an image twice, results given twice or with a metric outside 0..100 %."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from _cli import run_cli
from lt_bench.features.synthetic import make_synthetic_cache
from test_bad_input import _snapshot


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad15")
    cache = make_synthetic_cache(d / "f.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3)
    assert run_cli("eval", cache, "--baseline", "zeroshot", "--json", d / "a.json").returncode == 0
    shutil.copyfile(d / "a.json", d / "copy.json")
    os.symlink(d / "a.json", d / "link.json")
    big = json.loads((d / "a.json").read_text())
    big["metrics"]["overall"] = 5740.0
    (d / "big.json").write_text(json.dumps(big))
    ds = d / "ds"
    ds.mkdir()
    (ds / "classnames.txt").write_text("cat\ndog\n")
    (ds / "train.txt").write_text("a.png 0\nb.png 1\nc.png 0\nb.png 1\n")
    (ds / "test.txt").write_text("t.png 0\n")
    return d


# case -> (argv with {d} for the folder, exit code, words the message must hold)
CASES = {
    "split file lists an image twice": (["datasets", "--dataset", "folder", "--root", "{d}/ds"], 1,
                                        "train.txt line 4: image 'b.png' is already on line 2"),
    "report the same file twice": (["report", "{d}/a.json", "{d}/a.json"], 1, "is given twice"),
    "report a file and its symlink": (["report", "{d}/a.json", "{d}/link.json"], 1, "is given twice"),
    "report a copy of a result": (["report", "{d}/a.json", "{d}/copy.json"], 1, "are identical"),
    "report a metric of 5740 %": (["report", "{d}/big.json"], 1, "'metrics.overall' is 5740 %, outside 0..100 %"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_costs_nothing(files, case):
    argv, code, words = CASES[case]
    words = words.format(d=files)
    before = _snapshot(files)
    r = run_cli(*[a.format(d=files) for a in argv])
    assert r.returncode == code, (r.returncode, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr and last.startswith("ltbench: error: ") and words in last, r.stderr
    assert _snapshot(files) == before
