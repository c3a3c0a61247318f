"""Help choosing where to edit: rank layers for a spec, and find samples where a rule fires.

``suggest_layers`` makes a quick trial edit at every editable layer and judges
it on held-out samples the spec never used: how closely the user's own example
reproduces the request, and how much the images where the rule is silent
change. Before the trial it measures whether the layer's keys separate the rule's
place from the rest at all (:mod:`rewrite.metrics.feasibility`); layers that do
not rank below those that do. It reports the size of the goal on that layer's grid
(a goal of a single cell cannot carry a shape). ``match`` ranks held-out samples by
their strongest response.

Usage::

    for row in suggest_layers(G, spec): print(row)    # LayerAdvice, best first
    samples, scores, responses = match(G, spec, range(1000), top=16)   # best first
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from ..edit.masks import VALUE_COVERAGE, layer_window, render_mask, window_coverage
from ..edit.session import Rewriter
from ..edit.spec import EditSpec
from ..models.base import Generator
from ..utils.errors import RewriteError
from .evaluate import evaluate
from .feasibility import Feasibility, feasibility
from .firing import key_response

#: Held-out samples a trial edit is judged on (far from the indices specs are written on).
ADVICE_SEEDS = range(5000, 5064)
#: A trial edit whose silent change stays within this counts as local.
SILENT_OK = 0.015


#: Advice warns when even the best layer reproduces the request only this far.
REPRO_WARN = 0.7


@dataclasses.dataclass
class LayerAdvice:
    """One layer's suitability for a spec, from a trial edit judged on held-out samples.

    Attributes:
        layer: the layer name.
        goal_reproduction: the trial edit's distance to the request on the user's own
            example, as a fraction of the unedited distance (lower is better; nan if skipped).
        silent_change: whole-image change on the held-out samples where the rule is silent.
        efficacy: fraction of firing held-out samples that moved toward the request.
        key_grid: the layer's key resolution.
        goal_cells: cells of the goal on the layer's value grid.
        note: one line: why the layer is (not) recommended, or why it was skipped.
        feasibility: how well the layer's keys separate the rule's place from the rest,
            measured before the trial edit (None: not measured).
    """

    layer: str
    goal_reproduction: float
    silent_change: float
    efficacy: float
    key_grid: int
    goal_cells: int
    note: str = ""
    feasibility: Feasibility | None = None

    @property
    def usable(self) -> bool:
        return not np.isnan(self.goal_reproduction)


def suggest_layers(
    G: Generator,
    spec: EditSpec,
    stats_samples: int = 2000,
    seeds: Sequence[int] = ADVICE_SEEDS,
    progress: bool | None = None,
) -> list[LayerAdvice]:
    """Every editable layer scored for ``spec`` by a trial edit (best first).

    At each layer the spec is solved as written (its rank and solver, statistics of
    ``stats_samples`` samples) and measured on the held-out ``seeds``: the goal
    reproduction on the user's example and the silent change elsewhere. Layers whose
    keys separate the rule's place (:func:`~rewrite.metrics.feasibility.feasibility`:
    ``separates`` or ``partly``) come before those whose keys do not; within each, layers
    whose silent change is within ``SILENT_OK`` come first, by goal reproduction, then the
    others, by silent change. Layers where the spec cannot be solved (empty masks, too
    few keys) are listed last with the reason.
    """
    out = []
    for info in G.layers():
        s = copy.deepcopy(spec)
        s.layer, s.stats_samples = info.name, stats_samples
        feas = feasibility(G, s, Rewriter(G, progress=progress).stats(s))
        goal_sel = spec.paste if spec.kind == "copy-paste" else spec.context[0]
        goal_cells = 0
        if goal_sel is not None and goal_sel.mask is not None:
            goal_cells = int(
                (
                    window_coverage(
                        render_mask(goal_sel.mask, G.resolution), layer_window(info, "value")
                    )
                    > VALUE_COVERAGE
                ).sum()
            )
        try:
            r = evaluate(G, s, list(seeds), progress=progress)
        except RewriteError as e:
            out.append(
                LayerAdvice(
                    info.name,
                    float("nan"),
                    float("nan"),
                    float("nan"),
                    info.key_resolution,
                    goal_cells,
                    "skipped: " + str(e).splitlines()[-1].strip(" -"),
                    feas,
                )
            )
            continue
        m = r.metrics
        repro, silent = m["goal reproduction"], m["silent change"]
        local = "local" if silent <= SILENT_OK else "not local"
        note = (
            f"trial edit: goal reproduced to {repro:.2f} of the unedited distance, "
            f"silent change {silent:.3f} ({local}) on {len(r.seeds)} held-out samples"
        )
        if goal_cells and goal_cells < 4:
            note += "; the goal covers fewer than 4 cells (too coarse for a shape)"
        out.append(
            LayerAdvice(
                info.name, repro, silent, m["efficacy"], info.key_resolution, goal_cells, note, feas
            )
        )

    def order(a: LayerAdvice):
        if not a.usable:
            return (1, 0, 0, 0.0)
        apart = int(a.feasibility is not None and a.feasibility.does_not_separate)
        if a.silent_change <= SILENT_OK:
            return (0, apart, 0, np.nan_to_num(a.goal_reproduction, nan=9.0))
        return (0, apart, 1, a.silent_change)

    return sorted(out, key=order)


def advice_summary(advice: list[LayerAdvice], spec_layer: str) -> list[str]:
    """The verdict of :func:`suggest_layers` as lines: the suggestion (or why none can be
    made), then up to two warnings (no layer separates the rule's place; no layer
    reproduces the request well)."""
    best = advice[0]
    if not best.usable:
        return ["no layer can be suggested: " + best.note]
    lines = [f"suggested: {best.layer} (the spec uses {spec_layer}): {best.note}"]
    if best.feasibility is not None and best.feasibility.does_not_separate:
        lines.append(
            "warning: no layer's keys separate the rule's place from the rest; "
            "expect a colour change, not the object"
        )
    if best.goal_reproduction > REPRO_WARN:
        lines.append(
            "warning: no layer reproduces the request well; check the goal panel "
            "(rewrite goal), trace the copy mask more tightly, or make the context "
            "more specific to where the object belongs"
        )
    return lines


def match(
    G: Generator, spec: EditSpec, seeds: Sequence[int], top: int = 16, progress: bool | None = None
) -> tuple[list[int], np.ndarray, torch.Tensor]:
    """The ``top`` samples of ``seeds`` with the strongest response to the spec's directions.

    Returns ``(samples, scores, responses)``: the samples (members of ``seeds``) best
    first, their scores (maximum response over positions, float [top]), and their
    responses [top, h, w].
    """
    inputs = Rewriter(G, progress=progress).prepare(spec)
    resp = key_response(G, spec.layer, inputs.D, list(seeds))
    scores = resp.flatten(1).max(1).values.numpy()
    order = np.argsort(-scores, kind="stable")[:top]
    seeds = list(seeds)
    return [seeds[i] for i in order], scores[order], resp[order]
