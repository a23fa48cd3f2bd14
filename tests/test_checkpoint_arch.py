"""A checkpoint's architecture travels with it: extract runs the network finetune trained.

open_clip issue 771: OpenAI's weights run QuickGELU, open_clip's plain configs nn.GELU, and
weights load into either without complaint. ``finetune --pretrained openai`` trains QuickGELU;
``extract --pretrained RUN_DIR/best.pt --model <the plain name>`` must rebuild QuickGELU.
Offline, the ``openai`` tag of the tiny ViT is a local file registered with open_clip's tag
table, QuickGELU as OpenAI's tags are.
"""

from __future__ import annotations

import h5py
import numpy as np
import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU

from lt_bench.errors import LTBenchError
from lt_bench.models import architecture, create_model

SYNTH = {"max_per_class": 40, "val_per_class": 2, "test_per_class": 4}


def _quick(model: torch.nn.Module) -> bool:
    return any(isinstance(m, QuickGELU) for m in model.modules())


@pytest.fixture
def openai_tag(tmp_path, monkeypatch):
    """``ltb-tiny-vit`` gets an ``openai`` tag: random weights in a local file, quick_gelu as OpenAI's."""
    torch.manual_seed(0)
    path = tmp_path / "tiny_openai.pt"
    # MLP outputs 10x random init's, so that the activation function shows in the features (as it
    # does in a trained CLIP; at random init the residual stream hides it)
    sd = {k: v * 10 if k.endswith("mlp.c_proj.weight") else v
          for k, v in open_clip.create_model("ltb-tiny-vit").state_dict().items()}
    torch.save(sd, path)
    cfg = dict(open_clip.get_pretrained_cfg("ViT-B-16", "openai"), file=str(path), url="", hf_hub="")
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "ltb-tiny-vit", {"openai": cfg})
    return path


def _features(model, images) -> torch.Tensor:
    with torch.inference_mode():
        f = model.eval().encode_image(images).float()
    return f / f.norm(dim=-1, keepdim=True)


@pytest.mark.slow
def test_extract_of_a_finetune_checkpoint_is_the_trained_network(tmp_path, openai_tag, one_torch_thread):
    from lt_bench.data import load_dataset
    from lt_bench.finetune import FinetuneConfig, run_finetune
    from lt_bench.pipeline import ExtractConfig, run_extract

    run = tmp_path / "run"
    run_finetune(FinetuneConfig(dataset="synthetic", dataset_options=SYNTH, out=str(run), model="ltb-tiny-vit",
                                pretrained="openai", epochs=2, batch_size=8, steps_per_epoch=2, optimizer="sgd",
                                lr=1e-3, augment=False, workers=0, device="cpu", seed=1))
    best = torch.load(run / "best.pt", weights_only=True)
    last = torch.load(run / "last.pt", weights_only=True)
    assert best["arch"] == last["arch"]
    assert best["arch"]["model"] == "ltb-tiny-vit" and best["arch"]["quick_gelu"] is True
    assert best["arch"]["model_cfg"]["quick_gelu"] is True and best["arch"]["image_size"] == 32
    init = torch.load(openai_tag, weights_only=True)
    assert not torch.equal(best["state_dict"]["visual.proj"], init["visual.proj"])  # it was trained

    out = tmp_path / "f.h5"
    run_extract(ExtractConfig(dataset="synthetic", dataset_options=SYNTH, model="ltb-tiny-vit",
                              pretrained=str(run / "best.pt"), splits=("test",), views=0, batch_size=16,
                              workers=0, device="cpu", seed=1, out=str(out), progress=False))
    with h5py.File(out, "r") as f:
        cached = torch.from_numpy(f["test/features"][()].astype(np.float32))
        labels = f["test/labels"][()]

    # the fine-tuned model's own forward pass: the network finetune built, with best.pt's weights
    trained = create_model("ltb-tiny-vit", "openai")
    assert _quick(trained.model)
    trained.model.load_state_dict(best["state_dict"])
    split = load_dataset("synthetic", **SYNTH).splits["test"]
    assert np.array_equal(labels, split.labels)
    images = torch.stack([trained.preprocess_val(split.load_image(i)) for i in range(len(split))])
    own = _features(trained.model, images)
    fp16 = 3e-4  # the cache is float16: half an ulp of a unit vector's entries is <= 2.5e-4
    torch.testing.assert_close(cached, own, atol=fp16, rtol=0)

    # what extract built before the architecture was recorded: open_clip's ltb-tiny-vit, nn.GELU
    old = open_clip.create_model("ltb-tiny-vit")
    assert not _quick(old)
    old.load_state_dict(best["state_dict"])  # loads without complaint
    gap = (_features(old, images) - own).abs().max()
    assert gap > 10 * fp16, gap


