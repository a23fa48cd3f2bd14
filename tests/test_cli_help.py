"""The command surface of DESIGN.md, `ltbench --help` staying cheap (no torch import), and the
installed console script itself (the only tests here that start `ltbench` as a process)."""

import subprocess
import sys

import pytest

from _cli import run_cli
from lt_bench.heads.config import BASELINES, TRAINED_HEADS

COMMANDS = ["datasets", "finetune", "extract", "adapt", "eval", "report", "tune", "leaderboard", "reproduce", "demo"]


def test_help_lists_every_command():
    r = run_cli("--help")
    assert r.returncode == 0
    for c in COMMANDS:
        assert c in r.stdout


def test_help_does_not_import_torch():
    code = "import sys, lt_bench_cli.app; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr


def test_help_names_match_the_registry():
    from lt_bench.heads import list_heads

    assert sorted(TRAINED_HEADS) == sorted(list_heads("trained"))
    assert sorted(BASELINES) == sorted(list_heads("baseline"))


def test_usage_error_exits_2():
    r = run_cli("eval", "--no-such-flag")
    assert r.returncode == 2


# -- the installed console script, as a user runs it ----------------------------------------------

def _script(ltbench, env, *args):
    return subprocess.run([*ltbench, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow  # a real process: the entry point, its exit status, its streams
def test_console_script_help_and_usage_error(ltbench, subprocess_env):
    r = _script(ltbench, subprocess_env, "--help")
    assert r.returncode == 0, r.stderr
    for c in COMMANDS:
        assert c in r.stdout
    r = _script(ltbench, subprocess_env, "eval", "--no-such-flag")
    assert r.returncode == 2 and "--no-such-flag" in r.stderr and r.stdout == ""


@pytest.mark.slow  # a real process: results on stdout, exit 1 and one error line on stderr
def test_console_script_runs_a_command(ltbench, subprocess_env):
    r = _script(ltbench, subprocess_env, "datasets", "--dataset", "synthetic", "--json")
    assert r.returncode == 0, r.stderr
    assert '"num_classes": 10' in r.stdout
    r = _script(ltbench, subprocess_env, "datasets", "--dataset", "imagenet")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("ltbench: error: unknown dataset 'imagenet'")
