"""How much of a fitted change an edit keeps, chosen by the silent change it makes.

A change fitted to reproduce a few dozen examples fully can be kept at one fixed share
(``gated``'s ``scale``), but edits differ: at the same share one tuning edit changes the
faces it should leave alone four times as much as another (``benchmarks/FRONTIER.md``). Here
the share is chosen per edit instead: the largest share whose **silent change** on a fixed
set of calibration samples stays within a budget. The silent change is measured as the
evaluation measures it (:mod:`rewrite.metrics.evaluate`): the rule's response on the
calibration samples (``|D k|``), the samples none of whose cells pass its 99th percentile
(grown by one cell), and their mean |Δpixel| (0-1) over the whole image.

The calibration samples (:data:`CALIBRATION`) are disjoint from the held-out judging samples
(3000-3255), the tuning samples (2000-2255), the methods' pool and the visible-collateral
samples; only the generator's tail after the edited layer is rendered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..metrics.firing import firing_mask, quantile_threshold
from .masks import crop_window, layer_window

if TYPE_CHECKING:
    from ..models.base import Generator, Split

#: The samples a change's share is calibrated on.
CALIBRATION = range(840_000, 840_256)
#: Bisection steps on the share (the share is found to ``max_share / 2**BISECT``).
BISECT = 6


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The chosen share and what it was chosen by.

    Attributes:
        share: the share of the change kept (0 to ``max_share``).
        silent: the silent change at ``share``, mean |Δpixel| (0-1).
        budget: the budget it was chosen against.
        silent_samples: how many calibration samples the rule is silent on.
    """

    share: float
    silent: float
    budget: float
    silent_samples: int


@torch.no_grad()
def silent_splits(
    G: Generator, layer: str, D: torch.Tensor, samples=CALIBRATION, batch: int = 64
) -> list[Split]:
    """The generator split at ``layer`` for the samples of ``samples`` on which the rule
    (directions ``D`` [r, C_in]) is silent, as in the evaluation: no key cell's ``|D k|`` (or
    ``d·k`` at rank 1) above the 99th percentile over all cells of all ``samples``, grown by
    one cell. Returns the splits in batches of at most ``batch`` samples (empty if the rule
    fires on every sample)."""
    samples = list(samples)
    window = layer_window(G.layer(layer), "key")
    d = D.to(torch.float32)
    responses = []
    for s in range(0, len(samples), batch):
        keys = crop_window(G.split(G.latents(samples[s : s + batch]), layer).keys, window)
        proj = torch.einsum("rc,bchw->brhw", d.to(keys), keys)
        responses.append((proj[:, 0] if d.shape[0] == 1 else proj.norm(dim=1)).cpu())
    response = torch.cat(responses)
    fire = firing_mask(response, quantile_threshold(response), response.shape[-1])
    quiet = [samples[i] for i in torch.nonzero(~fire.flatten(1).any(1)).flatten().tolist()]
    return [G.split(G.latents(quiet[s : s + batch]), layer) for s in range(0, len(quiet), batch)]


def calibrate_share(
    G: Generator,
    splits: list[Split],
    values_for: Callable[[Split, float], torch.Tensor],
    budget: float,
    max_share: float,
) -> Calibration:
    """The largest share in [0, ``max_share``] (to ``max_share / 2**BISECT``) whose silent
    change on ``splits`` (from :func:`silent_splits`) stays within ``budget``.

    ``values_for(split, share)`` gives the layer's values on ``split`` with ``share`` of the
    change. The silent change is taken as rising with the share (bisection). Returns a
    :class:`Calibration`; with no silent sample the share is ``max_share`` (silent nan).
    """
    n = sum(int(s.keys.shape[0]) for s in splits)
    if n == 0:
        return Calibration(max_share, float("nan"), budget, 0)
    with torch.no_grad():
        before = [G.resume(s) for s in splits]

        def silent(share: float) -> float:
            total = 0.0
            for split, b in zip(splits, before, strict=True):
                after = G.resume(split.with_values(values_for(split, share)))
                change = (after.clamp(-1, 1) - b.clamp(-1, 1)).abs() / 2  # 0-1 scale
                total += float(change.mean((1, 2, 3)).sum())
            return total / n

        top = silent(max_share)
        if top <= budget:
            return Calibration(max_share, top, budget, n)
        lo, hi, at_lo = 0.0, max_share, 0.0
        for _ in range(BISECT):
            mid = (lo + hi) / 2
            here = silent(mid)
            if here <= budget:
                lo, at_lo = mid, here
            else:
                hi = mid
        return Calibration(lo, at_lo, budget, n)
