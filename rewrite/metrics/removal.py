"""Is the erased object *cleanly* gone? The firing region now looks like the same region of a
face without the object: a removal measure that a flat fill, a grey blotch or a blur cannot
satisfy (the erase counterpart of :mod:`rewrite.metrics.structure`).

Images are float arrays [N, H, W, 3] on a 0-1 scale; regions are bool [N, H, W]. The *bank*
[M, H, W, 3] holds unedited images without the object; :mod:`rewrite.metrics.evaluate` takes
the held-out samples where the rule never fires and responds less than on half of all
(:func:`reference_bank`). Faces in the face model are roughly aligned, so the same pixels of
another face show what is normally there.

:func:`rewrite.metrics.transfer.erase_removal` asks whether the region now looks like its
*surroundings*; a grey or skin-coloured blotch over the object does that as well as clean
skin or hair does, and better than hair drawn where a hat was (blind raters, FRONTIER §30).

The representation of image ``x`` in region ``R`` (``ring``: the pixels within :data:`RING`
of ``R`` outside it; ``outside``: every pixel outside ``R``)::

    f(x) = (blur_R(x) - mean(x[ring])) / std(x[outside])        (a vector over R x RGB)

``blur_R`` is a (2 :data:`BLUR` + 1)-square box mean over the region's own pixels (what lies
outside never enters), so a pixel of misalignment matters less; subtracting the ring's colour
removes skin tone and lighting; dividing by the contrast of the rest of the image makes a
dark, flat-lit face comparable with a bright one (``f`` is unchanged by ``x -> g x + c``).
Two regions are compared by::

    sim(a, b) = 2 <a, b> / (|a|^2 + |b|^2)             (in [-1, 1]; 1 iff a = b)

which, unlike a distance, gives nothing to a flat patch: a fill of the ring's own colour has
``f = 0`` and ``sim = 0`` with every face. (The first design, a nearest-neighbour L1
*distance* on the same ring-relative pixels, fails: a flat fill of the ring's colour is
nearer to most real regions than another real face is, since two faces' eyes or hair strands
never line up, and on the face model's faces with pasted glasses or a cap it scored 0.8-0.9
where the face without the object scored 0.3-0.4.) How object-free ``x`` looks is its best
match in the bank, ``s(x) = max_j sim(f(x), f(bank_j))``; what a face without the object
reaches is ``s_typ``, the median over bank members of each one's best match among the
others (per region). The score of a sample::

    score = (s(after) - s(before)) / (s_typ - s(before))         clipped to [-1, 1]

1 = the region now matches some object-free face as well as those match each other, 0 = no
better than before, negative = worse. nan where ``s_typ - s(before) <`` :data:`ROOM` (the
region already matched object-free faces that well: nothing to judge), for an empty region
or ring, or a bank of fewer than two.

What cannot pass: a fill of the ring's colour has ``s = 0`` and scores
``-s(before) / (s_typ - s(before)) <= 0`` whenever the object's region matched some face at
all (``s(before) >= 0``, as real regions do); a fill of another colour is a constant vector,
which matches a real region only as far as that region is a flat offset from its ring; a
blur keeps the region's mean colour and loses its layout; noise adds to ``|f|`` and, on
average, nothing to ``<a, b>``. The constants were chosen on pasted objects, before any real
edit was scored (``tests/metrics/test_removal.py``; means over the judged samples)::

    after                    synthetic faces   face model,      face model,
                             and glasses       glasses of #59   cap of #43
    the face without it       0.95              0.87             0.73
    half of the way           0.46              0.49             0.30
    ring-colour fill         -0.95             -0.93            -0.99
    grey fill                -0.45             -0.03             0.03
    heavy blur (r = 8)        0.20              0.13             0.35
    half object, half grey   -0.10             -0.02            -0.08
    ring fill and noise      -0.91             -0.89            -0.98

On the tuning erases (``benchmarks/experiments/removal_check.py``, samples 2000-2255) it
ranks the settings as two blind raters did on the glasses (the default's cleaner eyes above
drawn goals' smudges) and on the ``main.3`` hats (drawn goals above the default, which left
them), and cannot separate them on the ``main.6`` hats (the raters preferred the drawn
goals; the difference is within the noise, and its sign depends on the bank).

What it cannot see:

* an object the bank itself holds: one face with glasses in the bank makes glasses look
  object-free (hence :func:`reference_bank`, and ``nan`` for such regions);
* a smooth smear where object-free faces are smooth too: a brown blotch over a cap can match
  some face's dark, smooth hair as well as drawn hair does (seen on the ``main.6`` hats);
* a small object in a large region: the firing regions of real rules are often a quarter to
  three quarters of the image, and the object a small part of them; such a region may match
  the bank well with the object still there (``nan``). On the tuning erases it judges a
  third of the firing samples or fewer (4 of 25 on the ``main.3`` hats), so read its mean
  beside the count of judged samples.
"""

from __future__ import annotations

import numpy as np

from .transfer import _dilate

#: Box-blur radius (pixels) applied before comparing regions: a (2r+1)-square mean.
BLUR = 1
#: Width (pixels) of the ring around the region whose mean colour is subtracted.
RING = 3
#: The object's region must match the bank at least this much worse than a typical
#: object-free face does (in ``sim`` units) to be judged.
ROOM = 0.1
#: ``s_typ`` is the median over at most this many bank members (evenly spaced) of each
#: one's best match among all the others.
TYPICAL_OF = 64
#: Floor of the contrast that features are divided by (an all-flat image).
MIN_SCALE = 1e-3

_EPS = 1e-12