def _save_tiny(path, name: str, arch: bool = True, **extra) -> dict:
    torch.manual_seed(0)
    model = open_clip.create_model(name)
    ckpt = {"state_dict": model.state_dict(), **extra}
    if arch:
        ckpt["arch"] = architecture(name, model)
    torch.save(ckpt, path)
    return ckpt


def test_recorded_quickgelu_is_rebuilt_under_either_name(tmp_path):
    ckpt = _save_tiny(tmp_path / "q.pt", "ltb-tiny-vit-quickgelu")
    assert ckpt["arch"]["quick_gelu"] is True
    for name in ("ltb-tiny-vit", "ltb-tiny-vit-quickgelu"):
        bundle = create_model(name, str(tmp_path / "q.pt"))
        assert _quick(bundle.model) and bundle.info.arch["quick_gelu"] is True and bundle.info.model == name
        for k, v in bundle.model.state_dict().items():
            assert torch.equal(v, ckpt["state_dict"][k]), k


def test_contradicting_model_is_refused(tmp_path):
    _save_tiny(tmp_path / "q.pt", "ltb-tiny-vit-quickgelu")
    _save_tiny(tmp_path / "g.pt", "ltb-tiny-vit")
    with pytest.raises(LTBenchError, match=r"holds a ltb-tiny-vit-quickgelu network, not ltb-tiny-rn .*"
                                           r"pass --model ltb-tiny-vit-quickgelu"):
        create_model("ltb-tiny-rn", str(tmp_path / "q.pt"))
    with pytest.raises(LTBenchError, match=r"trained with nn.GELU but --model ltb-tiny-vit-quickgelu sets "
                                           r"QuickGELU: pass --model ltb-tiny-vit$"):
        create_model("ltb-tiny-vit-quickgelu", str(tmp_path / "g.pt"))
    ckpt = torch.load(tmp_path / "g.pt", weights_only=True)
    ckpt["arch"]["model_cfg"]["embed_dim"] = 32  # the config under that name has changed since
    torch.save(ckpt, tmp_path / "changed.pt")
    with pytest.raises(LTBenchError, match=r"open_clip's ltb-tiny-vit config as it was then.*\(embed_dim\)"):
        create_model("ltb-tiny-vit", str(tmp_path / "changed.pt"))


def test_checkpoints_without_the_facts(tmp_path):
    """Plain open_clip files: the named config as it is. Older finetune checkpoints: as built then."""
    sd = _save_tiny(tmp_path / "wrapped.pt", "ltb-tiny-vit", arch=False)["state_dict"]
    torch.save(sd, tmp_path / "plain.pt")
    for f in ("plain.pt", "wrapped.pt"):
        assert not _quick(create_model("ltb-tiny-vit", str(tmp_path / f)).model)
        assert _quick(create_model("ltb-tiny-vit-quickgelu", str(tmp_path / f)).model)
    legacy = {"model": "ltb-tiny-vit", "config": "{}", "lt_bench_version": "0.1.0"}
    for pretrained, quick in (("openai", True), ("none", False)):
        path = tmp_path / f"legacy_{pretrained}.pt"
        _save_tiny(path, "ltb-tiny-vit", arch=False, pretrained=pretrained, **legacy)
        assert _quick(create_model("ltb-tiny-vit", str(path)).model) is quick
    with pytest.raises(LTBenchError, match="holds a ltb-tiny-vit network, not ltb-tiny-rn"):
        create_model("ltb-tiny-rn", str(tmp_path / "legacy_openai.pt"))


def test_hub_tags_get_the_activation_their_weights_were_trained_with(tmp_path, monkeypatch):
    """open_clip's tag table says which tags are QuickGELU (every openai tag, dfn2b, metaclip...)."""
    path = tmp_path / "w.pt"
    torch.save(open_clip.create_model("ltb-tiny-vit").state_dict(), path)
    tags = {tag: dict(open_clip.get_pretrained_cfg("ViT-B-16", tag), file=str(path), url="", hf_hub="")
            for tag in ("openai", "dfn2b", "laion2b_s34b_b88k")}
    assert [t.get("quick_gelu", False) for t in tags.values()] == [True, True, False]  # as open_clip's table
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "ltb-tiny-vit", tags)
    for tag, quick in (("openai", True), ("dfn2b", True), ("laion2b_s34b_b88k", False)):
        bundle = create_model("ltb-tiny-vit", tag)
        assert _quick(bundle.model) is quick and bundle.info.arch["quick_gelu"] is quick, tag
