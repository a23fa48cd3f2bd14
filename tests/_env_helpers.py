"""The check every artefact's ``environment`` record must pass (provenance.environment)."""

from __future__ import annotations

import platform
import sys

import faiss
import h5py
import open_clip
import torch

import lt_bench


def assert_environment(env: dict, device: str | None = "cpu") -> None:
    """``env`` names the versions installed here and the device the artefact was made on."""
    assert isinstance(env, dict), env
    assert env["lt_bench"] == lt_bench.__version__
    assert env["torch"] == str(torch.__version__)
    assert env["open_clip"] == open_clip.__version__
    assert env["faiss"] == faiss.__version__
    assert env["h5py"] == h5py.__version__
    assert env["python"] == sys.version.split()[0] and env["platform"] == platform.platform()
    assert env["device"] == device
