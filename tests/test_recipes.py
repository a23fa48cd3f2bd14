"""Recipes (shipped TOML) and `ltbench reproduce`: parsing, option mapping, dry-run, skip logic."""

from __future__ import annotations

import pytest

from _cli import run_cli
import typer

from lt_bench.errors import LTBenchError
from lt_bench.pipeline.recipes import RECIPE_KEYS, STEP_OPTIONS, STEPS, load_recipe, shipped_recipes
from lt_bench.pipeline.reproduce import make_plan

BALLAD = ["ballad_imagenet_lt_rn50", "ballad_imagenet_lt_vitb16", "ballad_places_lt_vitb16",
          "ballad_cifar100_lt_vitb16", "ballad_cifar10_lt_vitb16", "ballad_inaturalist2018_vitb16"]
NO_VAL = ("cifar", "inaturalist")  # datasets without a val split: the last epoch's head is kept


def real_options(step: str) -> set[str] | None:
    """Option names of the installed command, or None while it is a stub without options."""
    from lt_bench_cli.app import app

    cmd = typer.main.get_command(app).commands[step]
    names = {p.name for p in cmd.params if p.param_type_name == "option" and p.name != "help"}
    return names or None


def test_shipped_recipes_listed():
    names = shipped_recipes()
    assert set(BALLAD + ["smoke"]) <= set(names)
    assert all(names[n] for n in names)  # every recipe has a description


@pytest.mark.parametrize("name", BALLAD + ["smoke"])
def test_recipe_keys_are_command_options(name):
    r = load_recipe(name)
    for step in STEPS:
        body = r.step(step) or {}
        allowed = real_options(step) or STEP_OPTIONS[step]
        for key in body:
            if key in RECIPE_KEYS.get(step, set()):
                continue
            assert key in allowed, f"{name}: [{step}] {key} is not an option of `ltbench {step}`"


@pytest.mark.parametrize("step", STEPS)
def test_mapping_table_matches_commands(step):
    real = real_options(step)
    if real is None:
        pytest.skip(f"`ltbench {step}` is still a stub; the mapping table alone applies")
    assert STEP_OPTIONS[step] <= real, f"options in the table but not in `ltbench {step}`: " \
                                       f"{sorted(STEP_OPTIONS[step] - real)}"


@pytest.mark.parametrize("name", BALLAD)
def test_ballad_reference_hyperparameters(name):
    r = load_recipe(name)
    ft, ex, ad, ev = (r.step(s) for s in STEPS)
    assert ft["pretrained"] == "openai" and ft["loss"] == "class" and ft["logit_scale"] == 100
    assert not ft["lock_image"] and not ft["lock_text"]
    assert (ft["optimizer"], ft["lr"], ft["momentum"], ft["weight_decay"]) == ("sgd", 1e-5, 0.9, 5e-4)
    assert (ft["epochs"], ft["batch_size"]) == (50, 512)
    # views by expected Phase B draws, capped at 64 (lt_bench/features/views.py), no flat views
    assert ex["templates"] == "simple" and ex["view_budget"] == 64 and "views" not in ex and "test" in ex["splits"]
    assert (ad["head"], ad["alpha"], ad["lr"], ad["epochs"], ad["batch_size"]) == ("ballad", 0.2, 0.2, 10, 512)
    assert (ad["sampler"], ad["k_per_class"], ad["momentum"], ad["weight_decay"]) == ("class_aware", 4, 0.9, 5e-4)
    # the reference's schedule and tested epoch (CIFAR-100-LT has no val split to select on)
    assert ad["schedule"] == "reference" and ad["select"] == ("last" if any(d in name for d in NO_VAL) else "best-val")
    assert ev["methods"] == ["zeroshot", "ballad"]


def test_recipe_models_and_datasets():
    got = {n: (load_recipe(n).dataset["name"], load_recipe(n).step("finetune")["model"]) for n in BALLAD}
    assert got == {"ballad_imagenet_lt_rn50": ("imagenet_lt", "RN50"),
                   "ballad_imagenet_lt_vitb16": ("imagenet_lt", "ViT-B-16"),
                   "ballad_places_lt_vitb16": ("places_lt", "ViT-B-16"),
                   "ballad_cifar100_lt_vitb16": ("cifar100_lt", "ViT-B-16"),
                   "ballad_cifar10_lt_vitb16": ("cifar10_lt", "ViT-B-16"),
                   "ballad_inaturalist2018_vitb16": ("inaturalist2018", "ViT-B-16")}
    assert load_recipe("ballad_cifar100_lt_vitb16").dataset["options"] == {"imbalance": 100}


def write_recipe(tmp_path, extra_extract="", extra=""):
    p = tmp_path / "r.toml"
    p.write_text(f'[dataset]\nname = "synthetic"\n\n[extract]\nmodel = "ltb-tiny-vit"\npretrained = "none"\n'
                 f'{extra_extract}\n[adapt]\nhead = "ballad"\nepochs = 1\n\n[eval]\nmethods = ["zeroshot", "ballad"]\n'
                 f'{extra}')
    return p


