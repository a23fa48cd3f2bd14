"""--config FILE.toml: defaults < config file < command-line flags; unknown keys named."""

import json

from _cli import run_cli


def _run(*args):
    return run_cli("datasets", *args)


def test_config_values_apply_and_flags_win(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('dataset = "synthetic"\njson = true\noption = ["num_classes=5"]\n')
    r = _run("--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["num_classes"] == 5
    r = _run("--config", str(cfg), "--option", "num_classes=7")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["num_classes"] == 7


def test_unknown_config_key_is_named(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('datset = "synthetic"\n')
    r = _run("--config", str(cfg))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("ltbench: error: unknown key 'datset'")


def test_config_value_of_the_wrong_type(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('dataset = "synthetic"\nimbalance = "lots"\n')
    r = _run("--config", str(cfg))
    assert r.returncode == 1
    assert "imbalance" in r.stderr.strip().splitlines()[-1]
