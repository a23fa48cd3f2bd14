"""Bad input as a hostile user gives it: a one-line error naming what to fix, exit 1 or 2, no
traceback, and every file that existed before byte-for-byte unchanged (issue: outputs never
overwrite inputs; output paths are checked before any work)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _cli import run_cli
from lt_bench.features.synthetic import make_synthetic_cache


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
}


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_costs_nothing(files, case):
    argv, code, words = CASES[case]
    before = _snapshot(files)
    r = run_cli(*[a.format(d=files) for a in argv])
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and words in r.stderr, r.stderr
    if code == 1:
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("ltbench: error: ") and words in last, r.stderr
    assert _snapshot(files) == before  # nothing that existed was touched, nothing was added


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
