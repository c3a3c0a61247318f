"""Masks drawn on images, and their resampling to a layer's grid.

A mask is given in image pixels as one of
``{"rect": [x0, y0, x1, y1]}`` (x1, y1 exclusive), ``{"polygon": [[x, y], ...]}``
or ``{"png": "data:image/png;base64,..."}`` (the PNG's alpha channel, or its grey
level when it has none, at the image's resolution). It becomes a float array
[H, W] in [0, 1].

On a layer grid of size r, a cell's *coverage* is the mean of the mask over the
cell's pixels (area resampling). Key cells count when coverage > 0.5, value
cells when coverage > 0.

Some layers' grids carry a margin around the image (StyleGAN3): the image lies on
the grid's *window*, ``(res, margin, cells)``: cells ``margin .. margin + cells - 1``
of each axis (see :class:`~rewrite.models.base.LayerInfo`). Masks are resampled onto
the window's cells and are zero in the margin; a grid's cells map back to image
pixels through the window (:func:`window_cell_pixels`). Without a margin the window is
the whole grid and this is plain resampling.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..utils.errors import EditError

#: Cell-coverage thresholds for keys and values (see the module docstring).
KEY_COVERAGE = 0.5
VALUE_COVERAGE = 0.0


#: Largest PNG mask accepted (4096 x 4096), checked before decoding.
MAX_MASK_PIXELS = 4096 * 4096
#: Most points a polygon mask may have.
MAX_POLYGON_POINTS = 4096


def _is_number(v: Any) -> bool:
    """A finite int or float, and not a bool (JSON ``true`` is not a coordinate)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _polygon_area(points: list) -> float:
    """Area enclosed by ``points`` [[x, y], ...] (shoelace formula, absolute value)."""
    twice = sum(
        x0 * y1 - x1 * y0
        for (x0, y0), (x1, y1) in zip(points, [*points[1:], *points[:1]], strict=True)
    )
    return abs(twice) / 2


def mask_problems(mask: Any, size: int) -> list[str]:
    """Everything wrong with a mask description for ``size``x``size`` images (empty if fine)."""
    if not isinstance(mask, dict) or len(mask) != 1:
        return ["a mask must be an object with exactly one of 'rect', 'polygon', 'png'"]
    ((kind, data),) = mask.items()
    if kind == "rect":
        if not isinstance(data, list) or len(data) != 4 or not all(map(_is_number, data)):
            return ["'rect' must be [x0, y0, x1, y1] of finite numbers"]
        x0, y0, x1, y1 = data
        if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
            return [f"rect {data} must satisfy 0 <= x0 < x1 <= {size} and 0 <= y0 < y1 <= {size}"]
        return []
    if kind == "polygon":
        if (
            not isinstance(data, list)
            or not 3 <= len(data) <= MAX_POLYGON_POINTS
            or not all(
                isinstance(p, list) and len(p) == 2 and all(map(_is_number, p)) for p in data
            )
        ):
            return [
                f"'polygon' must be a list of 3 to {MAX_POLYGON_POINTS} [x, y] points of "
                "finite numbers"
            ]
        if not all(-size <= v <= 2 * size for p in data for v in p):
            return [f"polygon points must lie within [-{size}, {2 * size}]"]
        if _polygon_area(data) < 0.5:
            return ["the polygon encloses no area (its points are on one line or the same)"]
        return []
    if kind == "png":
        try:
            img = decode_png(data)
        except EditError as e:
            return [str(e)]
        if img.size != (size, size):
            return [
                f"PNG mask is {img.size[0]}x{img.size[1]} but the model's images are "
                f"{size}x{size}; draw the mask at the image resolution"
            ]
        return []
    return [f"unknown mask type {kind!r}; use 'rect', 'polygon' or 'png'"]


def decode_png(data: str) -> Image.Image:
    """Decode a ``data:image/png;base64,...`` URL (or bare base64) into a PIL image."""
    if not isinstance(data, str):
        raise EditError("a PNG mask must be a data URL string")
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        img = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        # Check the header's size before decoding: a small file can declare a huge image
        # (a decompression bomb); masks are drawn at the image resolution.
        if img.width * img.height > MAX_MASK_PIXELS:
            raise EditError(
                f"the PNG mask declares {img.width}x{img.height} pixels, more than "
                f"any model's images; draw the mask at the image resolution"
            )
        img.load()
    except Image.DecompressionBombError as e:
        raise EditError(
            f"the PNG mask declares more pixels than can be decoded safely ({e}); "
            "draw the mask at the image resolution"
        ) from None
    except (binascii.Error, ValueError, OSError) as e:
        raise EditError(f"cannot decode the PNG mask ({e})") from None
    return img


