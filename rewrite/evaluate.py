"""Judge an edit on held-out samples: where the rule fires, efficacy there, locality elsewhere.

Where the rule should fire: the response of the context directions ``D`` to
the edited layer's keys (``d · k``, or ``|D k|`` for rank r) on the unedited
held-out samples; positions above the ``quantile`` (default 0.99) of all those
responses fire, grown by one cell and upsampled to pixels
(:mod:`rewrite.metrics.firing`). Then, on a 0-1 pixel scale:

* efficacy: the fraction of firing samples whose firing region changed by more
  than 0.05 on average; the mean change inside firing regions; for copy-paste
  edits, how much closer the regions' mean colour moved to the copied object's
  mean colour; for erase edits, how much of the erased units' activation
  inside the firing regions is gone;
* locality: mean absolute change and PSNR outside the firing regions, and on
  the samples where the rule does not fire at all;
* the goal loss on the user's own example, the time and the relative change of
  the edited layer's weight.

Usage::

    result = evaluate(load_model("dcgan-digiface64"), EditSpec.load("examples/add-sunglasses.json"),
                      seeds=range(1000, 1512))
    print(result.metrics)
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import numpy as np
import torch

from .distributed import DistContext
from .edit.delta import Delta
from .edit.goals import EditInputs
from .edit.masks import render_mask
from .edit.session import Rewriter
from .edit.spec import EditSpec
from .metrics.firing import firing_mask, key_response, quantile_threshold
from .metrics.pixels import colour_shift, efficacy, mean_change, psnr
from .models.base import Generator
from .sample_cache import cached_generate

DEFAULT_QUANTILE = 0.99


@dataclasses.dataclass
class Evaluation:
    """One method's edit measured on held-out samples.

    Attributes:
        label: the method's name in tables (e.g. ``closed-form+refine r1``).
        spec: the spec that was applied (JSON form).
        seeds: held-out sample indices.
        threshold: response threshold of the firing regions.
        fire: firing regions, bool [N, R, R].
        response: the direction's response to the keys, float [N, h, w].
        before, after: uint8 images [N, R, R, 3] without and with the edit.
        metrics: named figures (see the module docstring).
        delta: the computed edit.
    """

    label: str
    spec: dict
    seeds: list[int]
    threshold: float
    fire: np.ndarray
    response: np.ndarray
    before: np.ndarray
    after: np.ndarray
    metrics: dict
    delta: Delta


@dataclasses.dataclass
class _Shared:
    """What every method's evaluation of one spec shares."""

    inputs: EditInputs
    before: np.ndarray
    response: np.ndarray
    threshold: float
    fire: np.ndarray
    target_colour: np.ndarray | None


def _shared(session: Rewriter, spec: EditSpec, seeds: list[int], quantile: float,
            batch_size: int, progress, cache: bool, dist: DistContext) -> _Shared:
    G = session.model
    inputs = session.prepare(spec)
    before = cached_generate(G, seeds, batch_size, progress, cache, dist)
    response = key_response(G, spec.layer, inputs.D, seeds, batch_size, dist).numpy()
    threshold = quantile_threshold(torch.from_numpy(response), quantile)
    fire = firing_mask(torch.from_numpy(response), threshold, G.resolution).numpy()
    colour = None
    if spec.kind == "copy-paste":
        a = cached_generate(G, [spec.copy.sample], cache=cache)[0].astype(np.float64) / 255
        m = render_mask(spec.copy.mask, G.resolution) > 0.5
        colour = a[m].mean(0)
    return _Shared(inputs, before, response, threshold, fire, colour)


@torch.no_grad()
def _unit_activation(G: Generator, layer: str, units: list[int], seeds: list[int],
                     fire: np.ndarray, batch_size: int) -> float:
    """Mean activation of ``units`` at ``layer`` over the firing cells of ``seeds``."""
    total, count = 0.0, 0
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        v = G.split(G.latents(chunk), layer).values[:, units]                 # [B, U, H, W]
        f = torch.from_numpy(fire[start:start + len(chunk)]).float()[:, None]
        f = torch.nn.functional.interpolate(f, size=v.shape[-2:], mode="area")[:, 0] > 0
        sel = f[:, None].expand_as(v)
        total += float(v[sel].sum())
        count += int(sel.sum())
    return total / count if count else float("nan")


