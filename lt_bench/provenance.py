"""What produced an artefact: recorded inside it, checked when it is read.

``environment(device)`` is the one description of the software and device an artefact was
made with; the feature cache (root attribute ``environment``, JSON), Phase A checkpoints,
head files and result files all store it under the key ``environment``, and the leaderboard
names it in a trailing comment (a column in CSV).
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from importlib import metadata

from . import __version__

# import name -> the pip distributions that provide it (faiss comes as a CPU or a GPU wheel)
_PACKAGES = {
    "torch": ("torch",),
    "open_clip": ("open_clip_torch",),
    "faiss": ("faiss-cpu", "faiss-gpu-cu12", "faiss-gpu-cu11", "faiss-gpu", "faiss"),
    "h5py": ("h5py",),
}
ENVIRONMENT_KEYS = ("lt_bench", *_PACKAGES, "python", "platform", "device")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def package_version(module: str) -> str | None:
    """Version of ``module`` (an import name of ``_PACKAGES``), None when it is not installed.

    The imported module's ``__version__`` when it is loaded (what actually runs), else the
    installed distribution's metadata, so that reading a version never imports faiss or
    open_clip. torch is imported: its ``__version__`` names the CUDA build (``2.5.1+cu124``),
    which a wheel's metadata may not, and every artefact writer has loaded it already.
    """
    if module == "torch":
        import torch

        return str(torch.__version__)
    loaded = sys.modules.get(module)
    version = getattr(loaded, "__version__", None)
    if version:
        return str(version)
    for dist in _PACKAGES.get(module, (module,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def device_label(device=None) -> str | None:
    """``"cpu"``, ``"cuda:0 (NVIDIA H200)"``, ...; None when unknown.

    Args:
        device: a ``torch.device`` or its string (``cuda`` means the current CUDA device); a
            label this function made is returned as it is.
    """
    if device is None:
        return None
    name = str(device)
    if not name.startswith("cuda") or "(" in name:
        return name
    import torch

    index = torch.device(name).index
    try:
        if index is None:
            index = torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    except (RuntimeError, AssertionError, AttributeError):  # no usable CUDA: say what was asked for
        return name if index is None else f"cuda:{index}"


def environment(device=None) -> dict:
    """The versions an artefact was made with and the device it ran on (JSON-ready strings).

    Args:
        device: where the computation ran (``torch.device``, ``"cpu"``, ``"cuda:0"``, or a
            ``device_label``); None records ``"device": null`` (not known to the writer).

    Returns:
        ``{"lt_bench", "torch", "open_clip", "faiss", "h5py", "python", "platform", "device"}``;
        a package that is not installed is None.
    """
    env = {"lt_bench": __version__}
    env.update({name: package_version(name) for name in _PACKAGES})
    env.update(python=sys.version.split()[0], platform=platform.platform(), device=device_label(device))
    return env


def describe_environment(env: dict | None) -> str:
    """One line for tables and logs: ``lt_bench 0.1.0, torch 2.5.1, ..., device cpu``."""
    if not env:
        return ""
    parts = [f"{k} {env[k]}" for k in ENVIRONMENT_KEYS if k not in ("platform", "device") and env.get(k)]
    if env.get("device"):
        parts.append(f"device {env['device']}")
    return ", ".join(parts)
