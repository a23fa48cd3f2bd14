"""The --decode input paths: pixels and features against the reference's PIL path, the
augmentation's tensor ops against PIL's under the same seeded parameters, fallbacks (PNG, CMYK
JPEG), corrupt files, reproducibility across reruns and worker counts, and the cache identity."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from _cli import run_cli
from lt_bench.data import load_dataset
from lt_bench.data import pixels as px
from lt_bench.data.decode import jpeg_header, nvjpeg_available, resolve_decode
from lt_bench.data.synthetic import write_image_folder
from lt_bench.errors import LTBenchError
from lt_bench.features.extract import ExtractOptions, extract_features
from lt_bench.features.items import view_seed
from lt_bench.models import create_model
from lt_bench.models.transforms import ballad_train_transform

# Smaller than 2x the tiny model's 32 px: no draft scaling, only the resize differs from PIL's.
SMALL = (60, 45)
F16_STEP = 2.0 ** -11  # float16's spacing on [0.5, 1): features are unit vectors, |x| < 1


@pytest.fixture(scope="module")
def bundle():
    torch.manual_seed(0)
    return create_model("ltb-tiny-vit", "none")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpeg")
    write_image_folder(root, per_class=6, num_classes=3, size=SMALL, test_per_class=2)
    # the fallbacks: a PNG and a CMYK JPEG among the train images
    Image.open(root / "train/class_0/00000.jpg").save(root / "train/class_0/png.png")
    Image.open(root / "train/class_1/00000.jpg").convert("CMYK").save(root / "train/class_1/cmyk.jpg", quality=95)
    return root


def _extract(tmp_path, root, bundle, decode, name=None, workers=0, views=2, **kw):
    ds = load_dataset("folder", root=str(root))
    out = tmp_path / f"{name or decode}.h5"
    extract_features(out, ds, bundle, ExtractOptions(splits=("train", "test"), views=views, decode=decode, workers=workers,
                                                     batch_size=5, progress=False, seed=3, **kw))
    with h5py.File(out, "r") as f:
        return {k: f[k][()] for k in ("train/features", "train/aug_features", "test/features") if k in f}


def test_pil_path_is_the_reference_transform_bit_for_bit(tmp_path, folder, bundle):
    """The pil path's uint8 batches, normalised per batch, give exactly what BALLAD's per-image
    transforms (open_clip's eval transform; ballad_train_transform under the view's seed) give."""
    got = _extract(tmp_path, folder, bundle, "pil", views=1)
    ds = load_dataset("folder", root=str(folder))
    split = ds.split("train")
    train_tf = ballad_train_transform(bundle.info.image_size, bundle.info.mean, bundle.info.std)
    centers, views = [], []
    for i in range(len(split)):
        img = split.load_image(i)
        centers.append(bundle.preprocess_val(img))
        torch.manual_seed(view_seed(3, i, 0))
        views.append(train_tf(img))
    with torch.inference_mode():
        ref_c = torch.nn.functional.normalize(bundle.model.encode_image(torch.stack(centers)).float(), dim=-1)
        ref_v = torch.nn.functional.normalize(bundle.model.encode_image(torch.stack(views)).float(), dim=-1)
    np.testing.assert_array_equal(got["train/features"], ref_c.half().numpy())
    np.testing.assert_array_equal(got["train/aug_features"], ref_v.half().numpy())


def test_fast_path_features_equal_pil_within_float16(tmp_path, folder, bundle):
    pil = _extract(tmp_path, folder, bundle, "pil")
    fast = _extract(tmp_path, folder, bundle, "fast")
    for key in ("train/features", "test/features"):  # the deterministic eval view (PNG, CMYK included)
        diff = np.abs(pil[key].astype(np.float32) - fast[key].astype(np.float32))
        assert diff.max() <= 2 * F16_STEP, (key, diff.max())
    aug = np.abs(pil["train/aug_features"].astype(np.float32) - fast["train/aug_features"].astype(np.float32))
    assert aug.max() <= 8 * F16_STEP, aug.max()  # the same crops, flips and jitter: only the resize differs


def test_fast_path_reproduces_on_rerun_and_across_worker_counts(tmp_path, folder, bundle):
    a = _extract(tmp_path, folder, bundle, "fast", name="a", workers=0)
    b = _extract(tmp_path, folder, bundle, "fast", name="b", workers=0)
    c = _extract(tmp_path, folder, bundle, "fast", name="c", workers=2)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key], c[key])


@pytest.mark.parametrize("decode", ["pil", "fast"])
def test_corrupt_jpeg_named_or_skipped(tmp_path, bundle, decode):
    root = tmp_path / "data"
    write_image_folder(root, per_class=3, num_classes=2, size=SMALL, test_per_class=1)
    bad = root / "train/class_1/00001.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    with pytest.raises(LTBenchError, match=r"train image train/class_1/00001.jpg.*--skip-bad"):
        _extract(tmp_path, root, bundle, decode)
    got = _extract(tmp_path, root, bundle, decode, name=f"{decode}_skip", skip_bad=True)
    assert got["train/features"].shape[0] == 5
    with h5py.File(tmp_path / f"{decode}_skip.h5", "r") as f:
        assert [p.decode() for p in f["train/skipped_paths"][()]] == ["train/class_1/00001.jpg"]


def test_tensor_augmentation_matches_pil_under_the_same_parameters():
    """Crop + resize within 2 grey levels of PIL's bicubic; flip and colour jitter exact."""
    rng = np.random.default_rng(0)
    for k in range(6):
        a = rng.integers(0, 256, (45 + 10 * k, 70, 3), dtype=np.uint8)
        img = Image.fromarray(a)
        p = px.seeded_params(view_seed(1, k, 0), img.height, img.width)
        plain = px.AugParams(p.top, p.left, p.height, p.width, p.flip, (), 1.0, 1.0, 1.0)
        pil_crop = px.to_uint8(px.apply_pil(img, plain, 32))
        t_crop = px.augment_tensor(px.to_uint8(img), p, 32)
        assert (t_crop.int() - pil_crop.int()).abs().max() <= 2
        jittered = px.jitter_batch(pil_crop[None], [p])[0]
        assert torch.equal(jittered, px.to_uint8(px.apply_pil(img, p, 32)))