def encode_png(mask: np.ndarray) -> str:
    """A float mask [H, W] in [0, 1] as a ``data:image/png;base64`` URL (grey level)."""
    img = Image.fromarray((np.clip(mask, 0, 1) * 255).round().astype(np.uint8), "L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def render_mask(mask: dict | None, size: int) -> np.ndarray:
    """The mask as float32 [size, size] in [0, 1]; call :func:`mask_problems` first."""
    if mask is None:
        raise EditError("this selection has no mask")
    ((kind, data),) = mask.items()
    if kind == "rect":
        out = np.zeros((size, size), np.float32)
        x0, y0, x1, y1 = (round(v) for v in data)
        out[y0:y1, x0:x1] = 1
        return out
    if kind == "polygon":
        img = Image.new("L", (size, size), 0)
        ImageDraw.Draw(img).polygon([tuple(map(float, p)) for p in data], fill=255)
        return np.asarray(img, np.float32) / 255
    img = decode_png(data)
    if "A" in img.getbands():
        arr = np.asarray(img.getchannel("A"), np.float32)
    else:
        arr = np.asarray(img.convert("L"), np.float32)
    return arr / 255


def coverage(mask: np.ndarray | torch.Tensor, res: int) -> torch.Tensor:
    """Fraction of each cell of a ``res``x``res`` grid covered by ``mask`` [H, W]:
    float [res, res]."""
    m = torch.as_tensor(np.asarray(mask, np.float32))[None, None]
    if m.shape[-1] == res:
        return m[0, 0]
    if m.shape[-1] > res:
        return torch.nn.functional.interpolate(m, size=(res, res), mode="area")[0, 0]
    return torch.nn.functional.interpolate(m, size=(res, res), mode="nearest")[0, 0]


def bounding_box(cells: torch.Tensor) -> tuple[int, int, int, int]:
    """``(r0, r1, c0, c1)`` (exclusive ends) of the True cells of a bool grid [h, w]."""
    rows = torch.nonzero(cells.any(1))[:, 0]
    cols = torch.nonzero(cells.any(0))[:, 0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


#: Where the image lies on a layer grid: ``(res, margin, cells)``, the image spanning
#: cells ``margin .. margin + cells - 1`` of each axis of the ``res``x``res`` grid.
Window = tuple[int, int, int]


def layer_window(info, part: str) -> Window:
    """The image window of ``info``'s (a :class:`LayerInfo`) ``"key"`` or ``"value"`` grid."""
    if part == "key":
        res, margin, cells = info.key_resolution, info.key_margin, info.key_cells
    elif part == "value":
        res, margin, cells = info.value_resolution, info.value_margin, info.value_cells
    else:
        raise ValueError(f"part must be 'key' or 'value', not {part!r}")
    return res, margin, cells or res


def window_coverage(mask, window: Window) -> torch.Tensor:
    """:func:`coverage` of ``mask`` [..., H, W] (image pixels) on the window's cells, placed
    on the whole grid with zero in the margin: float [..., res, res]."""
    res, margin, cells = window
    if np.ndim(mask) == 2 and margin == 0 and cells == res:
        return coverage(mask, res)
    m = torch.as_tensor(np.asarray(mask, np.float32))
    lead = m.shape[:-2]
    flat = m.reshape(-1, *m.shape[-2:])
    cov = (
        torch.stack([coverage(x, cells) for x in flat])
        if len(flat)
        else torch.zeros(0, cells, cells)
    )
    cov = cov.reshape(*lead, cells, cells)
    if margin == 0 and cells == res:
        return cov
    out = torch.zeros(*lead, res, res)
    out[..., margin : margin + cells, margin : margin + cells] = cov
    return out


def crop_window(grid: torch.Tensor, window: Window) -> torch.Tensor:
    """The image part of ``grid`` [..., res, res]: [..., cells, cells]."""
    _, margin, cells = window
    return grid[..., margin : margin + cells, margin : margin + cells]


def regrid(grid: torch.Tensor, src: Window, dst: Window) -> torch.Tensor:
    """Coverage of one grid's mask ``grid`` [..., res, res] (on window ``src``) on another
    grid's window ``dst``: float [..., res', res'] (what lies in ``src``'s margin is dropped)."""
    return window_coverage(crop_window(grid.float(), src).cpu(), dst)


def window_cell_pixels(window: Window, size: int) -> int:
    """Image pixels per cell of the window (``size`` must be a multiple of its cells)."""
    res, _, cells = window
    if size % cells:
        grid = f"{cells}-cell image window" if cells != res else "layer grid"
        raise EditError(f"image size {size} is not a multiple of the {grid} {cells}")
    return size // cells
