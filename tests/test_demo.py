"""`ltbench demo`, reduced (fewer epochs): the whole pipeline on the real Fashion-MNIST files."""

import json

import pytest

from _cli import run_cli

from conftest import FASHION_MNIST_DIR


needs_fmnist = pytest.mark.skipif(not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
                                  reason="Debian's dataset-fashion-mnist is not installed")
REDUCED = ["--epochs", "2", "--view-budget", "1", "--trials", "1", "--seeds", "2", "--workers", "0"]


@pytest.mark.slow
@needs_fmnist
def test_reduced_demo_runs_then_reuses_its_steps(tmp_path):
    from lt_bench.heads.methods import METHODS

    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "--out", str(out), *REDUCED)
    assert code == 0, err[-2000:]
    for m in METHODS:  # one table row per method, on stdout
        assert m in stdout
    board = out / "leaderboard"
    results = sorted(board.glob("*/results/seed*.json"))
    assert len(results) == 2 * len(METHODS)
    records = [json.loads(p.read_text()) for p in results]
    assert {r["label"] for r in records} == set(METHODS)
    for rec in records:
        assert rec["dataset"] == "fashion_mnist_lt" and rec["model"] == "ltb-tiny-vit"
        assert rec["num_images"] == 10_000 and rec["tune"]["val_source"] == "val"
        assert all(rec["metrics"][g] is not None for g in ("many", "medium", "few"))
    assert (board / "leaderboard.md").read_text().count("| ") > len(METHODS)
    assert (board / "per_class_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "config.toml").is_file() and (out / "finetune" / "best.pt").is_file()

    cache_mtime = (out / "features.h5").stat().st_mtime_ns
    result_mtimes = [p.stat().st_mtime_ns for p in results]
    code, stdout2, err = run_cli("demo", "--out", str(out), *REDUCED)
    assert code == 0, err[-2000:]
    assert "reused finished steps: finetune, extract" in err
    assert (out / "features.h5").stat().st_mtime_ns == cache_mtime
    assert [p.stat().st_mtime_ns for p in results] == result_mtimes  # every seed reused, not refitted
    assert stdout2 == stdout  # same inputs, same table


def test_demo_without_fashion_mnist_says_how_to_get_it(tmp_path):
    code, _, err = run_cli("demo", "--out", str(tmp_path / "d"), "--root", str(tmp_path / "nowhere"))
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("ltbench: error:") and "Fashion-MNIST" in lines[-1]
