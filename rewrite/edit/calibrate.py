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
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..metrics.firing import firing_mask, quantile_threshold
from ..models.base import Split
from .masks import crop_window, layer_window

if TYPE_CHECKING:
    from ..models.base import Generator
    from .goals import EditInputs

#: The samples a change's share is calibrated on.
CALIBRATION = range(840_000, 840_256)
#: Renders tried after the one at the largest share.
TRIES = 4
#: Each try aims at this share of the budget (a little under, so rounding cannot push the
#: aimed share over it) ...
AIM = 0.98
#: ... and a share whose silent change reaches this share of the budget is taken as found.
CLOSE = 0.95


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


def _responses(
    G: Generator, layer: str, D: torch.Tensor, samples: list[int], batch: int
) -> tuple[list[Split], torch.Tensor]:
    """The splits at ``layer`` of ``samples`` (batches of at most ``batch``) and the rule's
    response on their image cells, as the evaluation takes it: ``|D k|`` (``d·k`` at rank 1),
    float [N, cells, cells]."""
    window = layer_window(G.layer(layer), "key")
    d = D.to(torch.float32)
    splits, responses = [], []
    for s in range(0, len(samples), batch):
        split = G.split(G.latents(samples[s : s + batch]), layer)
        keys = crop_window(split.keys, window)
        proj = torch.einsum("rc,bchw->brhw", d.to(keys), keys)
        responses.append((proj[:, 0] if d.shape[0] == 1 else proj.norm(dim=1)).cpu())
        splits.append(split)
    return splits, torch.cat(responses)


@torch.no_grad()
def firing_threshold(
    G: Generator, layer: str, D: torch.Tensor, samples=CALIBRATION, batch: int = 64
) -> float:
    """The response above which the rule (directions ``D`` [r, C_in]) fires, as in the
    evaluation: the 99th percentile of ``|D k|`` (``d·k`` at rank 1) over all image cells of
    all ``samples`` (the calibration samples by default)."""
    _, response = _responses(G, layer, D, list(samples), batch)
    return quantile_threshold(response)


@torch.no_grad()
def firing_samples(G: Generator, inputs: EditInputs, seeds, batch: int = 64) -> list[int]:
    """The samples of ``seeds`` on which the edit's rule fires at its place: the strongest
    response ``|D k|`` over the key cells the band covers
    (:func:`rewrite.edit.example_fit.rule_response`) above the rule's firing threshold on the
    calibration samples (:func:`firing_threshold`). An edit that stays silent where the rule
    does not fire acts on these samples only. In the order of ``seeds``."""
    from .example_fit import rule_response

    assert inputs.band is not None, "inputs without a band"
    layer, seeds = inputs.info.name, list(seeds)
    threshold = firing_threshold(G, layer, inputs.D)
    window = layer_window(G.layer(layer), "key")
    out = []
    for s in range(0, len(seeds), batch):
        part = seeds[s : s + batch]
        keys = crop_window(G.split(G.latents(part), layer).keys, window)  # the image's cells
        response = rule_response(G, layer, keys, inputs.D, inputs.band)
        out += [n for n, r in zip(part, response.tolist(), strict=True) if r > threshold]
    return out


@torch.no_grad()
def silent_splits(
    G: Generator,
    layer: str,
    D: torch.Tensor,
    samples=CALIBRATION,
    batch: int = 64,
    at: str | None = None,
) -> list[Split]:
    """The generator split at ``layer`` for the samples of ``samples`` on which the rule
    (directions ``D`` [r, C_in]) is silent, as in the evaluation: no key cell's ``|D k|`` (or
    ``d·k`` at rank 1) above the 99th percentile over all cells of all ``samples``, grown by
    one cell. Returns the splits (at ``layer``, or at layer ``at`` when given) in batches of at
    most ``batch`` samples (empty if the rule fires on every sample)."""
    samples = list(samples)
    splits, response = _responses(G, layer, D, samples, batch)
    fire = firing_mask(response, quantile_threshold(response), response.shape[-1])
    silent = ~fire.flatten(1).any(1)
    if (at is not None and at != layer) or any(split.extras for split in splits):
        # elsewhere, or nothing to slice by: split the quiet samples again
        quiet = [samples[i] for i in torch.nonzero(silent).flatten().tolist()]
        where = layer if at is None else at
        return [
            G.split(G.latents(quiet[s : s + batch]), where) for s in range(0, len(quiet), batch)
        ]
    out, start = [], 0
    for split in splits:
        n = int(split.keys.shape[0])
        keep = silent[start : start + n].to(split.keys.device)
        start += n
        if keep.any():
            out.append(Split(split.layer, split.keys[keep], split.values[keep]))
    return out


