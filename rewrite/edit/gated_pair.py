"""``gated-pair``: ``gated`` spread over two consecutive layers, fitted together (MEMIT spreads
an edit over consecutive layers).

Why: behind its gate, ``gated`` changes one layer with its whole capacity, yet on held-out
faces the object often comes out as a colour (a cap as streaks at the hairline). The layer
before holds the same place in fewer, coarser cells, where the object's layout is decided;
changing both lets the coarse layer lay the object out and the fine one draw it
(benchmarks/FRONTIER.md §15).

* **layers**: the spec's layer and its partner, the layer before it when that one's keys are
  a grid of cells (:func:`partner_layer`); where there is none (``main.3`` of the face model,
  whose layer before reads the latent) the edit is ``gated``'s on the spec's layer alone, at
  this method's budget and with ``gated``'s gate per image (``face_gate_alone``): on the
  tuning edits at ``main.3`` the layer after lost the object (benchmarks/FRONTIER.md §16),
  and the gate per image reproduced the cap better and removed more at a lower silent change,
  the other two edits alike (§22);
* **gates**: ``gated``'s LDA gate on each layer's own keys
  (:func:`rewrite.edit.gated_fit.band_gate`);
* **fit**: ``gated``'s examples, goals and preserve terms
  (:func:`rewrite.edit.example_fit.fit_samples`); Adam on both weight changes at once, each
  step rendering the upstream layer's gated values and the downstream layer wrapped by its
  own gated change;
* **share**: one share of both changes, chosen by the silent change on the calibration
  samples as ``gated``'s (:mod:`rewrite.edit.calibrate`).

The result is a gated :class:`~rewrite.edit.delta.Delta` of the spec's layer whose
``companion`` is the partner's gated change: applied, saved and scaled together.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import torch

from ..memory.gate import Gate, gated_change
from ..memory.registry import StepCallback, param
from ..models.base import Split, frozen
from ..utils.errors import EditError
from .calibrate import calibrate_share, silent_splits
from .delta import Delta
from .example_fit import fit_samples, project_keys
from .gated import GatedValues
from .gated_fit import (
    GatedParams,
    band_gate,
    gated_fit,
    key_projector,
    require_wrappable,
    with_face_gate,
)

if TYPE_CHECKING:
    from ..models.base import Generator
    from .goals import EditInputs


@dataclasses.dataclass(frozen=True)
class GatedPairParams(GatedParams):
    """:class:`~rewrite.edit.gated_fit.GatedParams`, with a smaller ``silent_budget``: two
    changed layers spread their change on held-out faces further past the calibration's figure
    than one does (tuning samples 2000-2255 at strength 1: budget 0.008 gave add-cap 0.0104,
    0.007 kept all seven tuning edits at 0.0029-0.0092; benchmarks/FRONTIER.md §15); and
    ``face_gate_alone``: where the layer has no partner, the edit's ``face_gate`` when that is
    0 (:class:`~rewrite.edit.gated_fit.GatedParams`; on the four tuning edits at ``main.3``,
    tuning samples 2000-2255: add-cap-main3's goal reproduction 0.385 -> 0.277 and transfer
    0.113 -> 0.145, remove-headwear's removal 0.153 -> 0.170 at silent change 0.0044 against
    0.0078, the beard and the red hair alike; benchmarks/FRONTIER.md §22); and a copy-paste's
    goals drawn by the generator's first layer where it comes within 0.18 of them
    (``project_below``), with 48 pool examples then (``projected_examples``): on the five
    tuning edits it projects, samples 2000-2255 at strength 1, the median structure transfer
    0.148 -> 0.180 at silent change 0.0064-0.0078, goal reproduction 0.050-0.197
    (benchmarks/FRONTIER.md §31); and an erase's goals drawn by the generator
    (``erase_drawn``) over 48 pool examples (``erase_examples``): on the three tuning erases,
    samples 2000-2255 at strength 1, the median clean removal
    (:mod:`rewrite.metrics.removal`) 0.132 -> 0.326 at silent change 0.0035-0.0085, and two
    blind raters preferred it on both hat erases and the old goals on the glasses
    (benchmarks/FRONTIER.md §30, §32)."""

    silent_budget: float = param(0.007, 1.0)
    face_gate_alone: float = param(1.0, 4.0)
    project_below: float = param(0.18, 1.0)
    projected_examples: int = param(48, 256)
    erase_drawn: int = param(1, 1)
    erase_examples: int = param(48, 256)


def partner_layer(G: Generator, layer: str) -> str | None:
    """The layer a ``gated-pair`` edit of ``layer`` also changes: the one before it when its
    keys are a grid of more than one cell and its values can be wrapped, else None (the edit
    changes ``layer`` alone). The layer after is not taken: on the three tuning copy-paste
    edits at ``main.3`` (tuning samples 2000-2255, strength 1) it held the goal reproduction
    at 0.17-0.58 where ``gated`` alone at the same budget gave 0.08-0.38, and by eye fewer
    beards, caps and red hair (benchmarks/FRONTIER.md §16)."""
    infos = G.layers()
    names = [i.name for i in infos]
    i = names.index(layer)
    if i > 0 and infos[i - 1].key_resolution > 1 and G.layer_modules(names[i - 1]) is not None:
        return names[i - 1]
    return None


def gated_pair_fit(
    G: Generator,
    inputs: EditInputs,
    p: GatedPairParams,
    step: StepCallback | None = None,
    partner: str | None = None,
) -> Delta:
    """Fit gates and weight changes on the spec's layer and its partner together (see the
    module docstring); ``partner`` names the other layer instead of :func:`partner_layer`'s
    choice (the experiment that chose the rule, ``benchmarks/experiments/two_layer_gated.py``).

    Returns a gated :class:`Delta` of the spec's layer with ``companion`` the partner's (none
    when the layer has no partner: ``gated``'s fit with ``p``, named ``gated-pair``);
    ``loss`` is the pixel L1 to the goals inside their regions, before and after (both
    changes). ``step(i, steps)`` is called at every Adam step (it may raise to stop).
    EditError when a layer cannot be gated or the band covers no key cell of one.
    """
    t0 = time.perf_counter()
    layer = inputs.info.name
    require_wrappable(G, layer, "gated-pair")
    other = partner_layer(G, layer) if partner is None else partner
    if other is None:  # no layer before to share the edit: gated's, on this layer alone
        alone = p if p.face_gate > 0 else dataclasses.replace(p, face_gate=p.face_gate_alone)
        return dataclasses.replace(gated_fit(G, inputs, alone, step), method="gated-pair")
    if other == layer:
        raise EditError(f"gated-pair needs two layers; the partner is {layer} itself")
    require_wrappable(G, other, "gated-pair")
    names = [i.name for i in G.layers()]
    first, later = sorted([layer, other], key=names.index)
    fs = fit_samples(G, inputs, p)
    assert inputs.band is not None
    with torch.no_grad():
        z = G.latents(fs.samples)
        splits = {n: (fs.split if n == layer else G.split(z, n)) for n in (first, later)}
    gates: dict[str, Gate] = {
        name: band_gate(G, name, inputs.band, splits[name].keys.detach(), fs.n_ex, fs.n_sil, p)
        for name in (first, later)
    }
    # The rule's D is this layer's, and so is the spread.
    gates[layer] = dataclasses.replace(
        with_face_gate(G, inputs, gates[layer], p), spread=p.gate_spread
    )
    split = splits[first]
    f_first = G.layer_function(split)
    w_later = dict(G.named_parameters())[G.weight_name(later)].detach()
    render = gated_change(f_first, split.keys.detach(), split.values.detach(), gates[first])
    d_first = torch.zeros_like(f_first.weight.detach(), requires_grad=True)
    d_later = torch.zeros_like(w_later, requires_grad=True)
    wrap = GatedValues(G, later, d_later, gates[later])

    f_later = G.layer_function(splits[later])
    proj_first = key_projector(split.keys, gates[first], fs.n_ex, p.key_rank)
    proj_later = key_projector(splits[later].keys, gates[later], fs.n_ex, p.key_rank)

    def first_of(d: torch.Tensor) -> torch.Tensor:
        return project_keys(d, proj_first, f_first.in_axis)

    def later_of(d: torch.Tensor) -> torch.Tensor:
        return project_keys(d, proj_later, f_later.in_axis)

    def losses(scale: float | None = None):
        """(goal, keep, silent) with both changes (times ``scale`` when given)."""
        wrap.change = later_of(d_later) if scale is None else later_of(d_later.detach()) * scale
        first_change = first_of(d_first) if scale is None else first_of(d_first.detach()) * scale
        return fs.losses(G.resume(split.with_values(render(first_change))))

    remove = G.wrap_values(later, wrap, "gated-pair-fit")
    try:
        with torch.no_grad():
            before = float(losses(0.0)[0])
        opt = torch.optim.Adam(
            [
                {"params": [d_first], "lr": p.lr * float(f_first.weight.std())},
                {"params": [d_later], "lr": p.lr * float(w_later.std())},
            ]
        )
        with frozen(G):
            for i in range(p.steps):
                if step is not None:
                    step(i, p.steps)
                opt.zero_grad(set_to_none=True)
                g, k, s = losses()
                (g + p.keep_weight * k + p.silent_weight * s).backward()
                opt.step()
        share, silent = p.scale, float("nan")
        if p.silent_budget > 0:
            quiet = silent_splits(G, layer, inputs.D, at=first)
            changes = {
                id(q): gated_change(G.layer_function(q), q.keys, q.values, gates[first])
                for q in quiet
            }

            def values_for(q: Split, k: float) -> torch.Tensor:
                wrap.change = later_of(d_later.detach()) * k
                return changes[id(q)](first_of(d_first.detach()) * k)

            wrap.change = torch.zeros_like(w_later)  # the calibration's "before"
            c = calibrate_share(G, quiet, values_for, p.silent_budget, p.max_scale)
            share, silent = c.share, c.silent
        with torch.no_grad():
            after = float(losses(share)[0])
    finally:
        remove()
    parts = {
        first: (first_of(d_first.detach()) * share).cpu(),
        later: (later_of(d_later.detach()) * share).cpu(),
    }
    seconds = time.perf_counter() - t0
    companion = Delta(
        other,
        "gated-pair",
        dense={G.weight_name(other): parts[other]},
        gate=gates[other],
        loss_kind="pixel-L1",
        kept_share=share,
    )
    return Delta(
        layer,
        "gated-pair",
        dense={G.weight_name(layer): parts[layer]},
        loss_before=before,
        loss=after,
        loss_kind="pixel-L1",
        seconds=seconds,
        steps=p.steps,
        gate=gates[layer],
        kept_share=share,
        silent_change=silent,
        companion=companion,
    )
