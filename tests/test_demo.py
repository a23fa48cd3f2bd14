"""`ltbench demo`, reduced (fewer epochs): the whole pipeline on the real Fashion-MNIST files."""

import json

import pytest

from _cli import run_cli

from conftest import FASHION_MNIST_DIR


needs_fmnist = pytest.mark.skipif(not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
                                  reason="Debian's dataset-fashion-mnist is not installed")
METHODS = ["zero-shot (Phase A)", "BALLAD", "cosine + LA loss", "NCM", "kNN"]
REDUCED = ["--epochs", "2", "--view-budget", "1", "--head-epochs", "2", "--workers", "0"]


@pytest.mark.slow
@needs_fmnist
def test_reduced_demo_runs_then_reuses_its_steps(tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "--out", str(out), *REDUCED)
    assert code == 0, err[-2000:]
    for m in METHODS:  # one table row per method, on stdout
        assert m in stdout
    results = sorted((out / "results").glob("*.json"))
    assert len(results) == len(METHODS)
    records = {json.loads(p.read_text())["label"]: json.loads(p.read_text()) for p in results}
    assert set(records) == set(METHODS)
    for rec in records.values():
        assert rec["dataset"] == "fashion_mnist_lt" and rec["model"] == "ltb-tiny-vit"
        assert rec["num_images"] == 10_000
        assert all(rec["metrics"][g] is not None for g in ("many", "medium", "few"))
    assert (out / "leaderboard.md").read_text().count("| ") > len(METHODS)
    assert (out / "per_class_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "config.toml").is_file() and (out / "finetune" / "best.pt").is_file()

    cache_mtime = (out / "features.h5").stat().st_mtime_ns
    code, _, err = run_cli("demo", "--out", str(out), *REDUCED)
    assert code == 0, err[-2000:]
    assert "reused finished steps: finetune, extract, adapt BALLAD, adapt cosine + LA loss" in err
    assert (out / "features.h5").stat().st_mtime_ns == cache_mtime
    again = {json.loads(p.read_text())["label"]: json.loads(p.read_text())["metrics"] for p in results}
    assert again == {k: v["metrics"] for k, v in records.items()}  # same inputs, same numbers


def test_demo_without_fashion_mnist_says_how_to_get_it(tmp_path):
    code, _, err = run_cli("demo", "--out", str(tmp_path / "d"), "--root", str(tmp_path / "nowhere"))
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("ltbench: error:") and "Fashion-MNIST" in lines[-1]