def test_unknown_key_names_key_and_section(tmp_path):
    p = write_recipe(tmp_path, extra_extract="colour = 3\n")
    with pytest.raises(LTBenchError, match=r"unknown key 'colour' in section \[extract\]"):
        load_recipe(p)
    p.write_text('[dataset]\nname = "x"\n[extract]\nmodel = "m"\n[bogus]\na = 1\n')
    with pytest.raises(LTBenchError, match=r"unknown section \[bogus\]"):
        load_recipe(p)
    p.write_text('[dataset]\nname = "x"\n[extract]\nmodel = "m"\nout = "x.h5"\n')
    with pytest.raises(LTBenchError, match=r"'out' in section \[extract\] is set by `ltbench reproduce`"):
        load_recipe(p)


def test_adapt_without_head_means_ballad_everywhere(tmp_path):
    p = write_recipe(tmp_path)
    p.write_text(p.read_text().replace('head = "ballad"\n', ""))
    rec = load_recipe(p)  # methods names "ballad": valid, since [adapt] defaults to it
    assert any("--head" in " ".join(s.argv) and "ballad" in " ".join(s.argv)
               for s in make_plan(rec, tmp_path / "out").steps if s.name.startswith("eval"))


def test_unknown_method(tmp_path):
    p = write_recipe(tmp_path)
    p.write_text(p.read_text().replace('["zeroshot", "ballad"]', '["zeroshot", "linear"]'))
    with pytest.raises(LTBenchError, match="'linear'"):
        load_recipe(p)


def test_cli_unknown_key(tmp_path):
    p = write_recipe(tmp_path, extra_extract="colour = 3\n")
    code, _, err = run_cli("reproduce", str(p), "--out", str(tmp_path / "o"), "--dry-run")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ltbench: error: ")
    assert "'colour'" in lines[0] and "[extract]" in lines[0]


def test_cli_unknown_recipe_lists_shipped(tmp_path):
    code, _, err = run_cli("reproduce", "ballad_mnist", "--out", str(tmp_path / "o"))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ltbench: error: unknown recipe 'ballad_mnist'")
    for name in BALLAD + ["smoke"]:
        assert name in lines[0]
    assert not (tmp_path / "o").exists()


def _commands(out: str) -> list[str]:
    """The subcommand of each printed line ('#' comments as 'skip')."""
    names = []
    for line in out.strip().splitlines():
        if line.startswith("# skip"):
            names.append("skip " + line.split()[2].rstrip(":"))
        else:
            words = line.split()
            names.append(next(w for w in words if w in ("finetune", "extract", "adapt", "eval", "report")))
    return names


