"""How image files become a model's input batch: the ``--decode`` paths.

- ``pil`` (default; the reference's pixels): PIL decodes and BALLAD's torchvision transforms
  resize, crop and augment PIL images, exactly as the reference code does. Only the last step
  moved: workers hand over uint8 (3, S, S) and the batch is normalised at once on the device
  (``pixels.normalize_batch``: the same float32 operations, so the same features, bit for bit).
- ``fast`` (CPU): JPEG files are decoded by libjpeg-turbo through ``torchvision.io.decode_jpeg``
  (the same pixels as PIL's decoder), at 1/2, 1/4 or 1/8 scale in libjpeg's DCT (PIL's draft
  mode) when the image is that much larger than the crops need; resizing, cropping and the
  augmentation are uint8 tensor ops (``pixels.py``). torch's antialiased bicubic differs from
  PIL's by 1-2 grey levels here and there (draft-decoded images by more): named, not default.
- ``gpu``: workers read the file's bytes only (and draw the view's random parameters from its
  header's size); the batch is decoded by nvJPEG (``decode_jpeg(device="cuda")``) and the same
  tensor ops run on the GPU. PNG, CMYK JPEG and anything else nvJPEG cannot take are decoded in
  the worker as by ``fast`` (one log line says how many).
- ``auto``: ``gpu`` on a CUDA device whose torchvision can decode JPEG there, ``pil`` otherwise.

``fast`` and ``gpu`` change pixels, so a cache records the resolved path in its identity
(``features/partial.py``) and is not reused for another one.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass, field

import torch
from PIL import Image

from ..errors import LTBenchError
from ..log import get_logger
from . import pixels as px
from .base import Split
from .decode_names import DECODES, REFERENCE, jpeg_header

log = get_logger(__name__)


@functools.lru_cache(maxsize=1)
def nvjpeg_available() -> bool:
    """Whether torchvision decodes JPEG on this machine's GPU (a CUDA build and a visible GPU)."""
    if not torch.cuda.is_available():
        return False
    try:
        from torchvision.io import decode_jpeg

        tiny = _tiny_jpeg()
        decode_jpeg(torch.frombuffer(bytearray(tiny), dtype=torch.uint8), device="cuda")
        return True
    except Exception:  # noqa: BLE001 - a CPU-only torchvision build, or no nvJPEG
        return False


def _tiny_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    return buf.getvalue()


def resolve_decode(decode: str, device: torch.device | str) -> str:
    """The path a run takes for ``--decode`` on ``device``: ``auto`` resolved, and ``gpu`` where
    it cannot run replaced by ``fast`` with a warning."""
    if decode not in DECODES:
        raise LTBenchError(f"--decode takes {', '.join(DECODES)}; got {decode!r}")
    cuda = torch.device(device).type == "cuda"
    if decode in ("gpu", "auto"):
        if cuda and nvjpeg_available():
            log.info("decode: nvJPEG on %s (workers read bytes only)", device)
            return "gpu"
        if decode == "gpu":
            why = "the device is not CUDA" if not cuda else "this torchvision cannot decode JPEG on the GPU"
            log.warning("decode: --decode gpu but %s: decoding on the CPU (--decode fast) instead", why)
            return "fast"
        return REFERENCE
    return decode


def read_file(split: Split, i: int) -> bytes:
    """Image i's file as bytes (a split backed by files), with ``load_image``'s messages."""
    path = split.root / split.ids[i]
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LTBenchError(f"image not found: {path} (check --root)") from None
    except OSError as e:
        raise LTBenchError(f"cannot read image {path}: {e}") from None


def _draft_scale(short: int, need: int) -> int:
    """The largest of 8, 4, 2 that keeps the short side at ``need`` pixels or more (1: none)."""
    for s in (8, 4, 2):
        if short // s >= need:
            return s
    return 1