def test_draws_are_torchvisions():
    """The seeded parameters are what ballad_train_transform draws under the same seed."""
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 64, 3), dtype=np.uint8))
    tf = ballad_train_transform(32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    for s in range(5):
        torch.manual_seed(s)
        ref = tf(img)
        got = px.normalize_batch(px.to_uint8(px.apply_pil(img, px.seeded_params(s, 50, 64), 32))[None],
                                 (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))[0]
        assert torch.equal(ref, got)


def test_jpeg_header():
    buf = io.BytesIO()
    Image.new("RGB", (37, 21)).save(buf, "JPEG")
    assert jpeg_header(buf.getvalue()) == (21, 37, 3)
    buf = io.BytesIO()
    Image.new("CMYK", (5, 6)).save(buf, "JPEG")
    assert jpeg_header(buf.getvalue()) == (6, 5, 4)
    assert jpeg_header(b"\x89PNG\r\n") is None


def test_decode_resolution_and_cache_identity(tmp_path, folder, bundle, caplog):
    assert resolve_decode("auto", "cpu") == "pil"
    assert resolve_decode("gpu", "cpu") == "fast"  # with one log line
    assert "--decode gpu but the device is not CUDA" in caplog.text
    with pytest.raises(LTBenchError, match="--decode takes"):
        resolve_decode("turbo", "cpu")
    from lt_bench.pipeline.configs import ExtractConfig
    from lt_bench.pipeline.steps import extract_state

    _extract(tmp_path, folder, bundle, "fast", name="ident", views=0)
    cfg = ExtractConfig(dataset="folder", root=str(folder), model="ltb-tiny-vit", pretrained="none",
                        out=str(tmp_path / "ident.h5"), splits=("train", "test"), seed=3, decode="pil")
    state, why = extract_state(cfg)
    assert state == "different" and "decode" in why
    cfg.decode = "fast"
    assert extract_state(cfg)[0] == "done"


@pytest.mark.skipif(not nvjpeg_available(), reason="no CUDA GPU with nvJPEG here: the gpu path's decode "
                    "cannot run (its tensor ops are tested on the CPU above)")
def test_gpu_path_features_equal_fast(tmp_path, folder, bundle):
    fast = _extract(tmp_path, folder, bundle, "fast")
    torch.manual_seed(0)
    gpu = _extract(tmp_path, folder, create_model("ltb-tiny-vit", "none", device="cuda"), "gpu")
    for key in fast:
        assert np.abs(fast[key].astype(np.float32) - gpu[key].astype(np.float32)).max() <= 8 * F16_STEP


def test_gpu_path_structure_on_the_cpu(folder, bundle):
    """The gpu path's split of work (workers: bytes + parameters; main process: decode, crop,
    augment) run with torchvision's CPU decoder: the same batches as fast, the PNG and CMYK JPEG
    decoded in the worker, a corrupt file flagged not ok."""
    from lt_bench.features.items import Collate, Items, finish_batch, image_path

    ds = load_dataset("folder", root=str(folder))
    split = ds.split("train")
    counts = np.full(len(split), 2)
    cpu = torch.device("cpu")
    out = {}
    for decode in ("fast", "gpu"):
        path = image_path(bundle, decode, cpu)
        items = Items(split, path, counts, seed=3)
        batch = Collate(path.size)([items[i] for i in range(len(split))])
        out[decode] = finish_batch(path, batch, cpu)
        if decode == "gpu":
            assert path.fallbacks == 2  # the PNG and the CMYK JPEG
            assert sum(p is not None and len(p) > 0 for p in [batch[0].data]) == 1
    for a, b in zip(out["fast"], out["gpu"]):
        assert torch.equal(a, b)
    # a corrupt file that passes the worker's header check fails in the main process: ok = 0
    path = image_path(bundle, "gpu", cpu)
    good = Items(split, path, counts, seed=3)[1][0]
    broken = type(good)(data=good.data[:300].clone(), params=good.params)
    from lt_bench.data.decode import PreparedBatch

    x, xs, bad = path.finish(PreparedBatch.pack([good, broken], path.size), cpu)
    assert bad == [1] and x.shape == (2, 3, 32, 32) and xs.shape == (4, 3, 32, 32)


def test_finetune_on_jpeg_files_by_decode_path(tmp_path, folder):
    """Phase A through each CPU path (`ltbench finetune --decode`): it trains, and a rerun with the
    same seed gives the same weights (augmentation drawn in the workers, reseeded per epoch)."""
    def finetune(decode, name):
        out = tmp_path / name
        r = run_cli("finetune", "--dataset", "folder", "--root", str(folder), "--model", "ltb-tiny-vit",
                    "--pretrained", "none", "--workers", "0", "--device", "cpu", "--batch-size", "8", "--epochs", "1",
                    "--decode", decode, "--out", str(out))
        assert r.returncode == 0, r.stderr[-2000:]
        return torch.load(out / "last.pt", map_location="cpu", weights_only=True)["state_dict"]

    a, b = finetune("fast", "a"), finetune("fast", "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    finetune("pil", "c")
