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


def test_resolved_configs_rerun_their_commands(tmp_path):
    """OUT.config.toml is itself a valid --config: positional arguments and list values included."""
    from _cli import run_cli
    from lt_bench.features.synthetic import make_synthetic_cache

    cache = make_synthetic_cache(tmp_path / "f.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3)
    assert run_cli("adapt", cache, "--head", "linear", "--epochs", "1", "--out", tmp_path / "h.pt").returncode == 0
    assert run_cli("eval", cache, "--head", tmp_path / "h.pt", "--json", tmp_path / "r.json").returncode == 0
    first = (tmp_path / "r.json").read_text()
    (tmp_path / "h.pt").unlink()
    r = run_cli("adapt", "--config", tmp_path / "h.pt.config.toml")  # the cache comes from the file
    assert r.returncode == 0, r.stderr
    r = run_cli("eval", "--config", tmp_path / "r.json.config.toml")
    assert r.returncode == 0, r.stderr
    strip = lambda t: {k: v for k, v in json.loads(t).items() if k not in ("created", "environment")}  # noqa: E731
    assert strip((tmp_path / "r.json").read_text()) == strip(first)
    (tmp_path / "x.toml").write_text('splits = ["train", "test"]\n')  # a list, as recipes write it
    r = run_cli("extract", "--dataset", "synthetic", "-o", "max_per_class=5", "--model", "ltb-tiny-vit",
                "--pretrained", "none", "--workers", "0", "--out", tmp_path / "e.h5", "--config", tmp_path / "x.toml")
    assert r.returncode == 0, r.stderr
    assert "train" in r.stdout and "test" in r.stdout and "val" not in r.stdout
