"""Issue 15: no run loses another's work. One writer per output (the lock), an output and its
resolved config agree, a killed run's temporaries go, `finetune --overwrite` keeps the previous
run until the new one has a checkpoint. Real processes (slow tier) where the process is the point."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from _cli import run_cli
from _extract_helpers import KILL_MAX_PER_CLASS, assert_same_arrays, extract_args
from conftest import ltbench_cmd
from lt_bench import io as io_
from lt_bench.errors import LTBenchError
from lt_bench.features import partial_path
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.finetune import overwrite
from lt_bench.finetune.checkpoint import RUN_FILES
from lt_bench.lock import lock_path, output_lock, remove_stale_temporaries


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# -- the lock ------------------------------------------------------------------------------------

def test_lock_names_its_holder_and_goes_away(tmp_path):
    out = tmp_path / "sub" / "out.h5"
    with output_lock(out) as path:
        assert path == lock_path(out).absolute() and path.parent.is_dir()
        assert path.read_text().startswith(f"pid {os.getpid()} on host {socket.gethostname()} since ")
        with output_lock(out):  # re-entered by a step of the same process (demo, reproduce)
            pass
        assert path.exists()
    assert not path.exists()


def test_a_filesystem_without_locks_runs_unprotected(tmp_path, monkeypatch):
    """flock failing for another reason than a holder (ENOLCK: e.g. some network filesystems)."""
    import errno
    import fcntl

    def no_locks(*_):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    out = tmp_path / "out.h5"
    with output_lock(out):
        out.write_text("x")
    assert out.read_text() == "x" and not lock_path(out).exists()


def test_a_dead_holders_lock_file_does_not_block(tmp_path):
    out = tmp_path / "out.h5"
    lock_path(out).write_text("pid 1 on host gone since yesterday\n")  # killed: the file stayed, the lock went
    with output_lock(out) as path:
        assert path.read_text().startswith(f"pid {os.getpid()} ")
    assert not path.exists()


def test_folder_lock_makes_the_folder_and_removes_it_if_unused(tmp_path):
    with output_lock(tmp_path / "run", directory=True) as path:
        assert path == (tmp_path / "run" / ".lock").absolute()
    assert not (tmp_path / "run").exists()
    with output_lock(tmp_path / "run", directory=True):
        (tmp_path / "run" / "last.pt").write_bytes(b"x")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["last.pt"]


def test_only_rank_0_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with output_lock(tmp_path / "out.h5") as path:
        assert path is None and not lock_path(tmp_path / "out.h5").exists()


def test_a_killed_runs_temporaries_go_and_no_others(tmp_path):
    ours = [".out.h5.a1b2c3d4.tmp", ".out.h5.config.toml.zz_y9x8w.tmp", ".out.h5.partial.0000abcd.tmp"]
    others = [".other.h5.a1b2c3d4.tmp", ".out.h5.a1b2.tmp", "out.h5.a1b2c3d4.tmp", ".out.h5x.a1b2c3d4.tmp"]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"")
    with output_lock(tmp_path / "out.h5"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)

    run = tmp_path / "run"
    run.mkdir()
    for name in (".last.pt.abcdefgh.tmp", ".metrics.jsonl.abcdefgh.tmp", ".other.pt.abcdefgh.tmp"):
        (run / name).write_bytes(b"")
    assert {p.name for p in remove_stale_temporaries(run, RUN_FILES)} == {".last.pt.abcdefgh.tmp",
                                                                          ".metrics.jsonl.abcdefgh.tmp"}


# -- an output and its config ------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path):
    return make_synthetic_cache(tmp_path / "f.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3)


def test_config_is_written_just_before_the_output(cache, tmp_path, monkeypatch):
    moved = []
    real = os.replace
    monkeypatch.setattr(io_.os, "replace", lambda a, b: (moved.append(Path(b).name), real(a, b)))
    head = tmp_path / "h.pt"
    assert run_cli("adapt", cache, "--head", "linear", "--epochs", "1", "--out", head).returncode == 0
    assert moved == ["h.pt.config.toml", "h.pt"]
    moved.clear()
    assert run_cli("eval", cache, "--baseline", "ncm", "--json", tmp_path / "r.json").returncode == 0
    assert moved == ["r.json.config.toml", "r.json"]


def test_a_failed_write_leaves_output_and_config_as_they_were(cache, tmp_path, monkeypatch):
    head = tmp_path / "h.pt"
    assert run_cli("adapt", cache, "--head", "linear", "--epochs", "1", "--out", head).returncode == 0
    before = _tree(tmp_path)
    import torch

    def full_disk(*_, **__):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    r = run_cli("adapt", cache, "--head", "cosine", "--epochs", "1", "--out", head)
    assert r.returncode == 1 and "No space left" in r.stderr
    assert _tree(tmp_path) == before  # the old head and its config; no temporaries, no lock file


def test_extract_writes_its_config_before_the_cache(tmp_path, monkeypatch):
    moved = []
    real = os.replace
    monkeypatch.setattr(io_.os, "replace", lambda a, b: (moved.append(Path(b).name), real(a, b)))
    out = tmp_path / "x.h5"
    assert run_cli(*extract_args(out, views=0, max_per_class=5)).returncode == 0
    assert moved[-2:] == ["x.h5.config.toml", "x.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5", "x.h5.config.toml"]


# -- a partial another process has open --------------------------------------------------------

def test_a_partial_open_elsewhere_is_not_taken_for_damage(tmp_path):
    out = tmp_path / "x.h5"
    part = partial_path(out)
    with h5py.File(part, "w") as f:
        f.attrs["format_version"] = 1
    before = part.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, h5py; f = h5py.File(sys.argv[1], 'a'); "
                               "print('open', flush=True); sys.stdin.readline()", str(part)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        r = run_cli(*extract_args(out, views=0, max_per_class=5))
    finally:
        holder.communicate("\n", timeout=30)
    assert r.returncode == 1, r.stderr
    assert "is open in another process" in r.stderr and "unreadable" not in r.stderr
    assert part.read_bytes() == before and not out.exists()


# -- finetune --overwrite ------------------------------------------------------------------------

def _finished_run(d: Path) -> dict[str, bytes]:
    d.mkdir()
    for name, text in zip(RUN_FILES, ("old last", "old best", "old metrics", "old config")):
        (d / name).write_text(text)
    return _tree(d)


@pytest.mark.parametrize("new_files,kept", [
    ((), "old"),  # killed right after setting the old run aside
    (("config.toml", "best.pt"), "old"),  # killed in epoch 1: best.pt is written before last.pt
    (("config.toml", "best.pt", "last.pt"), "new"),  # killed after the first checkpoint
])
def test_recover_after_a_kill(tmp_path, new_files, kept):
    run = tmp_path / "run"
    old = _finished_run(run)
    overwrite.set_aside(run)
    for name in new_files:
        (run / name).write_text("new")
    overwrite.recover(run)
    if kept == "old":
        assert _tree(run) == old
    else:
        assert _tree(run) == {n: b"new" for n in new_files}


def test_recover_after_a_kill_while_setting_aside_or_undoing(tmp_path):
    run = tmp_path / "run"
    old = _finished_run(run)
    (run / overwrite.ASIDE).mkdir()  # killed after making the folder: nothing moved yet
    overwrite.recover(run)
    assert _tree(run) == old
    overwrite.set_aside(run)
    (run / "config.toml").write_text("new")
    os.replace(run / overwrite.ASIDE / "config.toml", run / "config.toml")  # an undo killed part-way
    overwrite.recover(run)
    assert _tree(run) == old


@pytest.mark.slow  # trains, and the diverging run is a real process
def test_overwrite_that_diverges_leaves_the_finished_run(tmp_path, subprocess_env):
    args = ["finetune", "--dataset", "synthetic", "--model", "ltb-tiny-vit", "--pretrained", "none", "--workers",
            "0", "--device", "cpu", "--batch-size", "8", "--epochs", "1", "--schedule", "cosine", "--out",
            str(tmp_path / "run")]
    assert run_cli(*args).returncode == 0
    before = _tree(tmp_path)
    r = subprocess.run(ltbench_cmd() + args + ["--overwrite", "--lr", "1e30"], env=subprocess_env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("ltbench: error: training diverged")
    assert _tree(tmp_path) == before  # bytes equal; nothing set aside or locked stays behind


@pytest.mark.slow  # kills a real process
def test_overwrite_killed_in_its_first_epoch_gives_the_finished_run_back(tmp_path, subprocess_env):
    run = tmp_path / "run"
    args = ["finetune", "--dataset", "synthetic", "--model", "ltb-tiny-vit", "--pretrained", "none", "--workers",
            "0", "--device", "cpu", "--batch-size", "8", "--epochs", "1", "--schedule", "cosine", "--out", str(run)]
    assert run_cli(*args).returncode == 0
    before = _tree(tmp_path)
    longer = ["--option", "max_per_class=300"]  # an epoch of seconds: the kill lands inside it
    p = subprocess.Popen(ltbench_cmd() + args + longer + ["--overwrite"], env=subprocess_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / overwrite.ASIDE / "last.pt").exists():
            assert p.poll() is None and time.monotonic() < deadline, "the --overwrite run never set the old one aside"
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    assert not (run / "last.pt").exists(), "the first epoch ended before the kill: make the dataset bigger"
    r = run_cli(*args)  # the next run on RUN_DIR puts the old run back, then refuses
    assert r.returncode == 1 and "already holds a run" in r.stderr
    assert _tree(tmp_path) == before


# -- two extracts on one output ------------------------------------------------------------------

WAITING = ("import sys, torch, open_clip, h5py\n"
           "import lt_bench_cli.app as app, lt_bench.pipeline.steps, lt_bench.features.extract, lt_bench.models\n"
           "print('ready', flush=True)\n"
           "sys.stdin.readline()\n"
           "app.main(sys.argv[1:])\n")


@pytest.mark.slow  # two real processes
def test_two_extracts_on_one_output_one_runs_the_other_is_refused(tmp_path, subprocess_env):
    size = 4 * KILL_MAX_PER_CLASS  # seconds of extraction: the second run asks while the first writes
    out, lone = tmp_path / "x.h5", tmp_path / "lone.h5"
    # the second run, imported in advance so that it asks for the lock within the first run's work
    second = subprocess.Popen([sys.executable, "-c", WAITING, *extract_args(out, views=0, max_per_class=size)],
                              env=subprocess_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    first = subprocess.Popen(ltbench_cmd() + extract_args(out, views=2, max_per_class=size), env=subprocess_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert second.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        while not _rows_done(partial_path(out)):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()[-3000:]
            time.sleep(0.02)
        _, err2 = second.communicate("\n", timeout=120)
        _, err1 = first.communicate(timeout=300)
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
    assert second.returncode == 1, err2[-3000:]
    last = err2.strip().splitlines()[-1]
    assert last.startswith(f"ltbench: error: {out} is being written by another run (pid {first.pid} on host "
                           f"{socket.gethostname()} since "), err2
    assert first.returncode == 0, err1[-3000:]
    assert run_cli(*extract_args(lone, views=2, max_per_class=size)).returncode == 0
    assert_same_arrays(lone, out)
    assert "views = 2" in (tmp_path / "x.h5.config.toml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lone.h5", "lone.h5.config.toml", "x.h5",
                                                          "x.h5.config.toml"]


def _rows_done(part: Path) -> bool:
    try:
        with h5py.File(part, "r", locking=False) as f:
            return "train" in f and int(f["train"].attrs["n_done"]) > 0
    except (OSError, KeyError):  # not there yet, or mid-write
        return False


def test_output_lock_error_is_an_ltbench_error(tmp_path):
    import fcntl

    out = tmp_path / "o.json"
    fd = os.open(lock_path(out), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(LTBenchError, match=r"o\.json is being written by another run \(pid and host not yet"):
            with output_lock(out):
                pass
    finally:
        os.close(fd)
