"""`ltbench tune` killed with SIGKILL mid-study, as a real process: the rerun resumes the study,
keeps every finished trial and runs only the rest (slow tier)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

import pytest

from lt_bench.features.synthetic import make_synthetic_cache

TRIALS = 6


def _trials(db) -> list[tuple]:
    """(number, state, params as JSON) of every trial, read straight from Optuna's SQLite."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            rows = con.execute("SELECT trial_id, number, state FROM trials ORDER BY number").fetchall()
            params = con.execute("SELECT trial_id, param_name, param_value FROM trial_params").fetchall()
    except sqlite3.Error:  # not created yet
        return []
    by_trial: dict = {}
    for tid, name, value in params:
        by_trial.setdefault(tid, {})[name] = value
    return [(n, state, json.dumps(by_trial.get(tid, {}), sort_keys=True)) for tid, n, state in rows]


@pytest.mark.slow
def test_killed_tune_resumes_and_reuses_finished_trials(tmp_path, ltbench, subprocess_env):
    cache = make_synthetic_cache(tmp_path / "f.h5", num_classes=20, dim=128, max_per_class=600, imbalance=20,
                                 val_per_class=10, test_per_class=10, views=2)
    out = tmp_path / "t"
    argv = [*ltbench, "tune", str(cache), "--method", "ballad", "--trials", str(TRIALS), "--seeds", "1",
            "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(state == "COMPLETE" for _, state, _ in _trials(out / "study.db")) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the tune ended before it could be killed: make its trials slower"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = [t for t in _trials(out / "study.db") if t[1] == "COMPLETE"]
    assert 2 <= len(before) < TRIALS
    assert not (out / "tune.json").exists()

    r = subprocess.run(argv, capture_output=True, text=True, env=subprocess_env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{len(before)} of {TRIALS} trials done" in " ".join(r.stderr.split()), r.stderr[-2000:]
    after = _trials(out / "study.db")
    complete = [t for t in after if t[1] == "COMPLETE"]
    assert len(complete) == TRIALS and complete[:len(before)] == before  # finished trials kept as they were
    assert len(after) - len(complete) <= 1  # at most the one trial the kill cut off, failed
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"] == TRIALS and (out / summary["results"][0]).is_file()
