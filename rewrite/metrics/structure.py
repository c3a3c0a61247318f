"""Did the copied object's *structure* arrive? A movement toward the object that a colour
wash, a blur or noise cannot fake, and that a faint or partly drawn object still shows.

Images are float arrays [N, H, W, 3] on a 0-1 scale; a box is ``(r0, r1, c0, c1)``.

The structure of a patch is its band-pass: a 3x3 box blur minus a 9x9 box blur, per colour
channel, taken over the object's pixels only (normalised convolution: what lies outside the
copied mask never enters, so the silhouette is not structure). It holds edges and parts a
few pixels across (a lens beside a bridge, a band's rim, a moustache under a nose), neither
single-pixel texture nor the patch's mean colour. How much of the object's structure a patch
``x`` holds is the regression coefficient of its band-pass on the object's, over the
object's interior (alpha, eroded by ``RIM`` pixels)::

    s(x) = <B(x), B(obj)>_w / <B(obj), B(obj)>_w          (1 = the object's structure)

and the score of an edit on one sample is the share of the way from the unedited patch to
the object::

    score = (s(after) - max(s(before), 0)) / (1 - max(s(before), 0))

Why a wash cannot pass: a uniform colour change has no band-pass, and blending toward any
flat colour scales ``s`` toward 0; a blur scales it toward 0 as well. Either way ``s`` ends
between ``s(before)`` and 0, at most ``max(s(before), 0)``: the score is <= 0. Noise that
does not correlate with the object's structure moves ``s`` by chance only (|score| well
below 0.1 at the noise levels of a smudge). The object pasted at full opacity scores 1, at
half opacity 0.5 (on a patch without the object's structure); an object drawn faintly or
partly scores the share it drew, where :func:`rewrite.metrics.transfer.object_transfer`
(which needs the patch as a whole to be closer to the object than a flat patch is) reads 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .transfer import box_patches

#: Box-blur radii (pixels) of the band-pass: a (2r+1)-square mean at each.
FINE, COARSE = 1, 4
#: The object's rim left out of the sums (pixels): its pixels blend with what lies around.
RIM = 1
#: A patch must lack at least this share of the object's structure to be judged.
ROOM = 0.5

_EPS = 1e-12


def _box_blur(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1)-square of ``x`` [h, w, ...], edges reflected."""
    if radius <= 0:
        return x.astype(np.float64)
    pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (x.ndim - 2)
    p = np.pad(x.astype(np.float64), pad, mode="reflect" if min(x.shape[:2]) > radius else "edge")
    c = np.cumsum(np.cumsum(p, 0), 1)
    c = np.pad(c, [(1, 0), (1, 0)] + [(0, 0)] * (x.ndim - 2))
    k = 2 * radius + 1
    h, w = x.shape[:2]
    total = c[k : k + h, k : k + w] - c[:h, k : k + w] - c[k : k + h, :w] + c[:h, :w]
    return total / (k * k)


def band_pass(x: np.ndarray, inside: np.ndarray | None = None) -> np.ndarray:
    """The structure of ``x`` [h, w, 3]: its :data:`FINE` minus its :data:`COARSE` box blur.

    With ``inside`` (bool [h, w]) the blurs are normalised convolutions over those pixels
    only (``blur(inside·x) / blur(inside)``): what lies outside the object never enters, so
    the object's silhouette is no structure, and a patch that is one colour inside scores
    none."""
    if inside is None:
        return _box_blur(x, FINE) - _box_blur(x, COARSE)
    m = inside.astype(np.float64)[..., None]
    xm = x.astype(np.float64) * m

    def blur(r):
        return _box_blur(xm, r) / np.maximum(_box_blur(m, r), _EPS)

    return (blur(FINE) - blur(COARSE)) * m


def interior(alpha: np.ndarray, rim: int = RIM) -> np.ndarray:
    """``alpha`` [h, w] (0-1) with every pixel within ``rim`` of the patch's border or of a
    pixel below half opacity set to 0 (a square erosion)."""
    inside = np.pad(alpha >= 0.5, rim, constant_values=False)
    h, w = alpha.shape
    keep = np.ones((h, w), bool)
    for dr in range(2 * rim + 1):
        for dc in range(2 * rim + 1):
            keep &= inside[dr : dr + h, dc : dc + w]
    return np.where(keep, alpha, 0.0).astype(np.float64)


def object_structure(
    patch: np.ndarray, target_bp: np.ndarray, weight: np.ndarray, inside: np.ndarray
) -> float:
    """``s(patch)``: the regression coefficient of ``patch``'s band-pass (over ``inside``,
    bool [h, w]) on ``target_bp`` [h, w, 3] under ``weight`` [h, w] (module docstring); nan
    if the target has none."""
    den = float((weight[..., None] * target_bp * target_bp).sum())
    if den <= _EPS:
        return float("nan")
    return float((weight[..., None] * band_pass(patch, inside) * target_bp).sum()) / den


def structure_transfer(
    before: np.ndarray,
    after: np.ndarray,
    obj: np.ndarray,
    obj_alpha: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int] | None],
) -> np.ndarray:
    """Per-sample share of the copied object's structure an edit drew into each box.

    Args:
        before, after: [N, H, W, 3] in 0-1; obj: the copied object [h, w, 3];
        obj_alpha: its mask [h, w] in 0-1; boxes: per sample ``(r0, r1, c0, c1)`` of size
            h x w inside the image, or None.
    Returns:
        float [N] in [-1, 1]: 1 = the object's structure, 0 = none gained (or only what a
        wash, blur or fade gives), negative = lost; nan for a None box, an object without
        structure in its interior, or a patch that already holds more than ``1 - ROOM`` of it
        (the share left to gain is too small to divide by).
    """
    assert before.shape == after.shape and before.ndim == 4 and before.shape[-1] == 3, (
        before.shape,
        after.shape,
    )
    assert obj.ndim == 3 and obj.shape[-1] == 3 and obj_alpha.shape == obj.shape[:2], (
        obj.shape,
        obj_alpha.shape,
    )
    assert len(boxes) == len(before), (len(boxes), len(before))
    h, w = obj.shape[:2]
    inside = obj_alpha >= 0.5
    weight = interior(obj_alpha)
    target = band_pass(obj, inside)
    out = np.full(len(before), np.nan)
    for i, patch_before, patch_after in box_patches(before, after, boxes, (h, w)):
        s_before = object_structure(patch_before, target, weight, inside)
        s_after = object_structure(patch_after, target, weight, inside)
        start = max(s_before, 0.0)
        if not np.isfinite(s_before) or start > 1.0 - ROOM:
            continue
        out[i] = float(np.clip((s_after - start) / (1.0 - start), -1.0, 1.0))
    return out
