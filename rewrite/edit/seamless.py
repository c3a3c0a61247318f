"""Pasting the copied object without the source face around it.

An alpha paste of a rectangle carries the source face's skin and background with the object:
on another face it is a block of foreign colour, which a fit then learns to paint. Two ways to
leave it out:

* **seamless** (Poisson) pasting (Pérez et al., "Poisson Image Editing", 2003): the pixels
  whose gradients inside the rectangle are the source's and whose values at its border are
  the target's; keeps the object's structure, not its colour against the target's;
* **an object matte**: the copied pixels that differ from what the faces the rule holds on
  usually show at that place (their median) are the object; only those are pasted, with
  their own colours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_STEPS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def poisson_paste(images: torch.Tensor, src: torch.Tensor, top: int, left: int) -> torch.Tensor:
    """The pixels of the rectangle ``src`` [C, h, w] covers at (``top``, ``left``) of each of
    ``images`` [N, C, R, R] (R ≥ top + h, left + w), blended seamlessly: [N, C, h, w].

    They minimise, over the rectangle's 4-neighbour pairs, the squared difference between
    their gradients and ``src``'s, and across its border the squared difference to the
    image's pixels just outside (Dirichlet; a side on the image's edge is free). One sparse
    symmetric system shared by all images, solved densely in float64 (h·w unknowns).
    ValueError when the rectangle leaves the image or covers all of it (no border to hold).
    """
    n_img, c, size, size_w = images.shape
    _, h, w = src.shape
    if top < 0 or left < 0 or top + h > size or left + w > size_w:
        raise ValueError(f"the {h}x{w} paste at ({top}, {left}) leaves the {size}x{size_w} image")
    if h == size and w == size_w:
        raise ValueError("a paste covering the whole image has no border to blend with")
    n = h * w
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    a = torch.zeros(n, n, dtype=torch.float64)
    rhs = torch.zeros(n_img, c, n, dtype=torch.float64)
    s = src.double().reshape(c, n)
    img = images.double()
    rows = torch.arange(n)
    for dy, dx in _STEPS:
        qy, qx = ys + dy, xs + dx
        in_image = (top + qy >= 0) & (top + qy < size) & (left + qx >= 0) & (left + qx < size_w)
        inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        a[rows[in_image], rows[in_image]] += 1
        pairs = rows[inside]
        q = (qy[inside] * w + qx[inside]).long()
        a[pairs, q] -= 1
        rhs[:, :, pairs] += (s[:, pairs] - s[:, q])[None]
        border = rows[in_image & ~inside]
        rhs[:, :, border] += img[:, :, top + qy[border], left + qx[border]]
    chol = torch.linalg.cholesky(a)
    out = torch.cholesky_solve(rhs.reshape(n_img * c, n).T, chol).T
    return out.reshape(n_img, c, h, w).to(images.dtype)


def object_matte(src: torch.Tensor, typical: torch.Tensor, threshold: float) -> torch.Tensor:
    """How much each copied pixel is the object, [h, w] in 0-1: ``src`` [C, h, w] against
    ``typical`` [C, h, w] (what the faces usually show there): the mean absolute difference
    over channels, averaged over each pixel's 3x3 neighbourhood, ramped from 0 at
    ``threshold``/2 to 1 at ``threshold`` (pixel values in -1..1). ValueError for a
    threshold at or below 0."""
    if not threshold > 0:
        raise ValueError(f"the matte's threshold must be above 0, got {threshold!r}")
    d = (src - typical).abs().mean(0)[None, None]
    d = F.avg_pool2d(d, 3, 1, 1, count_include_pad=False)[0, 0]
    return ((d - threshold / 2) / (threshold / 2)).clamp(0, 1)


def feather_ramp(h: int, w: int, top: int, left: int, size: int, width: int) -> torch.Tensor:
    """How much of the pasted pixels an ``h`` x ``w`` rectangle at (``top``, ``left``) of a
    ``size`` x ``size`` image keeps near its border, [h, w] in (0, 1]: ``d / (width + 1)`` at
    ``d`` pixels in from the border (1 on the border row), 1 from ``width + 1`` in; a side on
    the image's edge has no border there (nothing outside to blend with). ``width`` 0: all
    ones."""
    ys, xs = torch.arange(h)[:, None].float(), torch.arange(w)[None, :].float()
    big = float(h + w)
    d = torch.full((h, w), big)
    if top > 0:
        d = torch.minimum(d, ys + 1)
    if top + h < size:
        d = torch.minimum(d, h - ys)
    if left > 0:
        d = torch.minimum(d, xs + 1)
    if left + w < size:
        d = torch.minimum(d, w - xs)
    return (d / (width + 1)).clamp(max=1.0)


def border_offset(src: torch.Tensor, image: torch.Tensor, top: int, left: int) -> float:
    """How far a paste's colour is from its surroundings: the mean over channels of the
    absolute mean difference between ``src``'s [C, h, w] border pixels and the pixels of
    ``image`` [C, R, R] just outside the rectangle it covers at (``top``, ``left``), each
    border pixel paired with its outside neighbour (sides on the image's edge have none).
    A Poisson blend shifts the whole paste by about this much (pixels in -1..1): large when
    the object itself runs into the border (a beard filling its box), small when the source
    face's skin surrounds it. NaN when the rectangle covers the whole image."""
    _, h, w = src.shape
    size_h, size_w = image.shape[-2:]
    pairs = []
    if top > 0:
        pairs.append(src[:, 0, :] - image[:, top - 1, left : left + w])
    if top + h < size_h:
        pairs.append(src[:, h - 1, :] - image[:, top + h, left : left + w])
    if left > 0:
        pairs.append(src[:, :, 0] - image[:, top : top + h, left - 1])
    if left + w < size_w:
        pairs.append(src[:, :, w - 1] - image[:, top : top + h, left + w])
    if not pairs:
        return float("nan")
    return float(torch.cat(pairs, dim=1).mean(1).abs().mean())
