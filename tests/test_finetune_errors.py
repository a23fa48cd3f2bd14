"""`ltbench finetune` refuses bad input with one line, exit 1, and touches nothing."""

import subprocess

import pytest
import torch

from _cli import run_cli

BASE = ["finetune", "--dataset", "synthetic", "--model", "ltb-tiny-vit", "--pretrained", "none",
        "--workers", "0", "--device", "cpu", "--batch-size", "8", "--epochs", "1"]


def fails(argv) -> str:
    code, _, err = run_cli(*argv)
    err = err.strip()
    assert code == 1, err
    assert err.startswith("ltbench: error: ") and "\n" not in err, err
    return err


def fake_last(run_dir, model="ltb-tiny-vit", dataset="synthetic"):
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "epoch": 1, "optimizer": {}, "model": model, "dataset": dataset,
                "config": "{}"}, run_dir / "last.pt")
    return (run_dir / "last.pt").read_bytes()


def test_resume_checkpoint_of_another_model(tmp_path):
    before = fake_last(tmp_path, model="ltb-tiny-rn")
    err = fails(BASE + ["--out", str(tmp_path), "--resume"])
    assert "--model ltb-tiny-rn" in err and "--model ltb-tiny-vit" in err
    assert (tmp_path / "last.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_resume_checkpoint_of_another_dataset(tmp_path):
    before = fake_last(tmp_path, dataset="cifar100_lt")
    err = fails(BASE + ["--out", str(tmp_path), "--resume"])
    assert "--dataset cifar100_lt" in err
    assert (tmp_path / "last.pt").read_bytes() == before


def test_resume_without_checkpoint(tmp_path):
    err = fails(BASE + ["--out", str(tmp_path / "new"), "--resume"])
    assert "no " in err and "last.pt to continue" in err
    assert not (tmp_path / "new").exists()


def test_run_dir_holding_another_run(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"another run")
    err = fails(BASE + ["--out", str(tmp_path)])
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (tmp_path / "last.pt").read_bytes() == b"another run"


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it(tmp_path):
    """Only config.toml is there: --resume starts from scratch with one log line (nothing was lost)."""
    from _cli import run_cli

    (tmp_path / "config.toml").write_text("epochs = 1\n")
    r = run_cli(*BASE, "--out", tmp_path, "--resume", "--steps-per-epoch", "1")
    assert r.returncode == 0, r.stderr
    assert "starting it from scratch" in " ".join(r.stderr.split()) and (tmp_path / "last.pt").is_file()


@pytest.mark.parametrize("extra,match", [
    (["--lr", "-0.1"], "--lr must be positive"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--accum-steps", "0"], "--accum-steps must be at least 1"),
    (["--precision", "bf16"], "--precision bf16 needs a CUDA device"),
    (["--option", "max_per_class"], "key=value"),
])
def test_nonsensical_options(tmp_path, extra, match):
    err = fails(BASE + ["--out", str(tmp_path / "r")] + extra)
    assert match in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize("world,batch,match", [
    ("4", "2", "smaller than the 4 processes"),
    ("4", "6", "does not split evenly over 4 processes"),
])
def test_batch_versus_processes(tmp_path, monkeypatch, world, batch, match):
    monkeypatch.setenv("WORLD_SIZE", world)  # as torchrun sets it; refused before any rendezvous
    argv = [a if a != "8" else batch for a in BASE]
    err = fails(argv + ["--out", str(tmp_path / "r")])
    assert match in err


def test_class_without_training_images(tmp_path):
    # int(5 * (1/100) ** (c/9)): 5, 2, 1, 1, 0, ... -> class 4 is the first without images
    err = fails(BASE + ["--out", str(tmp_path / "r"), "--option", "max_per_class=5",
                        "--option", "imbalance=100"])
    assert "class 4 ('class 4') has no training images" in err


@pytest.mark.slow  # the exit status and streams of a real `ltbench` process
def test_real_process_exit_code(ltbench, subprocess_env, tmp_path):
    r = subprocess.run(ltbench + BASE + ["--out", str(tmp_path / "r"), "--lr", "-1"], env=subprocess_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines()[-1] == "ltbench: error: --lr must be positive (got -1.0)"
