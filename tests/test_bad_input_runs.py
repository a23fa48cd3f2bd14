"""Issue 15's bad inputs, as test_bad_input.py checks them (one line, exit 1, nothing touched):
outputs another run holds, split files that list an image twice, results given twice or with a
metric outside 0..100 %."""

from __future__ import annotations

import fcntl
import json
import os
import shutil

import pytest

from _cli import run_cli
from lt_bench.features.synthetic import make_synthetic_cache
from _cli import snapshot as _snapshot

HOLDER = "pid 4242 on host elsewhere since 2026-11-29T12:00:00+00:00"
SYNTH = ["--dataset", "synthetic", "--model", "ltb-tiny-vit", "--pretrained", "none", "--device", "cpu"]


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
    # outputs another (live) process writes: their lock files, held by this one
    fds = []
    for lock in ("held.pt.lock", "held.json.lock", "held.md.lock", "held.h5.lock", "run/.lock", "demo/.lock",
                 "repro/.lock"):
        (d / lock).parent.mkdir(exist_ok=True)
        fd = os.open(d / lock, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, (HOLDER + "\n").encode())
        fds.append(fd)
    yield d
    for fd in fds:
        os.close(fd)


# case -> (argv with {d} for the folder, exit code, words the message must hold)
CASES = {
    "adapt --out another run writes": (["adapt", "{d}/f.h5", "--head", "linear", "--out", "{d}/held.pt"], 1,
                                       "{d}/held.pt is being written by another run (" + HOLDER),
    "eval --json another run writes": (["eval", "{d}/f.h5", "--baseline", "ncm", "--json", "{d}/held.json"], 1,
                                       "{d}/held.json is being written by another run (" + HOLDER),
    "report --out another run writes": (["report", "{d}/a.json", "-f", "md", "--out", "{d}/held.md"], 1,
                                        "{d}/held.md is being written by another run (" + HOLDER),
    "extract --out another run writes": (["extract", *SYNTH, "--out", "{d}/held.h5"], 1,
                                         "{d}/held.h5 is being written by another run (" + HOLDER),
    "finetune --out a run dir another run writes": (["finetune", *SYNTH, "--out", "{d}/run"], 1,
                                                    "{d}/run is being written by another run (" + HOLDER),
    "demo --out another demo writes": (["demo", "--out", "{d}/demo"], 1, "{d}/demo is being written by another run"),
    "reproduce --out another reproduce writes": (["reproduce", "smoke", "--out", "{d}/repro"], 1,
                                                 "{d}/repro is being written by another run"),
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
    assert _snapshot(files) == before  # the holder's lock files included