def test_dry_run_order(tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = run_cli("reproduce", "ballad_imagenet_lt_vitb16", "--out", str(out_dir), "--root", "/img",
                              "--splits-dir", "/splits", "--dry-run", "--seed", "3")
    assert code == 0, err
    assert _commands(out) == ["finetune", "extract", "adapt", "eval", "eval", "report"]
    lines = out.strip().splitlines()
    assert all(f in lines[0] for f in ("--dataset imagenet_lt", "--root /img", "--splits-dir /splits"))
    assert "--lr 1e-05" in lines[0] and "--epochs 50" in lines[0] and "--seed 3" in lines[0]
    assert f"--pretrained {out_dir}/finetune/best.pt" in lines[1]
    assert "--views 0 --view-budget 64" in lines[1]
    assert "--splits train,val,test" in lines[1]
    assert "--alpha 0.2" in lines[2] and "--k-per-class 4" in lines[2] and f"--out {out_dir}/heads/ballad.pt" in lines[2]
    assert "--baseline zeroshot" in lines[3] and f"--json {out_dir}/results/zeroshot.json" in lines[3]
    assert f"--head {out_dir}/heads/ballad.pt" in lines[4]
    assert not out_dir.exists()  # a dry run writes nothing


def test_dry_run_dataset_options_and_set(tmp_path):
    code, out, _ = run_cli("reproduce", "ballad_cifar100_lt_vitb16", "--out", str(tmp_path / "o"), "--dry-run",
                            "--set", "adapt.epochs=1", "--set", "finetune.precision=bf16")
    assert code == 0
    lines = out.splitlines()
    assert "--option imbalance=100" in lines[0] and "--precision bf16" in lines[0]
    assert "--epochs 1 " in lines[2]


def _checkpoint(path, epoch, config="{}"):
    """A file with the keys of a Phase A checkpoint (weights not needed to decide reuse)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "epoch": epoch, "optimizer": {}, "model": "ltb-tiny-vit",
                "dataset": "fashion_mnist_lt", "config": config}, path)


def _finished_finetune(run_dir, epochs=1):
    _checkpoint(run_dir / "last.pt", epochs)
    _checkpoint(run_dir / "best.pt", epochs)


def test_invalid_outputs_are_not_reused_and_force_reruns(tmp_path):
    out_dir = tmp_path / "run"
    _finished_finetune(out_dir / "finetune")
    (out_dir / "features.h5").write_bytes(b"not a cache")  # exists, but is no cache of these settings
    plan = make_plan(load_recipe("smoke"), out_dir)
    assert [s.skip for s in plan.steps] == [True, False, False, False, False]
    assert "--overwrite" in plan.steps[1].argv  # replaced, not refused
    plan = make_plan(load_recipe("smoke"), out_dir, force=True)
    assert not any(s.skip for s in plan.steps)
    assert "--overwrite" in plan.steps[0].argv and "--overwrite" in plan.steps[1].argv


def test_finetune_last_checkpoint_epochs(tmp_path):
    out_dir = tmp_path / "run"
    _checkpoint(out_dir / "finetune" / "last.pt", 0)
    plan = make_plan(load_recipe("smoke"), out_dir)  # smoke: 1 epoch
    assert not plan.steps[0].skip and "--resume" in plan.steps[0].argv
    _finished_finetune(out_dir / "finetune")
    plan = make_plan(load_recipe("smoke"), out_dir)
    assert plan.steps[0].skip and "all 1 epochs" in plan.steps[0].reason


def test_a_finished_run_of_other_settings_is_replaced_not_reused(tmp_path):
    out_dir = tmp_path / "run"
    _checkpoint(out_dir / "finetune" / "last.pt", 1, config='{"lr": 0.5, "seed": 0}')  # smoke: lr 1e-3
    _checkpoint(out_dir / "finetune" / "best.pt", 1)
    plan = make_plan(load_recipe("smoke"), out_dir)
    assert not plan.steps[0].skip and "--overwrite" in plan.steps[0].argv and "--resume" not in plan.steps[0].argv
    _checkpoint(out_dir / "finetune" / "last.pt", 3)  # more epochs than asked for: not this run either
    assert not make_plan(load_recipe("smoke"), out_dir).steps[0].skip


def test_bad_value_refused_when_the_plan_is_made(tmp_path):
    """A recipe value a step would refuse stops reproduce before any step runs (even --dry-run)."""
    for override, flag in (("adapt.epochs=-1", "--epochs"), ("finetune.epochs=0", "--epochs"),
                           ("extract.views=-2", "--views"), ('finetune.epochs="ten"', "--epochs")):
        code, out, err = run_cli("reproduce", "smoke", "--out", str(tmp_path / "o"), "--set", override,
                                  "--dry-run")
        assert code == 1 and flag in err and out == "", (override, err)
    assert not (tmp_path / "o").exists()
    # flat views and a view budget exclude each other: refused when the plan is made
    code, out, err = run_cli("reproduce", "ballad_imagenet_lt_vitb16", "--out", str(tmp_path / "o"), "--set",
                             "extract.views=4", "--dry-run")
    lines = [ln for ln in err.splitlines() if ln.startswith("ltbench: error:")]
    assert code == 1 and out == "" and len(lines) == 1, err
    assert "--views 4 and --view-budget 64 exclude each other" in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_reproduce_end_to_end_synthetic(tmp_path):
    """The real pipeline on a tiny synthetic set; a rerun skips every step."""
    import json

    recipe = tmp_path / "tiny.toml"
    recipe.write_text('''
[dataset]
name = "synthetic"
options = { num_classes = 6, max_per_class = 120, imbalance = 24, test_per_class = 10 }

[finetune]
model = "ltb-tiny-vit"
pretrained = "none"
epochs = 1
batch_size = 32
steps_per_epoch = 1
workers = 0

[extract]
splits = ["train", "val", "test"]
views = 1
workers = 0

[adapt]
head = "ballad"
epochs = 1
batch_size = 32

[eval]
methods = ["zeroshot", "ballad"]
''')
    out = tmp_path / "run"
    argv = ["reproduce", str(recipe), "--out", str(out), "--device", "cpu", "--format", "csv"]
    code, stdout, err = run_cli(*argv)
    assert code == 0, err[-3000:]
    for f in ("finetune/best.pt", "features.h5", "heads/ballad.pt",
              "results/zeroshot.json", "results/ballad.json", "plan.sh", "recipe.toml", "per_class.png"):
        assert (out / f).exists(), f
    assert (out / "config.toml").read_text().count("format") == 1  # resolved options, reusable as --config
    assert json.loads((out / "results" / "ballad.json").read_text())["head"] == "ballad"
    assert stdout.splitlines()[0].startswith("dataset,method")
    assert {line.split(",")[1] for line in stdout.splitlines()[1:]} == {"zeroshot", "ballad"}
    code, again, err = run_cli(*argv)
    assert code == 0 and again == stdout
    assert err.count("skip ") == 5 and "[1/" not in err
    # one result removed: only that evaluation runs again; the plan says so first
    (out / "results" / "zeroshot.json").unlink()
    code, dry, _ = run_cli(*argv, "--dry-run")
    assert _commands(dry) == ["skip finetune", "skip extract", "skip adapt", "eval", "skip eval", "report"]
    code, _, err = run_cli(*argv)
    assert code == 0 and "[1/1] eval zeroshot" in err
