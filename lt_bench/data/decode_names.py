"""The ``--decode`` paths' names and the JPEG header facts they choose by: torch-free, so that
option declarations (and ``ltbench --help``) can name the choices without importing torch.
What each path does: ``decode.py``."""

from __future__ import annotations

DECODES = ("pil", "fast", "gpu", "auto")
REFERENCE = "pil"  # the path whose pixels are BALLAD's released code's
# JPEG start-of-frame markers (SOF0-SOF15 but DHT, JPG and DAC): they carry the image size
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, components) from a JPEG's start-of-frame marker; None when ``data`` is
    not a JPEG or has no readable frame header (the decoder then says what is wrong)."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF:
            if pos + 10 > n:
                return None
            h = int.from_bytes(data[pos + 5:pos + 7], "big")
            w = int.from_bytes(data[pos + 7:pos + 9], "big")
            return h, w, data[pos + 9]
        pos += 2 + length
    return None
