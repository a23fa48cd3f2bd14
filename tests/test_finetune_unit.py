"""Phase A pieces without a subprocess: schedule, held-out split, config checks, losses, checkpoints."""

import math

import numpy as np
import pytest
import torch

from lt_bench.errors import LTBenchError
from lt_bench.finetune import FinetuneConfig, cosine_lr
from lt_bench.finetune.checkpoint import check_run_dir, rng_state, set_rng_state
from lt_bench.finetune.data import holdout_indices, train_val_indices
from lt_bench.finetune.losses import ClassPromptLoss, ClipTrainWrapper
from lt_bench.finetune.schedule import CosineSchedule


def test_cosine_schedule_warmup_and_no_zero_step():
    total, warm = 10, 3
    lrs = [cosine_lr(s, 1.0, total, warm) for s in range(total)]
    assert lrs[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert lrs[3] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))
    assert lrs[-1] > 0  # the last step does not run at lr 0 (the reference's off-by-one)
    assert cosine_lr(total, 1.0, total, warm) == pytest.approx(0.0)


def test_schedule_object_steps_after_optimizer_and_round_trips():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = CosineSchedule(opt, total_steps=4)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # step 0 at the peak
    sched.step()
    state = sched.state_dict()
    opt2 = torch.optim.SGD([p], lr=0.1)
    sched2 = CosineSchedule(opt2, total_steps=4)
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))


def test_holdout_is_stratified_deterministic_and_keeps_train():
    labels = np.repeat(np.arange(4), [50, 10, 2, 1])
    tr, va = holdout_indices(labels, 0.1)
    tr2, va2 = holdout_indices(labels, 0.1)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(labels)
    assert np.bincount(labels[va], minlength=4).tolist() == [5, 1, 1, 0]
    assert (np.bincount(labels[tr], minlength=4) >= 1).all()


def test_class_without_training_images_is_named():
    from lt_bench.data import load_dataset

    ds = load_dataset("synthetic", num_classes=3, max_per_class=50)
    ds.splits["train"].labels[ds.splits["train"].labels == 2] = 0  # class 2 loses its images
    with pytest.raises(LTBenchError, match=r"class 2 \('class 2'\) has no training images"):
        train_val_indices(ds, 0.1)


@pytest.mark.parametrize("change,match", [
    (dict(lr=-1.0), "--lr must be positive"),
    (dict(epochs=0), "--epochs must be at least 1"),
    (dict(batch_size=0), "--batch-size"),
    (dict(accum_steps=0), "--accum-steps"),
    (dict(loss="nce"), "--loss"),
    (dict(lock_image=True, lock_text=True), "nothing to train"),
    (dict(resume=True, overwrite=True), "contradict"),
    (dict(val_fraction=1.5), "--val-fraction"),
])
def test_config_refuses_nonsense(change, match):
    cfg = FinetuneConfig(dataset="synthetic", out="x", **change)
    with pytest.raises(LTBenchError, match=match):
        cfg.validate()


def test_config_json_round_trip():
    cfg = FinetuneConfig(dataset="synthetic", out="x", dataset_options={"max_per_class": 3}, lr=0.1)
    assert FinetuneConfig.from_json(cfg.to_json()) == cfg


def test_run_dir_checks(tmp_path):
    check_run_dir(tmp_path, resume=False, overwrite=False)  # empty: fine
    (tmp_path / "config.toml").write_text("x")  # a run killed before its first checkpoint: nothing to lose
    check_run_dir(tmp_path, resume=False, overwrite=False)
    (tmp_path / "last.pt").write_text("x")
    with pytest.raises(LTBenchError, match="already holds a run"):
        check_run_dir(tmp_path, resume=False, overwrite=False)
    check_run_dir(tmp_path, resume=False, overwrite=True)
    (tmp_path / "last.pt").unlink()
    with pytest.raises(LTBenchError, match="no .*last.pt to continue"):
        check_run_dir(tmp_path, resume=True, overwrite=False)


def test_rng_state_is_weights_only_and_restores(tmp_path):
    import random

    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)
    a = (torch.rand(3), random.random(), np.random.rand())
    set_rng_state(loaded)
    b = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


def test_class_loss_is_a_global_batch_mean():
    """Two half-batches' mean losses average to the full batch's: DDP's average = global mean."""
    from lt_bench.models import create_model

    torch.manual_seed(0)
    bundle = create_model("ltb-tiny-vit", "none")
    tokens = bundle.tokenizer([f"a photo of a class {c}." for c in range(5)])
    wrapper = ClipTrainWrapper(bundle.model, tokens)
    loss_fn = ClassPromptLoss(100.0)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 5, (8,))
    grads = []
    for parts in ([slice(0, 8)], [slice(0, 4), slice(4, 8)]):
        bundle.model.zero_grad()
        for s in parts:
            img, txt, scale = wrapper(x[s], None)
            (loss_fn(img, txt, scale, y[s]) / len(parts)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in bundle.model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-4, rtol=1e-3)


def _tiny_run(tmp_path, name, **kw):  # one process, no augmentation, SGD
    from lt_bench.finetune import run_finetune

    kw.setdefault("schedule", "cosine")  # one epoch: the reference staircase would train it at lr 0

    cfg = FinetuneConfig(dataset="synthetic", out=str(tmp_path / name), model="ltb-tiny-vit", pretrained="none",
                         dataset_options={"max_per_class": 40}, epochs=1, optimizer="sgd", lr=0.05,
                         augment=False, workers=0, device="cpu", seed=1, **kw)
    run_finetune(cfg)
    return torch.load(tmp_path / name / "last.pt", weights_only=True)