def decode_uint8(data: bytes, need: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(3, h, w) uint8 RGB pixels of an image file and its full (H, W).

    JPEG: libjpeg-turbo through torchvision, or PIL's draft mode (DCT scaling) when the short
    side stays at ``need`` pixels or more at 1/2, 1/4 or 1/8 scale. Anything else: PIL."""
    hdr = jpeg_header(data)
    if hdr is not None and hdr[2] in (1, 3) and _draft_scale(min(hdr[:2]), need) == 1:
        from torchvision.io import ImageReadMode, decode_jpeg

        return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB), hdr[:2]
    with Image.open(io.BytesIO(data)) as img:
        size = (img.height, img.width)
        if img.format == "JPEG":
            img.draft("RGB", (need, need))  # PIL keeps both sides >= need
        img.load()
        rgb = img if img.mode == "RGB" else img.convert("RGB")
        return px.to_uint8(rgb), size


@dataclass
class Prepared:
    """What a worker hands over for one image: finished uint8 pixels, or (``gpu``) the JPEG's
    bytes and the views' parameters for the main process to finish on the device."""

    center: torch.Tensor | None = None  # (3, S, S) uint8
    views: torch.Tensor | None = None  # (k, 3, S, S) uint8
    data: torch.Tensor | None = None  # (n,) uint8 JPEG bytes (gpu)
    params: list = field(default_factory=list)  # AugParams of the k views (gpu)
    fallback: bool = False  # gpu asked, decoded on the CPU (not a JPEG nvJPEG takes)


@dataclass
class PreparedBatch:
    """A batch of ``Prepared`` as a few large tensors: a DataLoader worker hands each tensor over
    through its own shared-memory segment, so one per image would cost more than the pixels."""

    centers: torch.Tensor  # (sum of centers, 3, S, S) uint8, the CPU-finished images' in order
    n_centers: list[int]  # 1 or 0 per image (0: gpu-finished or no eval view)
    views: torch.Tensor  # (sum of views, 3, S, S) uint8
    n_views: list[int]
    data: torch.Tensor  # the gpu images' JPEG bytes, concatenated
    n_data: list[int]  # 0 for a CPU-finished image
    params: list  # per image, its views' AugParams (gpu)
    center_wanted: list[bool]
    fallback: int

    @classmethod
    def pack(cls, items: list[Prepared], size: int) -> "PreparedBatch":
        def cat(ts, dtype=torch.uint8, shape=(0, 3, size, size)):
            ts = [t for t in ts if t is not None and t.numel()]
            return torch.cat(ts) if ts else torch.empty(shape, dtype=dtype)

        centers = [None if it.center is None else it.center.view(-1, 3, size, size) for it in items]
        return cls(centers=cat(centers), n_centers=[0 if c is None else len(c) for c in centers],
                   views=cat([it.views for it in items]),
                   n_views=[0 if it.views is None else len(it.views) for it in items],
                   data=cat([it.data for it in items], shape=(0,)),
                   n_data=[0 if it.data is None else len(it.data) for it in items],
                   params=[it.params for it in items], center_wanted=[it.center is None for it in items],
                   fallback=sum(it.fallback for it in items))

    def unpack(self) -> list[Prepared]:
        out, c, v, d = [], 0, 0, 0
        for k in range(len(self.n_views)):
            nc, nv, nd = self.n_centers[k], self.n_views[k], self.n_data[k]
            if nd:
                center = None if self.center_wanted[k] else self.centers[:0]
                out.append(Prepared(center=center, data=self.data[d:d + nd], params=self.params[k]))
            else:
                out.append(Prepared(center=self.centers[c:c + nc], views=self.views[v:v + nv]))
            c, v, d = c + nc, v + nv, d + nd
        return out

    def __len__(self) -> int:
        return len(self.n_views)

    def pin_memory(self) -> "PreparedBatch":
        """Page-locked copies (the DataLoader's ``pin_memory`` calls this), for async copies to CUDA."""
        from dataclasses import replace

        return replace(self, centers=self.centers.pin_memory(), views=self.views.pin_memory(),
                       data=self.data.pin_memory())


class Collate:
    """A DataLoader's ``collate_fn`` for items ``(Prepared, int, int, ...)``: the batch's
    ``PreparedBatch`` (packed in the worker) and each integer field as an int64 tensor (B,)
    (extraction: indices and ok flags; Phase A: labels and indices)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, items):
        prepared, *fields = zip(*items)
        return (PreparedBatch.pack(list(prepared), self.size),
                *(torch.tensor(f, dtype=torch.int64) for f in fields))


class ImagePath:
    """One decode path for one model input size: turns image i of a split into ``Prepared``
    (in a DataLoader worker) and a collated batch into normalised model input (on the device).

    Args:
        decode: a resolved path (``pil``, ``fast`` or ``gpu``).
        size: the model's input size S.
        eval_pil: the eval transform's PIL part (``split_eval_transform``), for ``pil``.
        mean, std: the model's normalisation.
    """

    def __init__(self, decode: str, size: int, eval_pil, mean, std):
        assert decode in ("pil", "fast", "gpu"), decode
        self.decode, self.size, self.eval_pil = decode, size, eval_pil
        self.mean, self.std = tuple(mean), tuple(std)
        self.fallbacks = 0  # images the gpu path decoded on the CPU (main process count)

    # -- worker side ------------------------------------------------------------------------
    def prepare(self, split: Split, i: int, seeds: list[int], center: bool = True) -> Prepared:
        """Image i with one augmented view per entry of ``seeds`` (each view's RNG seed; None:
        drawn from the worker's own RNG, as Phase A's loader does), and its eval view unless
        ``center`` is False."""
        if self.decode == "pil":
            img = split.load_image(i)
            views = [px.to_uint8(px.apply_pil(img, _params(s, img.height, img.width), self.size)) for s in seeds]
            c = px.to_uint8(self.eval_pil(img)) if center else _no_center(self.size)
            return Prepared(center=c, views=_stack(views, self.size))
        if split.root is None:  # arrays or generated images: nothing to decode
            u = px.to_uint8(split.load_image(i))
            return self._on_cpu(u, (u.shape[1], u.shape[2]), seeds, center)
        data = read_file(split, i)
        hdr = jpeg_header(data)
        if self.decode == "gpu" and hdr is not None and hdr[2] in (1, 3):
            params = [_params(s, hdr[0], hdr[1]) for s in seeds]
            return Prepared(data=torch.frombuffer(bytearray(data), dtype=torch.uint8), params=params,
                            center=None if center else _no_center(self.size))
        try:
            u, full = decode_uint8(data, self._need(bool(seeds)))
        except Exception as e:  # noqa: BLE001 - any decoder error: the file is unreadable
            raise LTBenchError(f"cannot decode image {split.root / split.ids[i]}: {e}") from None
        out = self._on_cpu(u, full, seeds, center)
        out.fallback = self.decode == "gpu"
        return out

    def _need(self, views: bool) -> int:
        """Short-side pixels a draft decode must keep: the eval resize's S, or with views the
        smallest BALLAD crop's side at S (a crop of half the area at aspect 3/4)."""
        if not views:
            return self.size
        return math.ceil(self.size / math.sqrt(px.CROP_SCALE[0] * px.CROP_RATIO[0]))

    def _on_cpu(self, u: torch.Tensor, full: tuple[int, int], seeds: list, center: bool) -> Prepared:
        params = [_params(s, *full) for s in seeds]
        views = finish_views(u, full, params, self.size)
        return Prepared(center=px.eval_tensor(u, self.size) if center else _no_center(self.size), views=views)

    # -- main process side -------------------------------------------------------------------
    def finish(self, batch: PreparedBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """(centers (B, 3, S, S), or (0, ...) without them; views (sum k, 3, S, S)): float32,
        normalised, on ``device``; and the positions of the images that nvJPEG and the CPU
        decoder both refused (zeros there). The device's views are jittered in one pass."""
        s = self.size
        items = batch.unpack()
        centers, views, bad = [None] * len(items), [None] * len(items), []
        gpu = [k for k, it in enumerate(items) if it.data is not None]
        self.fallbacks += batch.fallback
        decoded = dict(zip(gpu, self._decode_on_device([items[k].data for k in gpu], device)))
        for k, it in enumerate(items):
            if it.data is None:
                centers[k], views[k] = it.center, it.views
                continue
            u, full = decoded[k], None
            if u is None:  # not for nvJPEG: the CPU decoder decides
                try:
                    u, full = decode_uint8(it.data.numpy().tobytes(), s)
                    u = u.to(device)
                except Exception:  # noqa: BLE001 - unreadable: reported like the CPU path's
                    bad.append(k)
                    centers[k] = torch.zeros(1 if it.center is None else 0, 3, s, s, dtype=torch.uint8, device=device)
                    views[k] = torch.zeros(len(it.params), 3, s, s, dtype=torch.uint8, device=device)
                    continue
            full = full or (u.shape[1], u.shape[2])
            centers[k] = px.eval_tensor(u, s)[None] if it.center is None else it.center.to(device)
            views[k] = crop_views(u, full, it.params, s)
        _jitter_in_place(views, [items[k].params if k in decoded else [] for k in range(len(items))], bad)
        if not gpu:  # all finished by the workers: two copies to the device
            x = batch.centers.to(device, non_blocking=True)
            return (px.normalize_batch(x, self.mean, self.std),
                    px.normalize_batch(batch.views.to(device, non_blocking=True), self.mean, self.std), bad)
        centers = [c.to(device, non_blocking=True) for c in centers]
        views = [v.to(device, non_blocking=True) for v in views]
        x = px.normalize_batch(torch.cat(centers), self.mean, self.std)
        return x, px.normalize_batch(torch.cat(views), self.mean, self.std), bad

    @staticmethod
    def _decode_on_device(data: list[torch.Tensor], device: torch.device) -> list:
        """nvJPEG decodes of the batch's JPEGs in one call; when that fails (a corrupt file), one
        at a time, with None for each file nvJPEG refuses."""
        if not data:
            return []
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
        except Exception:  # noqa: BLE001 - find which
            out = []
            for d in data:
                try:
                    out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
                except Exception:  # noqa: BLE001
                    out.append(None)
            return out


def crop_views(u: torch.Tensor, full: tuple[int, int], params: list, size: int) -> torch.Tensor:
    """(k, 3, S, S) uint8 views of pixels ``u`` (maybe draft-decoded from an image of size ``full``),
    before the colour jitter: each view's crop box scaled to ``u``'s size, crop, resize, flip."""
    if not params:
        return torch.empty(0, 3, size, size, dtype=torch.uint8, device=u.device)
    sy, sx = u.shape[1] / full[0], u.shape[2] / full[1]
    return torch.stack([px.augment_tensor(u, p.scaled(sy, sx) if (sy, sx) != (1.0, 1.0) else p, size)
                        for p in params])


def finish_views(u: torch.Tensor, full: tuple[int, int], params: list, size: int) -> torch.Tensor:
    """``crop_views`` then the colour jitter: the (k, 3, S, S) uint8 augmented views of one image."""
    return px.jitter_batch(crop_views(u, full, params, size), params)


def _jitter_in_place(views: list, params: list[list], bad: list[int]) -> None:
    """Jitter the views of the images with ``params`` (the device-decoded ones) in one batch:
    per-view results are the same as one image at a time (every sum in it is exact)."""
    todo = [k for k, p in enumerate(params) if p and k not in bad]
    if not todo:
        return
    flat = [p for k in todo for p in params[k]]
    out = px.jitter_batch(torch.cat([views[k] for k in todo]), flat)
    for k, part in zip(todo, out.split([len(params[k]) for k in todo])):
        views[k] = part


def _params(seed: int | None, height: int, width: int) -> px.AugParams:
    return px.draw_ballad_params(height, width) if seed is None else px.seeded_params(seed, height, width)


def _no_center(size: int) -> torch.Tensor:
    """A placeholder for an image whose eval view is not wanted (Phase A's train batches)."""
    return torch.empty(0, 3, size, size, dtype=torch.uint8)


def _stack(views: list[torch.Tensor], size: int) -> torch.Tensor:
    return torch.stack(views) if views else torch.empty(0, 3, size, size, dtype=torch.uint8)


def split_eval_transform(transform):
    """(PIL part, mean, std) of a ``Compose([..., ToTensor, Normalize])`` eval transform (open_clip's
    and BALLAD's shape), or None when it has another shape (it then runs per image, as a whole)."""
    steps = list(getattr(transform, "transforms", []))
    names = [type(t).__name__ for t in steps]
    if len(steps) < 2 or "ToTensor" not in names[-2] or names[-1] != "Normalize":
        return None
    from torchvision import transforms as T

    return T.Compose(steps[:-2]), tuple(steps[-1].mean), tuple(steps[-1].std)


def eval_is_resize_crop(transform, size: int) -> bool:
    """Whether the eval transform's PIL part is BALLAD's: shorter side to ``size`` (bicubic),
    centre crop ``size`` (what ``pixels.eval_tensor`` computes for ``fast`` and ``gpu``)."""
    split = split_eval_transform(transform)
    if split is None:
        return False
    from torchvision import transforms as T

    steps = [t for t in split[0].transforms if isinstance(t, (T.Resize, T.CenterCrop))]
    if len(steps) != 2 or not isinstance(steps[0], T.Resize) or not isinstance(steps[1], T.CenterCrop):
        return False
    r, c = steps
    rs = r.size if isinstance(r.size, int) else (r.size[0] if len(r.size) == 1 else None)
    return (rs == size and r.interpolation == px.BICUBIC and r.max_size is None
            and tuple(c.size) == (size, size))
