"""Seamless (Poisson) pasting: the copied object placed on another face with that face's own
colours at the paste's border, the object's own gradients inside (Pérez et al., "Poisson Image
Editing", 2003).

An alpha paste of a rectangle carries the source face's skin and background with the object:
on another face it is a block of foreign colour, which a fit then learns to paint. Solving for
the pixels whose gradients inside the rectangle are the source's and whose values at its
border are the target's removes the block and keeps the object's structure.
"""

from __future__ import annotations

import torch

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
