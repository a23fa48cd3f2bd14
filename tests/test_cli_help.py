"""The command surface of DESIGN.md, and `ltbench --help` staying cheap (no torch import)."""

import subprocess
import sys

from lt_bench.heads.config import BASELINES, TRAINED_HEADS

COMMANDS = ["datasets", "finetune", "extract", "adapt", "eval", "report", "reproduce", "demo"]


def test_help_lists_every_command(ltbench, subprocess_env):
    r = subprocess.run([*ltbench, "--help"], capture_output=True, text=True, env=subprocess_env, timeout=120)
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


def test_usage_error_exits_2(ltbench, subprocess_env):
    r = subprocess.run([*ltbench, "eval", "--no-such-flag"], capture_output=True, text=True,
                       env=subprocess_env, timeout=120)
    assert r.returncode == 2
