"""Did an edit do what was asked? Scores that a colour wash or a smear cannot pass.

Images are float arrays [N, H, W, 3] on a 0-1 scale; masks are bool [N, H, W];
a box is ``(r0, r1, c0, c1)`` (rows ``r0:r1``, columns ``c0:c1``).

Recipe::

    from .transfer import (erase_removal, goal_reproduction, object_transfer,
                                          place_box, removed, transferred)

    # One sample: how close did the edit get to the requested result inside the pasted box?
    ratio = goal_reproduction(unedited, edited, goal, box)        # 0 exact, 1 no better

    # Held-out samples: does the region the rule fires on now look like the copied object?
    boxes = [place_box(centre, obj.shape[:2], before.shape[1:3]) if centre is not None
             else None for centre in centres]                     # one per sample
    scores = object_transfer(before, after, obj, obj_alpha, boxes)  # [N], 1 = became it
    rate = transferred(scores)                                     # fraction >= 0.1

    # Held-out samples: is the marked object gone (does it look like its surroundings)?
    scores = erase_removal(before, after, region)                  # [N], 1 = gone
    rate = removed(scores)                                         # fraction >= 0.2

Why a wash cannot pass.  Patches are compared to the target with a *structure*
distance: the weighted mean absolute difference after removing each patch's own
weighted mean colour, plus a smaller colour term (0.25 x the mean colour difference).
A change of the mean colour moves only the colour term; and a flat patch (any
uniform colour, which is what a wash or a heavy blur tends toward) is already as
close in structure as the target's own texture allows.  So ``object_transfer``
additionally requires the structure alone to beat both the
unedited patch and a flat patch: whatever a wash, a blur or added noise can reach
scores at most 0. ``goal_reproduction`` is the plain image-distance ratio on the
user's own example (a wash toward the goal's colours can lower it; read it beside
``object_transfer``).
Without that requirement a flat fill of the object's mean colour scores a transfer
of 0.2-0.5 on a textured object that differs in colour from the background.
When the target has no structure at all (uniform colour) or the unedited patch
already has the target's structure, the requirement is dropped (a colour change is
then the only possible progress).

Pixel change inside a region is ``rewrite.metrics.pixels.mean_change``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A sample counts as transferred when ``object_transfer`` reaches this (>=). A wash, a
#: blur or a smear scores at most 0 (the structure requirement), so any clear structural
#: progress toward the object counts; 0.1 = a tenth of the way to the object's layout.
TRANSFER_THRESHOLD = 0.1
#: A sample counts as erased when ``erase_removal`` reaches this (>=).
REMOVAL_THRESHOLD = 0.2
#: Weight of the mean-colour term next to the structure term.
COLOUR_WEIGHT = 0.25

_EPS = 1e-12

Box = tuple[int, int, int, int]


#: Patches are compared after averaging blocks of this many pixels: the object's layout
#: (dark lenses beside a light bridge, a dark chin under a light lip) counts, the fine
#: texture a small generator cannot reproduce exactly does not.
POOL = 4


def pool_patch(patch: np.ndarray, pool: int) -> np.ndarray:
    """Block means of ``patch`` [h, w, ...] over ``pool`` x ``pool`` pixels (edges cropped
    to whole blocks; a patch smaller than a block is kept whole): [h // pool, w // pool, ...]."""
    h, w = patch.shape[:2]
    ph, pw = max(1, min(pool, h)), max(1, min(pool, w))
    hh, ww = h // ph * ph, w // pw * pw
    x = patch[:hh, :ww].astype(np.float64)
    return x.reshape(hh // ph, ph, ww // pw, pw, *patch.shape[2:]).mean((1, 3))


def _structure_colour(
    patch: np.ndarray, target: np.ndarray, weight: np.ndarray
) -> tuple[float, float]:
    """(structure distance, colour distance) of ``patch`` to ``target`` [h, w, 3] under
    pixel ``weight`` [h, w] (non-negative, positive sum)."""
    w = weight.astype(np.float64) / weight.sum()
    p, t = patch.astype(np.float64), target.astype(np.float64)
    mp = (w[..., None] * p).sum((0, 1))
    mt = (w[..., None] * t).sum((0, 1))
    structure = float((w * np.abs((p - mp) - (t - mt)).mean(-1)).sum())
    colour = float(np.abs(mp - mt).mean())
    return structure, colour


def _structure_progress(s_before: float, s_after: float, s_flat: float) -> float | None:
    """Progress in structure distance alone (1 = reached the target, <= 0 = none), where a
    flat patch (distance ``s_flat``) also counts as no progress: anything a wash or blur
    reaches scores 0.  None when it cannot be judged (flat target, or ``before`` already
    has the target's structure)."""
    if s_flat <= _EPS or s_before <= _EPS:
        return None
    if s_after >= s_before:
        return 1.0 - s_after / s_before
    return max(0.0, 1.0 - s_after / min(s_before, s_flat))


def _flat_structure(target: np.ndarray, weight: np.ndarray) -> float:
    """Structure distance of any flat patch to ``target`` [h, w, 3]: its own texture."""
    flat = np.broadcast_to(target.mean((0, 1)), target.shape)
    return _structure_colour(flat, target, weight)[0]


def goal_reproduction(
    unedited: np.ndarray, edited: np.ndarray, goal: np.ndarray, box: np.ndarray
) -> float:
    """How far ``edited`` [H, W, 3] still is from the requested ``goal`` [H, W, 3], relative
    to the ``unedited`` [H, W, 3] image, over the pixels where ``box`` [H, W] is True.

    Returns ``mean|edited - goal| / mean|unedited - goal|`` over the box (0 = the goal
    exactly, 1 = no closer than doing nothing, > 1 = further). This plain ratio can be
    lowered by a colour wash toward the goal's colours; :func:`object_transfer` is the
    measure that a wash cannot pass.
    nan if the box is empty or the unedited image already equals the goal there.
    """
    assert unedited.ndim == 3 and unedited.shape[-1] == 3, unedited.shape
    assert edited.shape == unedited.shape and goal.shape == unedited.shape, (
        unedited.shape,
        edited.shape,
        goal.shape,
    )
    assert box.shape == unedited.shape[:2] and box.dtype == bool, (box.shape, box.dtype)
    if not box.any():
        return float("nan")
    u, e, g = (x.astype(np.float64)[box] for x in (unedited, edited, goal))  # [P, 3]
    denominator = np.abs(u - g).mean()
    if denominator <= _EPS:
        return float("nan")
    return float(np.abs(e - g).mean() / denominator)


def place_box(center_rc: Sequence[float], size_hw: Sequence[int], image_hw: Sequence[int]) -> Box:
    """A box ``(r0, r1, c0, c1)`` of size ``size_hw`` (h, w) centred on ``center_rc``
    (row, col), shifted (not shrunk) to lie inside an image of size ``image_hw`` (H, W);
    clipped to the image when larger than it."""
    assert len(center_rc) == 2 and len(size_hw) == 2 and len(image_hw) == 2
    out = []
    for centre, size, extent in zip(center_rc, size_hw, image_hw, strict=True):
        size, extent = int(size), int(extent)
        assert size > 0 and extent > 0, (size, extent)
        if size >= extent:
            out += [0, extent]
            continue
        start = round(float(centre)) - size // 2
        start = min(max(start, 0), extent - size)
        out += [start, start + size]
    return out[0], out[1], out[2], out[3]


def box_patches(
    before: np.ndarray, after: np.ndarray, boxes: Sequence[Box | None], size_hw: tuple[int, int]
):
    """``(i, before patch, after patch)`` for each sample ``i`` whose box is not None; every
    box must be ``size_hw`` and lie inside the images [N, H, W, 3]."""
    h, w = size_hw
    for i, box in enumerate(boxes):
        if box is None:
            continue
        r0, r1, c0, c1 = (int(v) for v in box)
        assert (r1 - r0, c1 - c0) == (h, w), (box, size_hw)
        assert r0 >= 0 and r1 <= before.shape[1] and c0 >= 0 and c1 <= before.shape[2], box
        yield i, before[i, r0:r1, c0:c1], after[i, r0:r1, c0:c1]


def object_transfer(
    before: np.ndarray,
    after: np.ndarray,
    obj: np.ndarray,
    obj_alpha: np.ndarray,
    boxes: Sequence[Box | None],
    pool: int = POOL,
) -> np.ndarray:
    """Per-sample transfer of the copied object ``obj`` [h, w, 3] (mask ``obj_alpha``
    [h, w], weights in 0-1) into the box ``boxes[i] = (r0, r1, c0, c1)`` (size h x w, or
    None) of ``before``/``after`` [N, H, W, 3].

    Returns float [N]: ``1 - d_after / d_before`` with d the alpha-weighted structure
    distance plus 0.25 x colour distance to the object, capped by the same ratio for the
    structure alone, which must beat a flat patch too (module docstring).  1 = became the
    object, 0 = no closer (or only as close as a wash gets), negative = further; nan for a
    None box or a patch that already equals the object.
    """
    assert before.shape == after.shape and before.ndim == 4 and before.shape[-1] == 3, (
        before.shape,
        after.shape,
    )
    assert obj.ndim == 3 and obj.shape[-1] == 3, obj.shape
    assert obj_alpha.shape == obj.shape[:2], (obj_alpha.shape, obj.shape)
    assert len(boxes) == len(before), (len(boxes), len(before))
    assert obj_alpha.min() >= 0 and obj_alpha.sum() > 0, "obj_alpha must be non-negative, not all 0"
    h, w = obj.shape[:2]
    weight = pool_patch(obj_alpha, pool)

    def pooled(patch):  # alpha-weighted block means: pixels outside the mask never count
        return pool_patch(patch * obj_alpha[..., None], pool) / np.maximum(weight, _EPS)[..., None]

    target = pooled(obj)
    s_flat = _flat_structure(target, weight)
    out = np.full(len(before), np.nan)
    for i, patch_before, patch_after in box_patches(before, after, boxes, (h, w)):
        s_before, c_before = _structure_colour(pooled(patch_before), target, weight)
        s_after, c_after = _structure_colour(pooled(patch_after), target, weight)
        d_before = s_before + COLOUR_WEIGHT * c_before
        if d_before <= _EPS:
            continue
        score = 1.0 - (s_after + COLOUR_WEIGHT * c_after) / d_before
        progress = _structure_progress(s_before, s_after, s_flat)
        out[i] = score if progress is None else min(score, progress)
    return out


def _fraction_reaching(scores: np.ndarray, threshold: float) -> float:
    """Fraction of the non-nan ``scores`` that are ``>= threshold`` (nan if none is)."""
    scores = np.asarray(scores, dtype=np.float64)
    valid = scores[~np.isnan(scores)]
    return float((valid >= threshold).mean()) if valid.size else float("nan")


def transferred(scores: np.ndarray, threshold: float = TRANSFER_THRESHOLD) -> float:
    """Fraction of the ``object_transfer`` scores [N] that reach ``threshold`` (>=).

    A nan score (nothing could be measured: no box, or no structure to move toward) is
    dropped from the rate, neither a success nor a failure; nan if all are nan or there
    are none. This is the efficacy that :mod:`rewrite.metrics.evaluate` reports."""
    return _fraction_reaching(scores, threshold)


def _dilate(mask: np.ndarray, ring: int) -> np.ndarray:
    """``mask`` [N, H, W] dilated by a (2 ring + 1)-square, clipped at the border."""
    n, hh, ww = mask.shape
    padded = np.pad(mask, ((0, 0), (ring, ring), (ring, ring)))
    rows = np.zeros((n, hh, ww + 2 * ring), bool)
    for dr in range(2 * ring + 1):
        rows |= padded[:, dr : dr + hh]
    out = np.zeros((n, hh, ww), bool)
    for dc in range(2 * ring + 1):
        out |= rows[:, :, dc : dc + ww]
    return out


def erase_removal(
    before: np.ndarray, after: np.ndarray, region: np.ndarray, ring: int = 3
) -> np.ndarray:
    """Per-sample removal of the object marked by ``region`` [N, H, W] from ``before`` to
    ``after`` [N, H, W, 3].

    The surroundings are the pixels within ``ring`` pixels (square neighbourhood) of the
    region but outside it; the contrast of an image is the mean absolute difference
    between the region's pixels and the surroundings' mean colour in that same image.
    Returns float [N]: ``1 - contrast_after / contrast_before`` (1 = the region now looks
    like its surroundings, 0 = unchanged, negative = stands out more); nan for an empty
    region, empty surroundings or zero contrast before.
    """
    assert before.shape == after.shape and before.ndim == 4 and before.shape[-1] == 3, (
        before.shape,
        after.shape,
    )
    assert region.shape == before.shape[:3] and region.dtype == bool, (region.shape, region.dtype)
    assert ring >= 1, ring
    around = _dilate(region, ring) & ~region
    out = np.full(len(before), np.nan)
    for i in range(len(before)):
        if not region[i].any() or not around[i].any():
            continue
        contrast = []
        for image in (before[i], after[i]):
            image = image.astype(np.float64)
            surround = image[around[i]].mean(0)
            contrast.append(np.abs(image[region[i]] - surround).mean())
        if contrast[0] > _EPS:
            out[i] = 1.0 - contrast[1] / contrast[0]
    return out


def removed(scores: np.ndarray, threshold: float = REMOVAL_THRESHOLD) -> float:
    """Fraction of the ``erase_removal`` scores [N] that reach ``threshold`` (>=).

    A nan score (nothing could be measured: empty region or surroundings, or no contrast
    before) is dropped from the rate, neither a success nor a failure; nan if all are nan
    or there are none. This is the efficacy that :mod:`rewrite.metrics.evaluate` reports."""
    return _fraction_reaching(scores, threshold)
