"""`ltbench finetune` end to end, real (tiny) training on CPU: in process, and in real processes where
the process is the point (kill -9, torchrun). Every test here trains for seconds: slow tier."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _cli import run_cli
from conftest import FASHION_MNIST_DIR

TINY = ["--model", "ltb-tiny-vit", "--pretrained", "none", "--workers", "0", "--device", "cpu"]
LEARN = ["--optimizer", "adamw", "--lr", "1e-3", "--batch-size", "32"]
SYN = ["--dataset", "synthetic", "--option", "max_per_class=100"]  # 10 classes, 100..3 images


def run(cmd, env, timeout=120, check=True):
    """A real process (torchrun)."""
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\n{r.stderr[-3000:]}")
    return r


def ltbench_ok(*argv):
    """`ltbench ARGV` in process; it must succeed."""
    r = run_cli(*argv)
    if r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\n{r.stderr[-3000:]}")
    return r


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def torchrun_cmd(n: int) -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    ltb = Path(sys.executable).with_name("ltbench")
    if not exe.exists() or not ltb.exists():
        pytest.skip("torchrun / ltbench console scripts not installed in this environment")
    return [str(exe), "--standalone", f"--nproc_per_node={n}", "--no-python", str(ltb)]


@pytest.mark.slow
def test_synthetic_learns_and_checkpoint_loads_everywhere(tmp_path):
    out = tmp_path / "run"
    r = ltbench_ok("finetune", *SYN, *TINY, *LEARN, "--epochs", "4", "--out", out)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    rows = metrics(out)
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert set(rows[0]) >= {"epoch", "train_loss", "val_acc", "lr", "time", "images_per_s"}
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert max(row["val_acc"] for row in rows) > 0.25  # 10 classes: chance is 0.1
    assert summary["best_val_acc"] == pytest.approx(max(row["val_acc"] for row in rows))
    assert (out / "config.toml").is_file() and "epochs = 4" in (out / "config.toml").read_text()
    assert "epoch 4/4" in r.stderr

    # weights_only loads, no "module." prefix, self-describing
    ck = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in ck["state_dict"])
    assert (ck["model"], ck["dataset"], ck["pretrained"]) == ("ltb-tiny-vit", "synthetic", "none")
    assert last["epoch"] == 4 and last["optimizer"] is not None and json.loads(last["config"])["epochs"] == 4
    assert ck["best_val"] == pytest.approx(summary["best_val_acc"])

    # create_model (hence `ltbench extract --pretrained RUN_DIR/best.pt`) and open_clip read it
    import open_clip

    from lt_bench.models import create_model

    bundle = create_model("ltb-tiny-vit", str(out / "best.pt"))
    for k, v in bundle.model.state_dict().items():
        assert torch.equal(v, ck["state_dict"][k]), k
    m = open_clip.create_model("ltb-tiny-vit", pretrained=None)
    open_clip.load_checkpoint(m, str(out / "last.pt"))
    assert torch.equal(m.state_dict()["visual.proj"], last["state_dict"]["visual.proj"])


@pytest.mark.slow
def test_fashion_mnist_lt_learns(tmp_path):
    from lt_bench.data import list_datasets

    if "fashion_mnist_lt" not in list_datasets():
        pytest.skip("the fashion_mnist_lt loader is not in this checkout")
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip(f"Fashion-MNIST files absent ({FASHION_MNIST_DIR}; apt-get install dataset-fashion-mnist)")
    out = tmp_path / "fm"
    # the tiny ResNet learns grey 28 px clothes from scratch faster than the tiny ViT
    tiny_rn = ["--model", "ltb-tiny-rn", *TINY[2:]]
    ltbench_ok("finetune", "--dataset", "fashion_mnist_lt", "--option", "max_per_class=100",
               "--option", "imbalance=5", "--option", "val_per_class=10", *tiny_rn, *LEARN,
               "--epochs", "5", "--out", out)
    rows = metrics(out)
    assert len(rows) == 5
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert max(row["val_acc"] for row in rows) > 0.18  # 10 balanced classes: chance 0.1


@pytest.mark.slow
def test_torchrun_two_procs_equal_one_proc_with_double_batch(subprocess_env, tmp_path):
    """One SGD step, class loss: 2 processes x 8 images == 1 process x 16 (gloo, CPU)."""
    args = [*SYN, *TINY, "--optimizer", "sgd", "--lr", "0.05", "--schedule", "cosine", "--batch-size", "16", "--epochs", "1",
            "--steps-per-epoch", "1", "--no-augment", "--seed", "3"]
    one, two = tmp_path / "one", tmp_path / "two"
    ltbench_ok("finetune", *args, "--out", one)
    r = run(torchrun_cmd(2) + ["finetune", *args, "--out", str(two)], subprocess_env, timeout=180)
    assert "2 processes, backend gloo" in r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["world_size"] == 2  # rank 0 alone prints
    assert len(r.stdout.strip().splitlines()) == 1
    w1, w2 = weights(one / "last.pt"), weights(two / "last.pt")
    assert w1.keys() == w2.keys()
    from lt_bench.models import create_model

    torch.manual_seed(3)
    init = create_model("ltb-tiny-vit", "none").model.state_dict()
    moved = 0.0
    for k in w1:
        step = float((w1[k].float() - init[k].float()).abs().max())
        diff = float((w2[k].float() - w1[k].float()).abs().max())
        assert diff <= 1e-3 * step + 1e-6, f"{k}: 2 procs differ by {diff}, the step moved {step}"
        moved = max(moved, step)
    assert moved > 1e-3  # the step did change the weights
    assert metrics(one)[0]["train_loss"] == pytest.approx(metrics(two)[0]["train_loss"], rel=1e-4)


@pytest.mark.slow
def test_torchrun_two_procs_trains(subprocess_env, tmp_path):
    out = tmp_path / "ddp"
    r = run(torchrun_cmd(2) + ["finetune", *SYN, *TINY, *LEARN, "--loss", "infonce", "--epochs", "2",
                               "--out", str(out)], subprocess_env, timeout=180)
    rows = metrics(out)
    assert len(rows) == 2 and all(row["train_loss"] == row["train_loss"] for row in rows)
    assert r.stderr.count("epoch 2/2") == 1  # rank 0 alone logs


@pytest.mark.slow
def test_kill9_then_resume_matches_uninterrupted(ltbench, subprocess_env, tmp_path):
    args = [*SYN, *TINY, *LEARN, "--epochs", "3", "--seed", "7"]
    ref = tmp_path / "ref"
    ltbench_ok("finetune", *args, "--out", ref)

    out = tmp_path / "killed"
    p = subprocess.Popen(ltbench + ["finetune", *args, "--out", str(out)], env=subprocess_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while not (out / "last.pt").exists():
            assert p.poll() is None, "finetune ended before its first checkpoint"
            assert time.time() < deadline
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    done = torch.load(out / "last.pt", weights_only=True)["epoch"]
    assert 1 <= done <= 3

    # not resuming a run in progress without --resume: refused, nothing touched
    before = (out / "last.pt").read_bytes()
    r = run_cli("finetune", *args, "--out", out)
    assert r.returncode == 1 and "already holds a run" in r.stderr
    assert (out / "last.pt").read_bytes() == before

    ltbench_ok("finetune", *args, "--out", out, "--resume")
    rows = metrics(out)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 3
    w_ref, w_res = weights(ref / "last.pt"), weights(out / "last.pt")
    for k in w_ref:
        assert torch.equal(w_ref[k], w_res[k]), k  # same seed + resume == uninterrupted (CPU)
    assert [r_["train_loss"] for r_ in rows] == [r_["train_loss"] for r_ in metrics(ref)]
