"""Images out of generators: uint8 arrays, labelled grids, PNG files.

Usage::

    arr = to_uint8(G(z))                          # [N, H, W, 3] uint8
    save_png(make_grid(arr, labels=["#0", "#1"]), "grid.png")
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .fileio import atomic_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output [N, C, H, W] in [-1, 1] -> uint8 array [N, H, W, C] (C = 1 or 3)."""
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_unit(images: torch.Tensor) -> np.ndarray:
    """Generator output [N, C, H, W] in [-1, 1] -> float64 array [N, H, W, C] on a 0-1 scale
    (for measuring; :func:`to_uint8` is for pictures)."""
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    return ((images.detach().cpu().double().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


def make_grid(
    images: np.ndarray,
    cols: int | None = None,
    labels: Sequence[str] | None = None,
    scale: int = 1,
    pad: int = 2,
    background: int = 255,
) -> Image.Image:
    """Tile uint8 images [N, H, W, C] into one RGB picture.

    Args:
        images: uint8 array [N, H, W, C], C in {1, 3}.
        cols: images per row (default: close to square, at most 16).
        labels: optional text drawn above each tile (e.g. sample indices).
        scale: integer upscaling of each tile (nearest neighbour), for small images.
        pad: pixels between tiles.
        background: grey level of the padding.
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError("images must be a uint8 array [N, H, W, C]")
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("no images to tile")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} images")
    if c == 1:
        images = np.repeat(images, 3, axis=-1)
    cols = cols or _default_cols(n)
    rows = math.ceil(n / cols)
    th, tw = h * scale, w * scale
    font = ImageFont.load_default()
    label_h = 0
    if labels is not None:
        box = font.getbbox("0123456789#")
        label_h = int(box[3]) + 4
    cell_h = th + label_h
    grid = Image.new(
        "RGB", (cols * tw + (cols + 1) * pad, rows * cell_h + (rows + 1) * pad), (background,) * 3
    )
    draw = ImageDraw.Draw(grid)
    for i in range(n):
        r, col = divmod(i, cols)
        x = pad + col * (tw + pad)
        y = pad + r * (cell_h + pad)
        tile = Image.fromarray(images[i])
        if scale != 1:
            tile = tile.resize((tw, th), Image.Resampling.NEAREST)
        grid.paste(tile, (x, y + label_h))
        if labels is not None:
            draw.text((x + 1, y + 1), str(labels[i]), fill=(0, 0, 0), font=font)
    return grid


def _default_cols(n: int) -> int:
    """About square, preferring a column count that fills every row (32 -> 8)."""
    lo = math.ceil(math.sqrt(n))
    for c in range(lo, min(16, n) + 1):
        if n % c == 0:
            return c
    return min(16, lo)


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``image`` as PNG atomically (temporary file, then rename); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def heat_overlay(
    images: np.ndarray,
    heat: np.ndarray,
    alpha: float = 0.55,
    colour: tuple[int, int, int] = (255, 40, 40),
) -> np.ndarray:
    """Blend a heat map over images.

    Args:
        images: uint8 [N, H, W, 3].
        heat: float [N, h, w] in [0, 1] (resized to H x W by nearest neighbour), or bool.
        alpha: opacity where heat is 1.
    Returns:
        uint8 [N, H, W, 3].
    """
    _, h, w, _ = images.shape
    t = torch.as_tensor(np.asarray(heat, np.float32))[:, None]
    resized = torch.nn.functional.interpolate(t, size=(h, w), mode="nearest")[:, 0].numpy()
    a = (np.clip(resized, 0, 1) * alpha)[..., None]
    out = images.astype(np.float32) * (1 - a) + np.array(colour, np.float32) * a
    return out.round().astype(np.uint8)


def png_data_url(image: Image.Image) -> str:
    """A PIL image as a ``data:image/png;base64,...`` URL (for self-contained HTML)."""
    import base64
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
