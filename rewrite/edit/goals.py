"""Turn an edit specification into tensors: goal keys and values, loss mask, directions.

* copy: the copy mask on sample A, resampled to the value grid, gives the object
  (A's values in the mask's bounding box) and its alpha (cell coverage);
* paste: the object goes onto sample B, centred on the paste mask's bounding
  box or moved by an offset; goal values = B's values with the object blended
  in; the loss counts the pasted box (the paper's "tight paste");
* context: masks on a few samples; key cells covered more than half give the
  context keys, and with the layer's second moment the directions D. Without
  context the keys under the pasted object are used;
* preserve ("not here"): the samples under these masks join the problem with
  their current values as the goal (all together weighted ``preserve_weight``
  times the goal rows), so the update keeps their values unless the request needs the
  change. (Taking their keys out of D instead was measured and rejected: their
  span overlaps the rule's own keys, and the edit lost most of its effect.)
* erase: for each context region the goal replaces the region's values with
  what a face without the object has there (``inpaint``, the default): among
  a fixed pool of samples whose keys respond least to the rule inside the
  region, the one whose values *outside* the region are closest donates its
  values inside it. ``zero-units`` (GAN-Dissection style) instead zeroes the
  units most active there (relative to each unit's RMS over many samples).
  The units are ranked either way (the ``dissect-erase`` baseline uses them).

The goal rendered through the rest of the network (``goal_image``) shows
what the edit asks for at this layer, before anything is solved.

Usage::

    inputs = build_inputs(G, spec, stats)
    problem = inputs.problem(G)               # for rewrite.memory.solvers
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..memory.directions import context_directions
from ..memory.solvers import EditProblem
from ..models.base import Generator, LayerInfo, Split
from ..utils.errors import EditError
from .layer_stats import LayerStats
from .layer_view import LayerView
from .masks import (
    KEY_COVERAGE,
    VALUE_COVERAGE,
    bounding_box,
    crop_window,
    layer_window,
    regrid,
    render_mask,
    window_cell_pixels,
    window_coverage,
)

if TYPE_CHECKING:  # the spec module imports the methods, which build goals here
    from .spec import EditSpec


@dataclasses.dataclass
class EditInputs:
    """Everything an edit method needs, as tensors.

    Attributes:
        info: the edited layer.
        goal_samples: sample indices of the goal rows.
        split: the forward pass of the goal samples stopped at the layer.
        goal: goal values [N, C_out, H, W].
        mask: loss mask on the value grid [N, 1, H, W].
        context_keys: key vectors that define the rule [M, C_in].
        D: directions [r, C_in], orthonormal rows (float64).
        target_image: the goal at image level [N, 3, R, R] in [-1, 1] (the pasted
            image, or the original images for erase).
        image_mask: where ``target_image`` counts [N, 1, R, R].
        units: the erased units (erase edits), else None.
        moment: the layer's key second moment [C_in, C_in] (for the collateral).
        goal_image: the goal values rendered through the rest of the network
            [N, 3, R, R] in [-1, 1].
        goal_rows: with "not here" regions, the number of goal rows; the rows of
            ``split``, ``goal`` and ``mask`` after them are the "not here" samples, whose
            goal is their current values (None without such regions).
        pixel_paste: copy-paste only: the copied object at image level, ``(pixels
            [3, h, w] in [-1, 1], alpha [h, w], (top, left))`` where it lands, so the
            request can be re-applied to other samples.
        band: where the rule may change the image, bool [R, R]: the bounding box of the
            context regions and the paste box, grown by one value cell.
        context_samples: the samples the context regions are drawn on.
        preserve_samples: the samples of the "not here" regions.
    """

    info: LayerInfo
    goal_samples: list[int]
    split: Split
    goal: torch.Tensor
    mask: torch.Tensor
    context_keys: torch.Tensor
    D: torch.Tensor
    target_image: torch.Tensor
    image_mask: torch.Tensor
    units: list[int] | None = None
    moment: torch.Tensor | None = None
    goal_image: torch.Tensor | None = None
    goal_rows: int | None = None
    pixel_paste: tuple | None = None
    band: torch.Tensor | None = None
    context_samples: tuple[int, ...] = ()
    preserve_samples: tuple[int, ...] = ()

    def problem(self, G: Generator, goal_only: bool = False) -> EditProblem:
        """The solver's view: the layer's functions with W0, keys, goal, mask, D, C.

        With "not here" regions the rows after ``goal_rows`` hold them (goal = their
        current values); ``goal_only`` leaves them out (to report the goal's own loss).
        """
        n = self.goal_rows if goal_only and self.goal_rows is not None else None
        split = (
            self.split
            if n is None
            else dataclasses.replace(
                self.split,
                keys=self.split.keys[:n],
                values=self.split.values[:n],
                extras=_first_rows(self.split.extras, n, self.split.keys.shape[0]),
            )
        )
        return EditProblem(
            G.layer_function(split),
            split.keys,
            self.goal[:n],
            self.mask[:n],
            self.D.to(split.keys.dtype),
            self.moment,
        )


def _first_rows(extras, n: int, total: int):
    """``extras`` of a split (dicts and lists of tensors) with every per-sample tensor
    (first axis ``total``) cut to its first ``n`` rows."""
    if isinstance(extras, dict):
        return {k: _first_rows(v, n, total) for k, v in extras.items()}
    if isinstance(extras, (list, tuple)):
        return type(extras)(_first_rows(v, n, total) for v in extras)
    if torch.is_tensor(extras) and extras.ndim and extras.shape[0] == total:
        return extras[:n]
    return extras


def region_keys(
    G: Generator,
    layer: str,
    selections,
    what: str = "context",
    view: LayerView | None = None,
) -> torch.Tensor:
    """Key vectors [M, C_in] of ``layer`` under the masks of ``selections`` (key cells
    covered more than half); ``what`` names them in errors. ``view``: the goal build's
    :class:`LayerView` of ``G`` at ``layer`` (each sample's split is made once)."""
    view = LayerView.of(G, layer, view)
    info = view.info
    rows = []
    for i, sel in enumerate(selections):
        cov = window_coverage(render_mask(sel.mask, G.resolution), layer_window(info, "key"))
        cells = cov > KEY_COVERAGE
        if not cells.any():
            raise EditError(
                f"{what}[{i}] on sample {sel.sample} covers no key cell of "
                f"{layer} by more than half; draw a larger region"
            )
        keys = view.split([sel.sample]).keys[0]  # [C_in, h, w]
        rows.append(keys[:, cells].T)
    return torch.cat(rows) if rows else torch.zeros(0, info.in_channels)


def context_keys(G: Generator, spec: EditSpec, view: LayerView | None = None) -> torch.Tensor:
    """Key vectors [M, C_in] under the context masks (cells covered more than half)."""
    return region_keys(G, spec.layer, spec.context, "context", view)


def rule_directions(G: Generator, spec: EditSpec, stats: LayerStats) -> torch.Tensor:
    """The rule's directions ``D`` [rank, C_in] (float64, orthonormal rows) from the keys
    under ``spec``'s context masks and the layer's second moment."""
    keys = context_keys(G, spec)
    return context_directions(keys, stats.keys.moment(), spec.rank, spec.direction)


def unit_scores(values: torch.Tensor, region: torch.Tensor, rms: torch.Tensor) -> torch.Tensor:
    """How strongly each unit fires in ``region``: mean value there / the unit's RMS.

    Args:
        values: [N, C, H, W]; region: bool [N, H, W]; rms: [C]. Returns float [C].
    """
    inside = values.permute(1, 0, 2, 3)[:, region]  # [C, P]
    return inside.mean(1).double() / rms.clamp_min(1e-12)


@torch.no_grad()
def build_inputs(G: Generator, spec: EditSpec, stats: LayerStats) -> EditInputs:
    """Compute goal, loss mask, context keys and directions for ``spec`` on ``G``.

    ``spec`` must have passed :meth:`EditSpec.validate_for` on ``G``; ``stats`` are
    the layer's statistics (the second moment defines D; unit RMS ranks erase units).

    The generator is asked through one :class:`LayerView`: the layer's info once, each
    batch of samples split (and rendered) once.
    """
    view = LayerView(G, spec.layer)
    info = view.info
    cell = window_cell_pixels(layer_window(info, "value"), G.resolution)
    moment = stats.keys.moment()
    if spec.kind == "copy-paste":
        inputs = _copy_paste(view, spec, cell)
        keys = context_keys(G, spec, view) if spec.context else inputs.context_keys
        D = context_directions(keys, moment, spec.rank, spec.direction)
    else:
        keys = context_keys(G, spec, view)
        D = context_directions(keys, moment, spec.rank, spec.direction)
        inputs = _erase(view, spec, stats, D)
    inputs.D = D
    inputs.context_keys, inputs.moment = keys, moment
    # An erase's target already is its goal rendered; a paste's target is the pixel paste.
    inputs.goal_image = (
        inputs.target_image
        if spec.kind == "erase"
        else G.resume(inputs.split.with_values(inputs.goal))
    )
    inputs.context_samples = tuple(sel.sample for sel in spec.context)
    inputs.band = rule_band(
        G, spec, info, inputs.image_mask[0, 0] > 0 if spec.kind == "copy-paste" else None
    )
    if spec.preserve:
        _add_preserve_rows(view, spec, inputs)
    return inputs


def rule_band(
    G: Generator, spec: EditSpec, info: LayerInfo, paste_box: torch.Tensor | None = None
) -> torch.Tensor:
    """Where the rule may change the image, bool [R, R]: the bounding box of the context
    regions (and of ``paste_box``, bool [R, R]), grown by one value cell of ``info``."""
    size = G.resolution
    union = np.zeros((size, size), bool)
    for sel in spec.context:
        union |= render_mask(sel.mask, size) > 0.5
    if paste_box is not None:
        union |= paste_box.cpu().numpy()
    band = torch.zeros(size, size, dtype=torch.bool)
    if not union.any():
        return band
    ys, xs = np.nonzero(union)
    grow = window_cell_pixels(layer_window(info, "value"), size)
    band[
        max(0, ys.min() - grow) : ys.max() + 1 + grow, max(0, xs.min() - grow) : xs.max() + 1 + grow
    ] = True
    return band


def _add_preserve_rows(view: LayerView, spec: EditSpec, inputs: EditInputs) -> None:
    """Append the "not here" samples to the problem: their goal is their current values
    under the preserve masks, weighted so that all of them together count
    ``spec.preserve_weight`` times the goal rows."""
    info = view.info
    n = inputs.split.keys.shape[0]
    samples = inputs.goal_samples + [sel.sample for sel in spec.preserve]
    split = view.split(samples)
    region = torch.stack(
        [
            torch.as_tensor(
                window_coverage(render_mask(sel.mask, view.resolution), layer_window(info, "value"))
                > VALUE_COVERAGE,
                dtype=inputs.mask.dtype,
            )
            for sel in spec.preserve
        ]
    )
    weight = spec.preserve_weight * float(inputs.mask.sum()) / float(region.sum())
    inputs.split = split
    inputs.goal = torch.cat([inputs.goal, split.values[n:]])
    inputs.mask = torch.cat([inputs.mask, weight * region[:, None]])
    inputs.goal_rows = n
    inputs.preserve_samples = tuple(sel.sample for sel in spec.preserve)


def _copy_paste(view: LayerView, spec: EditSpec, cell: int) -> EditInputs:
    info = view.info
    size, vres = view.resolution, info.value_resolution
    vwin = layer_window(info, "value")
    _, vm, vc = vwin  # the image: value cells vm .. vm + vc - 1
    copy, paste = spec.copy, spec.paste
    assert copy is not None and paste is not None, "a copy-paste spec has both selections"
    a, b = copy.sample, paste.sample
    split_a = view.split([a])
    split_b = view.split([b])
    copy_px = render_mask(copy.mask, size)
    cov = window_coverage(copy_px, vwin)
    if not (cov > VALUE_COVERAGE).any():
        raise EditError(f"the copy mask on sample {a} is empty at {spec.layer}")
    r0, r1, c0, c1 = bounding_box(cov > VALUE_COVERAGE)
    h, w = r1 - r0, c1 - c0
    obj = split_a.values[0, :, r0:r1, c0:c1]  # [C_out, h, w]
    alpha = cov[r0:r1, c0:c1]  # [h, w]
    # Where the object lands (top-left cell), before clipping to the grid.
    if paste.mask is not None:
        pcov = window_coverage(render_mask(paste.mask, size), vwin)
        pr0, pr1, pc0, pc1 = bounding_box(pcov > VALUE_COVERAGE)
        tr = int(np.floor((pr0 + pr1 - h) / 2 + 0.5))
        tc = int(np.floor((pc0 + pc1 - w) / 2 + 0.5))
    else:
        assert paste.offset is not None, "a paste without a mask has an offset"
        dx, dy = paste.offset
        tr, tc = r0 + round(dy / cell), c0 + round(dx / cell)
    # Clip the box to the image window, trimming the object accordingly.
    sr0, sc0 = max(0, vm - tr), max(0, vm - tc)
    sr1, sc1 = h - max(0, tr + h - (vm + vc)), w - max(0, tc + w - (vm + vc))
    if sr1 <= sr0 or sc1 <= sc0:
        raise EditError(
            "the paste location puts the copied object entirely outside the "
            "image; move the paste mask or offset"
        )
    tr0, tc0 = tr + sr0, tc + sc0
    tr1, tc1 = tr0 + (sr1 - sr0), tc0 + (sc1 - sc0)
    obj, alpha = obj[:, sr0:sr1, sc0:sc1], alpha[sr0:sr1, sc0:sc1]
    goal = split_b.values.clone()
    region = goal[0, :, tr0:tr1, tc0:tc1]
    goal[0, :, tr0:tr1, tc0:tc1] = region * (1 - alpha) + obj * alpha
    mask = torch.zeros(1, 1, vres, vres)
    mask[0, 0, tr0:tr1, tc0:tc1] = 1
    # The same paste at image level (for pixel-space baselines and previews).
    # Pixel boxes: value cell i of the window starts at pixel (i - vm) * cell.
    py0, py1, px0, px1 = (
        (r0 + sr0 - vm) * cell,
        (r0 + sr1 - vm) * cell,
        (c0 + sc0 - vm) * cell,
        (c0 + sc1 - vm) * cell,
    )
    qy0, qy1, qx0, qx1 = (tr0 - vm) * cell, (tr1 - vm) * cell, (tc0 - vm) * cell, (tc1 - vm) * cell
    img_a, img_b = view.images([a]), view.images([b])
    src = img_a[0, :, py0:py1, px0:px1]
    a_px = torch.from_numpy(copy_px)[py0:py1, px0:px1]
    target = img_b.clone()
    dst = target[0, :, qy0:qy1, qx0:qx1]
    target[0, :, qy0:qy1, qx0:qx1] = dst * (1 - a_px) + src * a_px
    image_mask = torch.zeros(1, 1, size, size)
    image_mask[0, 0, qy0:qy1, qx0:qx1] = 1
    # Keys under the pasted object: used as context when the spec gives none.
    placed = torch.zeros(vres, vres)
    placed[tr0:tr1, tc0:tc1] = alpha
    kcov = regrid(placed, vwin, layer_window(info, "key"))
    cells = kcov > KEY_COVERAGE
    if not cells.any():
        cells = kcov > 0
    own_keys = split_b.keys[0][:, cells].T
    return EditInputs(
        info,
        [b],
        split_b,
        goal,
        mask,
        own_keys,
        torch.zeros(0),
        target,
        image_mask,
        pixel_paste=(src.clone(), a_px.to(src), (qy0, qx0)),
    )


#: Samples that may donate the "no object" values of an inpainting erase goal
#: (a fixed range far from the indices people browse, so goals are reproducible).
DONOR_POOL = range(900_000, 900_512)


#: Donors are rendered this many at a time, so memory stays bounded on large models (the
#: whole pool at a 32x32 layer of a 1024-px StyleGAN2 would hold gigabytes of features).
DONOR_BATCH = 32


#: Donor values kept from the scan for the final goal, at most this many bytes: within it
#: the chosen donors are not rendered a second time (the whole pool of a small model's
#: layer fits); beyond it their batches are rendered again, so memory stays bounded.
DONOR_KEEP_BYTES = 64 * 2**20


def donor_batches(pool: range = DONOR_POOL, batch: int = DONOR_BATCH) -> list[list[int]]:
    """The donor pool in the batches :func:`inpaint_goal` renders it in (a donor's values
    are those of its batch's forward pass)."""
    return [list(pool[s : s + batch]) for s in range(0, len(pool), batch)]


@torch.no_grad()
def inpaint_goal(
    G: Generator,
    layer: str,
    split: Split,
    region: torch.Tensor,
    D: torch.Tensor,
    pool: range = DONOR_POOL,
    batch: int = DONOR_BATCH,
    view: LayerView | None = None,
) -> torch.Tensor:
    """Goal values [N, C_out, H, W]: each region's values taken from a donor without the object.

    Args:
        split: the forward pass of the N erase samples stopped at ``layer``.
        region: bool [N, H, W] on the value grid, what to erase.
        D: the rule's directions [r, C_in]; donors are drawn from the half of ``pool``
            whose keys respond least to them inside the region.
        batch: donors rendered at a time (:func:`donor_batches`).
        view: the goal build's :class:`LayerView` of ``G`` at ``layer``.

    The donor is the one whose values outside the region are closest (mean squared
    difference) to the sample's, so the inpainted region fits its surroundings. The pool
    is scanned in batches (response and distance only), keeping the donors' values inside
    the regions while they fit :data:`DONOR_KEEP_BYTES`; the chosen donors' batches that
    were not kept are rendered again for their values (the same batches: the same values).
    """
    view = LayerView.of(G, layer, view)
    info = view.info
    vwin, kwin = layer_window(info, "value"), layer_window(info, "key")
    n = region.shape[0]
    batches = donor_batches(pool, batch)
    strength = torch.empty(n, len(pool))
    distance = torch.empty(n, len(pool))
    union = region.any(0)  # the cells any region takes from its donor
    kept: dict[int, torch.Tensor] = {}  # batch -> its donors' values on ``union`` [B, C, P]
    kept_bytes = 0
    start = 0
    for b, chunk in enumerate(batches):
        donors = view.split(chunk, keep=False)
        resp = torch.einsum("rc,bchw->brhw", D.to(donors.keys), donors.keys).norm(dim=1)
        for i in range(n):
            kreg = (regrid(region[i], vwin, kwin) > 0).to(resp.device)
            strength[i, start : start + len(chunk)] = resp[:, kreg].amax(1).cpu()
            diff = (donors.values - split.values[i][None]) ** 2
            distance[i, start : start + len(chunk)] = diff[:, :, ~region[i]].mean((1, 2)).cpu()
        inside = donors.values[:, :, union]
        if kept_bytes + inside.numel() * inside.element_size() <= DONOR_KEEP_BYTES:
            kept[b] = inside
            kept_bytes += inside.numel() * inside.element_size()
        start += len(chunk)
    goal = split.values.clone()
    for i in range(n):
        quiet = strength[i] <= torch.quantile(strength[i], 0.5)
        d = distance[i].masked_fill(~quiet, float("inf"))
        j = int(torch.argmin(d))
        b = j // batch
        if b not in kept:
            kept[b] = view.split(batches[b], keep=False).values[:, :, union]
        goal[i][:, region[i]] = kept[b][j - b * batch][:, region[i][union]]
    return goal


def _erase(view: LayerView, spec: EditSpec, stats: LayerStats, D: torch.Tensor) -> EditInputs:
    G, info = view.G, view.info
    size = G.resolution
    samples = [c.sample for c in spec.context]
    split = view.split(samples)
    vwin = layer_window(info, "value")
    region = torch.stack(
        [window_coverage(render_mask(c.mask, size), vwin) > VALUE_COVERAGE for c in spec.context]
    )  # [N, H, W]
    scores = unit_scores(split.values, region, stats.values.rms().to(split.values.device))
    units = torch.argsort(scores, descending=True)[: spec.erase_units].tolist()
    if spec.erase_goal == "inpaint":
        goal = inpaint_goal(G, spec.layer, split, region, D, view=view)
    else:
        goal = split.values.clone()
        sel = region[:, None].expand(-1, len(units), -1, -1)
        g = goal[:, units]
        g[sel] = 0
        goal[:, units] = g
    mask = region[:, None].float()
    image_mask = torch.nn.functional.interpolate(
        crop_window(mask, vwin), size=(size, size), mode="nearest"
    )
    target = G.resume(split.with_values(goal))
    return EditInputs(
        info,
        samples,
        split,
        goal,
        mask,
        torch.zeros(0, info.in_channels),
        D,
        target,
        image_mask,
        units,
    )
