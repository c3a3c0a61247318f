"""``gated``: a full-capacity change of the layer, applied only where a gate on its keys
opens (locality from the gate, not from rank or from preserve terms alone).

Why: example-fit fits the whole layer weight to the request re-applied on many samples,
but one shared weight moves every face a little, and the layer-space collateral term
that keeps it quiet also holds the object back (``benchmarks/FRONTIER.md``). Here the
change is confined by a gate (Perfusion's gated rank-one edit is the published anchor):

* **gate**: at the keys (the change reads ``g(k)·k``); the LDA direction on the layer's key
  cells separating the cells inside the rule's band on the examples (positives) from the
  cells outside the band and every cell of the silent samples (negatives); its threshold
  leaves the gate shut on ``quantile`` of the positives, its softness is ``softness`` × the
  spread of the read-out (:func:`rewrite.memory.gate.fit_gate`);
* **fit**: the examples, goals and preserve terms of example-fit
  (:func:`rewrite.edit.example_fit.fit_samples`), Adam on the layer weight's change seen
  *through the gate*: values ``v0 + tail(lin(k, W0) + lin(g(k)·k, ΔW)) − f(k, W0)``;
* **share**: the edit keeps the largest share of the fitted change (up to ``max_scale``)
  whose silent change on calibration samples stays within ``silent_budget``
  (:mod:`rewrite.edit.calibrate`): edits differ fourfold in how much a given share changes
  the faces the rule should leave alone.

The result is a :class:`~rewrite.edit.delta.Delta` with a gate: applied by wrapping the
layer's values (:mod:`rewrite.edit.gated`), saved in delta files, refused by the families'
checkpoint formats; ``strength`` scales ``ΔW``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import torch

from ..memory.gate import MAX_SPREAD, Gate, fit_gate, gated_change
from ..memory.registry import StepCallback, param
from ..utils.errors import EditError
from .calibrate import calibrate_share, firing_threshold, silent_splits
from .delta import Delta
from .example_fit import (  # band_cells: re-exported for the gate's users
    FitSampleParams,
    band_cells,
    fit_samples,
    fit_weight_change,
    pixel_fit_delta,
    project_keys,
)

if TYPE_CHECKING:
    from ..models.base import Generator
    from .goals import EditInputs


#: Where the method's gate acts (:data:`rewrite.memory.gate.GATE_PLACES`): at the keys, so the
#: change spreads over each kernel's footprint (at the values, the nearest-upsampled gate left
#: block edges: dark squares for sunglasses; on the tuning edits add-cap and add-glasses the
#: instrument's goal_gap 0.68 -> 0.62 and 0.52 -> 0.47, toward_structure 0.11 -> 0.17 and
#: 0.10 -> 0.19 at silent change 0.001-0.002; benchmarks/FRONTIER.md §8).
GATE_AT = "keys"


@dataclasses.dataclass(frozen=True)
class GatedParams(FitSampleParams):
    """:class:`~rewrite.edit.example_fit.FitSampleParams` (example-fit's samples and
    schedule), and ``quantile``: the share of the examples' band cells on which the gate
    stays shut (higher: more selective, less of the object); ``softness``: the gate's ramp
    relative to the read-out's spread; ``shrink``: the LDA's covariance shrinkage;
    ``silent_budget``: the share of the fitted change the edit keeps is the largest, up to
    ``max_scale``, whose silent change on the calibration samples stays within this budget
    (:mod:`rewrite.edit.calibrate`; mean |Δpixel| 0-1); 0 keeps the fixed share ``scale``
    instead. The spec's strength multiplies the kept change further. Defaults chosen on the
    tuning edits with samples 2000-2255 (benchmarks/FRONTIER.md §12: a fixed 0.75 left two of
    seven tuning edits above silent change 0.010 at strength 1, the budget none).
    ``quadratic`` 1: the gate reads the keys by the two classes' Gaussian log-likelihood
    ratio instead of one LDA direction; ``leak`` above 0: the threshold lets that share of
    the negative cells through instead of shutting ``quantile`` of the positives
    (:func:`rewrite.memory.gate.fit_gate`). ``face_gate`` above 0: the gate also shuts on
    every image whose rule response inside the band stays below this multiple of the
    evaluation's firing threshold (1: exactly where the evaluation calls the rule silent
    there), with a ramp of ``face_softness`` times that threshold (:func:`with_face_gate`).
    ``key_rank`` above 0: the change reads only the ``key_rank`` directions holding most of the
    examples' gated keys' energy (:func:`key_projector`); 0: every key direction.
    ``gate_spread`` above 0: on the spec's layer each key cell takes the most open gate within
    that many cells of it (:attr:`rewrite.memory.gate.Gate.spread`), so an object's cells open
    together where any of them passes (benchmarks/FRONTIER.md §26)."""

    quantile: float = param(0.5, 0.99)
    softness: float = param(0.25, 10.0)
    shrink: float = param(0.1, 100.0)
    scale: float = param(0.75, 4.0)
    silent_budget: float = param(0.008, 1.0)
    max_scale: float = param(1.25, 4.0)
    quadratic: int = param(0, 1)
    leak: float = param(0.0, 0.5)
    face_gate: float = param(0.0, 4.0)
    face_softness: float = param(0.05, 1.0)
    key_rank: int = param(0, 4096)
    gate_spread: int = param(0, MAX_SPREAD)


def require_wrappable(G: Generator, layer: str, method: str) -> None:
    """EditError naming ``method`` when ``G`` cannot wrap ``layer``'s values (no gate there)."""
    if G.layer_modules(layer) is None:
        raise EditError(
            f"the {method} method needs a layer whose values can be wrapped; this {G.family} "
            "model's cannot (use example-fit or least-collateral)"
        )


