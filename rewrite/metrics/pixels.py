"""Pixel-level measures of an edit on held-out samples (pure functions on arrays).

Images are float arrays [N, H, W, 3] on a 0-1 scale; masks are bool [N, H, W].

* change: mean absolute difference over the masked pixels;
* PSNR over the masked pixels (``inf`` when identical);
* efficacy: among samples whose mask is not empty, the fraction whose mean
  change inside the mask exceeds ``threshold``;
* colour shift: how much closer (in RGB distance) the masked region's mean
  colour moved toward a target colour (the copied object's mean colour).
"""

from __future__ import annotations

import numpy as np

#: A firing region counts as changed when its mean absolute change exceeds this (0-1 scale).
CHANGE_THRESHOLD = 0.05


def _check(before: np.ndarray, after: np.ndarray, mask: np.ndarray | None) -> None:
    assert before.shape == after.shape and before.ndim == 4, (before.shape, after.shape)
    if mask is not None:
        assert mask.shape == before.shape[:3], (mask.shape, before.shape)


def pixel_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-pixel mean absolute change over the colour channels: float [N, H, W]."""
    _check(before, after, None)
    return np.abs(after.astype(np.float64) - before.astype(np.float64)).mean(-1)


def mean_change(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute change over the pixels where ``mask`` is True (nan if none)."""
    _check(before, after, mask)
    if not mask.any():
        return float("nan")
    return float(pixel_change(before, after)[mask].mean())


def psnr(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB, peak 1) over the masked pixels; inf if unchanged."""
    _check(before, after, mask)
    if not mask.any():
        return float("nan")
    sq = ((after.astype(np.float64) - before.astype(np.float64)) ** 2).mean(-1)[mask].mean()
    return float("inf") if sq == 0 else float(10 * np.log10(1.0 / sq))


def efficacy(
    before: np.ndarray, after: np.ndarray, mask: np.ndarray, threshold: float = CHANGE_THRESHOLD
) -> float:
    """Fraction of samples with a non-empty mask whose mean change inside it exceeds
    ``threshold`` (nan when no sample has a mask)."""
    _check(before, after, mask)
    change = pixel_change(before, after)
    hits = [change[i][mask[i]].mean() > threshold for i in range(len(mask)) if mask[i].any()]
    return float(np.mean(hits)) if hits else float("nan")


def colour_shift(
    before: np.ndarray, after: np.ndarray, mask: np.ndarray, target: np.ndarray
) -> tuple[float, float]:
    """How the masked regions' mean colours moved toward ``target`` [3].

    Returns ``(mean distance decrease, fraction of regions that moved closer)`` over
    samples with a non-empty mask; positive means closer to the target.
    """
    _check(before, after, mask)
    gains = []
    for i in range(len(mask)):
        if mask[i].any():
            d0 = np.linalg.norm(before[i][mask[i]].mean(0) - target)
            d1 = np.linalg.norm(after[i][mask[i]].mean(0) - target)
            gains.append(d0 - d1)
    if not gains:
        return float("nan"), float("nan")
    return float(np.mean(gains)), float(np.mean(np.array(gains) > 0))
