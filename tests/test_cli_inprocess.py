"""tests/_cli.py's run_cli: repeated in-process runs behave like separate processes."""

import logging
import os

import torch
from rich.logging import RichHandler

from _cli import run_cli
from lt_bench.features.synthetic import make_synthetic_cache


def test_repeated_runs_log_once_and_leave_no_state(tmp_path):
    cache = make_synthetic_cache(tmp_path / "c.h5", num_classes=4, dim=8, max_per_class=20, test_per_class=3)
    threads, env = torch.get_num_threads(), dict(os.environ)
    for i in range(2):
        out = tmp_path / f"h{i}.pt"
        r = run_cli("adapt", cache, "--head", "linear", "--epochs", "1", "--out", out)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(out)
        assert r.stderr.count("final loss") == 2, r.stderr  # the library's line and the CLI's, once each
    # setup_logging did not stack handlers (pytest attaches its own capture handlers too: not counted)
    assert sum(isinstance(h, RichHandler) for h in logging.getLogger("lt_bench").handlers) == 1
    assert torch.get_num_threads() == threads and dict(os.environ) == env


def test_exit_codes_and_streams_are_separate():
    ok = run_cli("datasets", "--dataset", "synthetic", "--json")
    bad = run_cli("datasets", "--dataset", "imagenet")
    usage = run_cli("datasets", "--no-such-flag")
    assert (ok.returncode, bad.returncode, usage.returncode) == (0, 1, 2)
    assert ok.stderr == "" and '"num_classes": 10' in ok.stdout
    assert bad.stdout == "" and bad.stderr.startswith("ltbench: error: unknown dataset 'imagenet'")
    assert usage.stdout == "" and "--no-such-flag" in usage.stderr
