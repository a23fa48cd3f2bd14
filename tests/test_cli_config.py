"""--config FILE.toml: defaults < config file < command-line flags; unknown keys named."""

import json
import subprocess


def _run(ltbench, env, *args):
    return subprocess.run([*ltbench, "datasets", *args], capture_output=True, text=True, env=env, timeout=120)


def test_config_values_apply_and_flags_win(ltbench, subprocess_env, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('dataset = "synthetic"\njson = true\noption = ["num_classes=5"]\n')
    r = _run(ltbench, subprocess_env, "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["num_classes"] == 5
    r = _run(ltbench, subprocess_env, "--config", str(cfg), "--option", "num_classes=7")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["num_classes"] == 7


def test_unknown_config_key_is_named(ltbench, subprocess_env, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('datset = "synthetic"\n')
    r = _run(ltbench, subprocess_env, "--config", str(cfg))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("ltbench: error: unknown key 'datset'")


def test_config_value_of_the_wrong_type(ltbench, subprocess_env, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('dataset = "synthetic"\nimbalance = "lots"\n')
    r = _run(ltbench, subprocess_env, "--config", str(cfg))
    assert r.returncode == 1
    assert "imbalance" in r.stderr.strip().splitlines()[-1]
