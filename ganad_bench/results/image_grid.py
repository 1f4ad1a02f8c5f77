"""Image grids as PNG files, without an imaging library (zlib + the PNG chunk format, RFC 2083).

    write_png("memory.png", image_grid(images))   # images: (n, C, H, W) floats in [-1, 1]

Used for MEMGAN's decoded memory units (MEMGAN Fig. 1); tabular rows have no picture and are refused.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 2,
               value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """(n, C, H, W) images -> one uint8 (rows*H + pads, cols*W + pads, C) picture, `pad` black pixels apart."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (n, 1 or 3, H, W) images, got shape {images.shape}")
    lo, hi = value_range
    pixels = np.clip((images - lo) / (hi - lo), 0.0, 1.0) * 255.0
    n, c, h, w = pixels.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * (h + pad) + pad, columns * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[top:top + h, left:left + w] = np.round(pixels[i].transpose(1, 2, 0)).astype(np.uint8)
    return grid


def png_bytes(picture: np.ndarray) -> bytes:
    """An 8-bit grey (H, W, 1) or RGB (H, W, 3) uint8 array as PNG bytes."""
    picture = np.asarray(picture, dtype=np.uint8)
    height, width, channels = picture.shape
    colour_type = {1: 0, 3: 2}[channels]
    raw = b"".join(b"\x00" + picture[y].tobytes() for y in range(height))  # filter type 0 per scanline

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def write_png(path: str | Path, picture: np.ndarray) -> Path:
    from ganad_bench.atomic import write_atomic

    data = png_bytes(picture)
    return write_atomic(Path(path), lambda out: out.write(data), binary=True)