def _measure(session: Rewriter, spec: EditSpec, label: str, shared: _Shared, seeds: list[int],
             batch_size: int, progress, cache: bool, dist: DistContext) -> Evaluation:
    G = session.model
    weight_name = G.weight_name(spec.layer)
    w0 = G.state_dict()[weight_name].detach().clone()
    units = shared.inputs.units
    act_before = (_unit_activation(G, spec.layer, units, seeds, shared.fire, batch_size)
                  if units else None)
    delta = session.apply(spec)
    try:
        after = cached_generate(G, seeds, batch_size, progress, cache, dist)
        act_after = (_unit_activation(G, spec.layer, units, seeds, shared.fire, batch_size)
                     if units else None)
    finally:
        session.undo()
    b, a = shared.before.astype(np.float64) / 255, after.astype(np.float64) / 255
    fire = shared.fire
    silent = ~fire.any((1, 2))                                               # never fires
    m = {
        "firing samples": int((~silent).sum()),
        "firing pixels": float(fire.mean()),
        "efficacy": efficacy(b, a, fire),
        "change inside": mean_change(b, a, fire),
        "change outside": mean_change(b, a, ~fire),
        "PSNR outside": psnr(b, a, ~fire),
        "change, silent samples": mean_change(b[silent], a[silent], ~fire[silent])
        if silent.any() else float("nan"),
        "PSNR, silent samples": psnr(b[silent], a[silent], ~fire[silent])
        if silent.any() else float("nan"),
    }
    if shared.target_colour is not None:
        gain, closer = colour_shift(b, a, fire, shared.target_colour)
        m["colour gain"], m["closer fraction"] = gain, closer
    if units:
        m["erased-unit drop"] = (1 - act_after / act_before) if act_before else float("nan")
    change = delta.changes().get(weight_name)
    m["|ΔW|/|W0|"] = float(change.norm() / w0.norm()) if change is not None else 0.0
    m["goal loss before"], m["goal loss"] = delta.loss_before, delta.loss
    m["loss kind"] = delta.loss_kind
    m["seconds"] = delta.seconds
    return Evaluation(label, spec.to_json(), seeds, shared.threshold, fire, shared.response,
                      shared.before, after, m, delta)


def evaluate(G: Generator, spec: EditSpec, seeds: Sequence[int],
             quantile: float = DEFAULT_QUANTILE, batch_size: int = 32,
             progress: bool | None = None, cache: bool = True,
             dist: DistContext | None = None) -> Evaluation:
    """Measure ``spec`` on held-out ``seeds`` (``G`` is left unedited); see the module docstring.

    Under torchrun (``dist``) every rank computes the same edit (bit-identical) and renders
    its share of the samples; every rank returns the same result.
    """
    seeds, dist = list(seeds), dist or DistContext()
    session = Rewriter(G, progress=progress and dist.is_main)
    shared = _shared(session, spec, seeds, quantile, batch_size, progress, cache, dist)
    return _measure(session, spec, _label(spec), shared, seeds, batch_size, progress, cache, dist)


def _label(spec: EditSpec) -> str:
    rank = f" r{spec.rank}" if spec.solver in ("closed-form+refine", "closed-form", "adam") else ""
    return spec.solver + rank


def method_variants(spec: EditSpec, high_rank: int = 3) -> list[EditSpec]:
    """The paper's comparison for ``spec``: the constrained update at rank 1 and at
    ``high_rank`` (zca), ``finetune-layer``, and ``finetune-all`` (copy-paste) or
    ``dissect-erase`` (erase)."""
    out = []
    for solver, rank in (("closed-form+refine", 1), ("closed-form+refine", high_rank),
                         ("finetune-layer", spec.rank)):
        s = copy.deepcopy(spec)
        s.solver, s.solver_params = solver, (spec.solver_params if solver == spec.solver else {})
        s.rank, s.direction = rank, ("zca" if rank > 1 else spec.direction)
        out.append(s)
    extra = copy.deepcopy(spec)
    extra.solver, extra.solver_params = ("finetune-all" if spec.kind == "copy-paste"
                                         else "dissect-erase"), {}
    out.append(extra)
    return out


def compare_methods(G: Generator, spec: EditSpec, seeds: Sequence[int],
                    variants: list[EditSpec] | None = None, quantile: float = DEFAULT_QUANTILE,
                    batch_size: int = 32, progress: bool | None = None,
                    cache: bool = True, dist: DistContext | None = None) -> list[Evaluation]:
    """Evaluate every variant of ``spec`` on the same held-out samples and the same
    firing regions (those of ``spec``'s own directions)."""
    seeds, dist = list(seeds), dist or DistContext()
    session = Rewriter(G, progress=progress and dist.is_main)
    shared = _shared(session, spec, seeds, quantile, batch_size, progress, cache, dist)
    results = []
    for variant in variants or method_variants(spec):
        results.append(_measure(session, variant, _label(variant), shared, seeds, batch_size,
                                progress, cache, dist))
    return results