def _inside_blur(images: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The :data:`BLUR` box mean of ``images`` [K, H, W, 3] over the pixels of ``region``
    [H, W] only (``blur(region x) / blur(region)``), at the region's P pixels: [K, P, 3].
    What lies outside the region never enters, so a region of one colour stays that colour."""
    r, (h, w) = BLUR, images.shape[1:3]
    m = region.astype(np.float64)
    pad = ((r, r), (r, r))
    pm = np.pad(m, pad)
    px = np.pad(images * m[None, ..., None], ((0, 0), *pad, (0, 0)))
    total = np.zeros(images.shape, np.float64)
    count = np.zeros((h, w), np.float64)
    for dr in range(2 * r + 1):
        for dc in range(2 * r + 1):
            total += px[:, dr : dr + h, dc : dc + w]
            count += pm[dr : dr + h, dc : dc + w]
    return total[:, region] / count[region][None, :, None]


def region_features(images: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``f(x)`` of the module docstring for each image: float [K, P * 3].

    Args:
        images: [K, H, W, 3] in 0-1.
        region: bool [H, W] with P True pixels and a non-empty ring around it.
    """
    assert images.ndim == 4 and images.shape[-1] == 3, images.shape
    assert region.shape == images.shape[1:3] and region.dtype == bool, region.shape
    images = images.astype(np.float64)
    ring = _dilate(region[None], RING)[0] & ~region
    centre = images[:, ring].mean(1)  # [K, 3]
    scale = images[:, ~region].std(1).mean(1)  # [K]
    f = (_inside_blur(images, region) - centre[:, None]) / np.maximum(scale, MIN_SCALE)[
        :, None, None
    ]
    return f.reshape(len(images), -1)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sim`` of every row of ``a`` [K, D] with every row of ``b`` [M, D]: [K, M] in
    [-1, 1], ``2 <a, b> / (|a|^2 + |b|^2)`` (0 where both are 0)."""
    na = np.einsum("kd,kd->k", a, a)[:, None]
    nb = np.einsum("md,md->m", b, b)[None]
    # einsum, not ``a @ b.T``: a BLAS call costs a hundred times more on a busy machine for
    # the few rows of a sample.
    return 2 * np.einsum("kd,md->km", a, b) / np.maximum(na + nb, _EPS)


def bank_reference(bank: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, float]:
    """The bank's features in ``region`` [H, W] and ``s_typ`` there: ``(f [M, D], s_typ)``,
    from ``bank`` [M, H, W, 3] (M >= 2); ``s_typ`` is the median over at most
    :data:`TYPICAL_OF` members (evenly spaced) of each one's best ``sim`` among the others."""
    assert len(bank) >= 2, len(bank)
    fb = region_features(bank, region)
    asked = np.unique(np.linspace(0, len(fb) - 1, min(len(fb), TYPICAL_OF)).round().astype(int))
    among = similarity(fb[asked], fb)  # [Q, M]
    among[np.arange(len(asked)), asked] = -np.inf  # not itself
    return fb, float(np.median(among.max(1)))


def reference_bank(fire: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Which held-out samples serve as faces without the object: bool [N], those where the
    rule never fires (``fire`` [N, H, W] all False) *and* its peak response ``peak`` [N] is
    below the median over all N samples.

    Silence alone is not enough: the firing threshold (the 99th percentile of all cell
    responses) leaves many faces with the object silent (on the tuning hat erases, about 17
    of the first 64 silent samples above the median response wear a hat or a band, against
    about 7 of the first 64 below it), and one such face in the bank makes the object look
    object-free (its region matches it). This rule was added after the first scores of
    real erases, against every silent sample as the bank (``removal_check.py
    --silent-bank`` gives those), on the faces seen in that bank."""
    assert fire.ndim == 3 and peak.shape == (len(fire),), (fire.shape, peak.shape)
    return ~fire.any((1, 2)) & (peak < np.median(peak))


def clean_removal(
    before: np.ndarray,
    after: np.ndarray,
    region: np.ndarray,
    bank: np.ndarray,
    room: float = ROOM,
) -> np.ndarray:
    """Per-sample clean removal of the object marked by ``region`` (module docstring).

    Args:
        before, after: [N, H, W, 3] in 0-1, without and with the edit.
        region: bool [N, H, W], where the object is (the rule fires); samples with an
            empty region are not judged.
        bank: [M, H, W, 3] in 0-1, images without the object (never the samples judged).
        room: how much worse than a typical object-free face the region must match before
            the edit to be judged (:data:`ROOM`).
    Returns:
        float [N] in [-1, 1]: 1 = the region now matches some object-free image as well as
        those match each other, 0 = no better than before (what a flat fill of the
        surroundings' colour scores at best), negative = worse; nan for an empty region or
        ring, a region that already looked object-free, or a bank of fewer than 2.
    """
    assert before.shape == after.shape and before.ndim == 4 and before.shape[-1] == 3, (
        before.shape,
        after.shape,
    )
    assert region.shape == before.shape[:3] and region.dtype == bool, (region.shape, region.dtype)
    assert bank.ndim == 4 and bank.shape[1:] == before.shape[1:], (bank.shape, before.shape)
    out = np.full(len(before), np.nan)
    if len(bank) < 2:
        return out
    ring = _dilate(region, RING) & ~region
    per_region: dict[bytes, tuple[np.ndarray, float]] = {}  # the bank's f and s_typ
    for i in range(len(before)):
        if not region[i].any() or not ring[i].any():
            continue
        key = np.packbits(region[i]).tobytes()
        if key not in per_region:
            per_region[key] = bank_reference(bank, region[i])
        fb, typical = per_region[key]
        fx = region_features(np.stack([before[i], after[i]]), region[i])  # [2, D]
        s_before, s_after = similarity(fx, fb).max(1)
        gap = typical - s_before
        if gap < room:
            continue
        out[i] = float(np.clip((s_after - s_before) / gap, -1.0, 1.0))
    return out