def test_checkpoints_record_environment(tmp_path):
    """last.pt and best.pt carry the versions and the device, and stay weights_only-loadable."""
    from _env_helpers import assert_environment

    last = _tiny_run(tmp_path, "env", batch_size=8, steps_per_epoch=1)
    best = torch.load(tmp_path / "env" / "best.pt", weights_only=True)
    assert_environment(last["environment"], "cpu")
    assert best["environment"] == last["environment"]


def test_accumulation_equals_the_larger_batch(tmp_path):
    a = _tiny_run(tmp_path, "big", batch_size=16, steps_per_epoch=1)
    b = _tiny_run(tmp_path, "accum", batch_size=8, accum_steps=2, steps_per_epoch=2)
    assert a["scheduler"]["step"] == b["scheduler"]["step"] == 1
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, atol=1e-5, rtol=1e-4, msg=k)


def test_lock_image_keeps_the_image_tower(tmp_path):
    from lt_bench.models import create_model

    ck = _tiny_run(tmp_path, "lock", batch_size=8, steps_per_epoch=2, lock_image=True)
    torch.manual_seed(1)
    init = create_model("ltb-tiny-vit", "none").model.state_dict()
    for k, v in ck["state_dict"].items():
        if k.startswith("visual."):
            assert torch.equal(v, init[k]), k
    assert not torch.equal(ck["state_dict"]["token_embedding.weight"], init["token_embedding.weight"])


def test_freeze_bn_and_locks_set_modes():
    from lt_bench.finetune.build import set_train_mode, set_trainable
    from lt_bench.models import create_model

    model = create_model("ltb-tiny-rn", "none").model
    cfg = FinetuneConfig(dataset="synthetic", out="x", freeze_bn=True, lock_text=True)
    params = set_trainable(model, cfg)
    set_train_mode(model, cfg)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.visual.training and not model.transformer.training
    assert all(p.requires_grad for p in bns[0].parameters())  # affine weights still train
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("visual.") for n in names)
    assert sum(p.numel() for p in params) == sum(p.numel() for p in model.visual.parameters())


def test_config_file_and_held_out_validation(tmp_path):
    """--config supplies options (flags win); no val split -> a held-out train slice validates."""
    import json

    from _cli import run_cli

    out = tmp_path / "run"
    cfg = tmp_path / "ft.toml"
    cfg.write_text(f'dataset = "synthetic"\nout = "{out}"\nmodel = "ltb-tiny-vit"\npretrained = "none"\n'
                   'option = ["max_per_class=40", "val_per_class=0"]\nepochs = 5\nbatch-size = 8\n'
                   'workers = 0\nsteps-per-epoch = 2\n')
    code, stdout, stderr = run_cli("finetune", "--config", cfg, "--epochs", "1", "--device", "cpu")
    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 1
    ck = torch.load(out / "last.pt", weights_only=True)
    saved = json.loads(ck["config"])
    assert saved["dataset_options"] == {"max_per_class": 40, "val_per_class": 0} and saved["batch_size"] == 8
    resolved = (out / "config.toml").read_text()
    assert "epochs = 1" in resolved and "max_per_class=40" in resolved
    assert 0.0 <= ck["history"][0]["val_acc"] <= 1.0


@pytest.mark.slow  # DataLoader worker processes started every epoch of two runs
def test_same_seed_same_weights_with_workers_and_augmentation(tmp_path):
    from lt_bench.finetune import run_finetune

    weights = []
    for name in ("a", "b"):
        cfg = FinetuneConfig(dataset="synthetic", out=str(tmp_path / name), model="ltb-tiny-vit",
                             pretrained="none", dataset_options={"max_per_class": 40}, epochs=2,
                             batch_size=8, steps_per_epoch=2, optimizer="adamw", lr=1e-3, augment=True,
                             workers=1, device="cpu", seed=5)
        run_finetune(cfg)
        weights.append(torch.load(tmp_path / name / "last.pt", weights_only=True)["state_dict"])
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_resume_uses_the_new_hyperparameters(tmp_path):
    first = _tiny_run(tmp_path, "run", batch_size=8, steps_per_epoch=1)
    assert first["optimizer"]["param_groups"][0]["initial_lr"] == 0.05
    from lt_bench.finetune import run_finetune

    cfg = FinetuneConfig(dataset="synthetic", out=str(tmp_path / "run"), model="ltb-tiny-vit", pretrained="none",
                         dataset_options={"max_per_class": 40}, epochs=2, optimizer="sgd", lr=0.01,
                         weight_decay=0.0, augment=False, workers=0, device="cpu", seed=1, batch_size=8,
                         steps_per_epoch=1, resume=True)
    run_finetune(cfg)
    group = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["optimizer"]["param_groups"][0]
    assert group["initial_lr"] == 0.01 and group["weight_decay"] == 0.0


def test_a_tensor_file_is_not_a_checkpoint(tmp_path):
    from lt_bench.finetune.checkpoint import load_checkpoint

    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(LTBenchError, match="not an lt_bench finetune checkpoint"):
        load_checkpoint(tmp_path / "t.pt")