def kept_share_note(delta) -> str:
    """What a person reads about a fitted delta's kept share (``Delta.kept_share``,
    ``Delta.silent_change``), e.g. "kept 0.81 of the fitted change: its silent change on
    calibration faces 0.0078"; "" when the delta has no kept share."""
    share = getattr(delta, "kept_share", math.nan)
    if not math.isfinite(share):
        return ""
    silent = getattr(delta, "silent_change", math.nan)
    why = f": its silent change on calibration faces {silent:.4f}" if math.isfinite(silent) else ""
    return f"kept {share:.2f} of the fitted change{why}"


def calibrate_share(
    G: Generator,
    splits: list[Split],
    values_for: Callable[[Split, float], torch.Tensor],
    budget: float,
    max_share: float,
) -> Calibration:
    """The largest share in [0, ``max_share``] whose silent change on ``splits`` (from
    :func:`silent_splits`) stays within ``budget`` (the search stops once a share's silent
    change is within the budget and above :data:`CLOSE` of it).

    ``values_for(split, share)`` gives the layer's values on ``split`` with ``share`` of the
    change. The silent change rises with the share from zero, close to a power of it, so
    each try aims at :data:`AIM` of the budget on the power law through the measurements
    nearest it (:func:`_next_share`; at most :data:`TRIES` renders after the one at
    ``max_share``); the largest share found within the budget is kept, and if none was, the
    smallest tried is halved until one is. Returns a :class:`Calibration`; with no silent
    sample the share is ``max_share`` (silent nan).
    """
    n = sum(int(s.keys.shape[0]) for s in splits)
    if n == 0:
        return Calibration(max_share, float("nan"), budget, 0)
    with torch.no_grad():
        before = [G.resume(s).clamp(-1, 1) for s in splits]

        def silent(share: float) -> float:
            total = 0.0
            for split, b in zip(splits, before, strict=True):
                after = G.resume(split.with_values(values_for(split, share)))
                total += float(((after.clamp(-1, 1) - b).abs() / 2).mean((1, 2, 3)).sum())
            return total / n

        points = [(max_share, silent(max_share))]  # (share, silent change)
        for _ in range(TRIES):
            found = max((p for p in points if p[1] <= budget), default=None)
            if found is not None and (found[1] >= CLOSE * budget or found[0] == max_share):
                break
            share = _next_share(points, AIM * budget, max_share)
            if share is None or any(abs(share - p[0]) <= 1e-6 * max_share for p in points):
                break
            points.append((share, silent(share)))
        within = [p for p in points if p[1] <= budget]
        share = min(p[0] for p in points)
        while not within and share > max_share / 2**10:
            share /= 2
            here = silent(share)
            if here <= budget:
                within.append((share, here))
        best = max(within, default=(0.0, 0.0))
        return Calibration(best[0], best[1], budget, n)


def _next_share(points: list[tuple[float, float]], aim: float, max_share: float) -> float | None:
    """The share at which the silent change should be ``aim``, on a power law
    ``silent = a·share**p`` through the measured ``points`` nearest the aim on either side
    (``p`` from two of them, 1 from one; held to [0.25, 4]); None without a positive
    measurement."""
    pos = [pt for pt in points if pt[0] > 0 and pt[1] > 0]
    if not pos:
        return None
    below = [pt for pt in pos if pt[1] <= aim]
    above = [pt for pt in pos if pt[1] > aim]
    pair = [pt for pt in (max(below, default=None), min(above, default=None)) if pt is not None]
    if len(pair) < 2:
        pair = sorted(pos, key=lambda pt: abs(math.log(pt[1] / aim)))[:2]
    s1, v1 = pair[0]
    power = 1.0
    if len(pair) == 2 and pair[1][0] != s1 and pair[1][1] != v1:
        s2, v2 = pair[1]
        power = min(4.0, max(0.25, math.log(v2 / v1) / math.log(s2 / s1)))
    return min(max_share, s1 * (aim / v1) ** (1 / power))