def band_gate(
    G: Generator,
    layer: str,
    band: torch.Tensor,
    keys: torch.Tensor,
    n_ex: int,
    n_sil: int,
    p: GatedParams,
) -> Gate:
    """The gate on ``layer``'s keys [N, C_in, h, w] (the fit's samples: ``n_ex`` examples,
    ``n_sil`` silent samples, then the keep samples): the key cells the band (bool [R, R],
    image pixels) covers by half on the examples against the other cells and every cell of
    the silent samples (:func:`rewrite.memory.gate.fit_gate`). EditError when the band covers
    no key cell or every one."""
    inside = band_cells(G, layer, band).to(keys.device)
    if not inside.any() or inside.all():
        raise EditError(
            f"the marked regions cover {'no' if not inside.any() else 'every'} key cell of "
            f"{layer}; a gate needs cells inside and outside the rule's place (mark a "
            "smaller or larger region, or edit another layer)"
        )
    c_in = keys.shape[1]
    cells = keys.permute(0, 2, 3, 1)  # [N, h, w, C]
    positives = cells[:n_ex][:, inside].reshape(-1, c_in)
    negatives = torch.cat(
        [cells[:, ~inside].reshape(-1, c_in), cells[n_ex : n_ex + n_sil].reshape(-1, c_in)]
    )
    gate, _, _ = fit_gate(
        positives, negatives, p.quantile, p.softness, p.shrink, GATE_AT, bool(p.quadratic), p.leak
    )
    return gate


def key_projector(keys: torch.Tensor, gate: Gate, n_ex: int, rank: int) -> torch.Tensor | None:
    """The projector [C_in, C_in] onto the ``rank`` eigen-directions of the second moment of
    the gated keys ``g(k)·k`` of the first ``n_ex`` samples of ``keys`` [N, C_in, h, w] (what
    a change behind ``gate`` reads on the examples); None for ``rank`` 0 or at least C_in."""
    c_in = keys.shape[1]
    if rank <= 0 or rank >= c_in:
        return None
    with torch.no_grad():
        gated = (gate.open(keys[:n_ex]) * keys[:n_ex]).movedim(1, -1).reshape(-1, c_in)
        moment = gated.double().T @ gated.double()
        _, vecs = torch.linalg.eigh(moment)
        top = vecs[:, -rank:]
    return (top @ top.T).to(keys.dtype)


def with_face_gate(G: Generator, inputs: EditInputs, gate: Gate, p: GatedParams) -> Gate:
    """``gate`` (on the spec layer's keys) with a gate per image when ``p.face_gate`` is above
    0: the rule's directions ``inputs.D``, read on the band's key cells, against
    ``p.face_gate`` times the evaluation's firing threshold on the calibration samples
    (:func:`rewrite.edit.calibrate.firing_threshold`), lowered where needed to open (to
    0.95 at least) on every one of the user's own samples; else ``gate`` itself."""
    if p.face_gate <= 0:
        return gate
    assert inputs.band is not None
    layer = inputs.info.name
    threshold = firing_threshold(G, layer, inputs.D)
    cells = band_cells(G, layer, inputs.band)
    own = list(dict.fromkeys(list(inputs.goal_samples) + list(inputs.context_samples)))
    with torch.no_grad():
        keys = G.split(G.latents(own), layer).keys
    probe = dataclasses.replace(gate, face_D=inputs.D.detach().float().cpu(), face_cells=cells)
    # The user's own samples are where the rule holds: the gate per image opens on each.
    weakest = float(probe.face_response(keys).min())
    tau = max(p.face_softness * threshold, 1e-12)
    return dataclasses.replace(
        probe, face_b=min(p.face_gate * threshold, weakest - 3 * tau), face_tau=tau
    )


def gated_fit(
    G: Generator, inputs: EditInputs, p: GatedParams, step: StepCallback | None = None
) -> Delta:
    """Fit a gate and the layer weight's change behind it (see the module docstring).

    Returns a :class:`Delta` with ``gate`` set and ``dense`` the weight's change ``ΔW``;
    ``loss`` is the pixel L1 to the goals inside their regions, before and after.
    ``step(i, steps)`` is called at every Adam step (it may raise to stop). EditError when
    the family cannot gate the layer or the band covers no key cell.
    """
    t0 = time.perf_counter()
    layer = inputs.info.name
    require_wrappable(G, layer, "gated")
    fs = fit_samples(G, inputs, p)
    split, f = fs.split, fs.f
    keys = split.keys.detach()
    assert inputs.band is not None
    gate = band_gate(G, layer, inputs.band, keys, fs.n_ex, fs.n_sil, p)
    gate = dataclasses.replace(with_face_gate(G, inputs, gate, p), spread=p.gate_spread)
    w0 = f.weight.detach()
    values = split.values.detach()

    render = gated_change(f, keys, values, gate)  # the change's constant terms once

    def losses(d):
        return fs.losses(G.resume(split.with_values(render(d))))

    proj = key_projector(keys, gate, fs.n_ex, p.key_rank)
    fitted, before = fit_weight_change(
        G, w0, losses, p, step, None if proj is None else lambda d: project_keys(d, proj, f.in_axis)
    )
    share, silent = p.scale, float("nan")
    if p.silent_budget > 0:
        splits = silent_splits(G, layer, inputs.D)
        changes = {id(s): gated_change(G.layer_function(s), s.keys, s.values, gate) for s in splits}
        c = calibrate_share(
            G, splits, lambda s, k: changes[id(s)](fitted * k), p.silent_budget, p.max_scale
        )
        share, silent = c.share, c.silent
    return pixel_fit_delta(
        G,
        layer,
        "gated",
        fitted * share,
        losses,
        before,
        t0,
        p.steps,
        gate=gate,
        kept_share=share,
        silent_change=silent,
    )
