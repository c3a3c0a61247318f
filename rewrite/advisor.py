"""Help choosing where to edit: rank layers for a spec, and find samples where a rule fires.

``suggest_layers`` scores every editable layer by how sharply the context
direction separates the marked context cells from the rest of those images
(ROC-AUC of the key response inside vs outside the masks: 1 = perfect, 0.5 =
chance) and reports the size of the goal on that layer's grid (a goal of a
single cell cannot carry a shape). ``match`` ranks held-out samples by their
strongest response.

Usage::

    for row in suggest_layers(G, spec): print(row)
    top = match(G, spec, range(1000), top=16)         # [(sample, score), ...]
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import numpy as np
import torch

from .edit.masks import KEY_COVERAGE, VALUE_COVERAGE, coverage, render_mask
from .edit.session import Rewriter
from .edit.spec import EditSpec
from .errors import RewriteError
from .metrics.firing import key_response
from .models.base import Generator


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half): the ROC-AUC."""
    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


@dataclasses.dataclass
class LayerAdvice:
    """One layer's suitability for a spec."""

    layer: str
    auc: float
    key_grid: int
    goal_cells: int
    note: str = ""


def suggest_layers(G: Generator, spec: EditSpec, stats_samples: int = 2000,
                   progress: bool | None = None) -> list[LayerAdvice]:
    """Every editable layer scored for ``spec`` (best first); layers where the spec's masks
    are empty or the directions cannot be formed are listed last with the reason."""
    out = []
    for info in G.layers():
        s = copy.deepcopy(spec)
        s.layer, s.stats_samples = info.name, stats_samples
        goal_sel = spec.paste if spec.kind == "copy-paste" else spec.context[0]
        goal_cells = 0
        if goal_sel.mask is not None:
            goal_cells = int((coverage(render_mask(goal_sel.mask, G.resolution),
                                       info.value_resolution) > VALUE_COVERAGE).sum())
        try:
            inputs = Rewriter(G, progress=progress).prepare(s)
        except RewriteError as e:
            out.append(LayerAdvice(info.name, float("nan"), info.key_resolution, goal_cells,
                                   str(e).splitlines()[-1].strip(" -")))
            continue
        inside, outside = [], []
        for sel in spec.context:
            resp = key_response(G, info.name, inputs.D, [sel.sample])[0]
            cells = coverage(render_mask(sel.mask, G.resolution), info.key_resolution) > KEY_COVERAGE
            inside.append(resp[cells].numpy())
            outside.append(resp[~cells].numpy())
        auc = roc_auc(np.concatenate(inside), np.concatenate(outside)) if inside else float("nan")
        note = "" if spec.context else "no context: the paste region's own keys"
        if goal_cells and goal_cells < 4:
            note = (note + "; " if note else "") + "goal covers fewer than 4 cells"
        out.append(LayerAdvice(info.name, auc, info.key_resolution, goal_cells, note))
    return sorted(out, key=lambda a: (np.isnan(a.auc), -np.nan_to_num(a.auc)))


def match(G: Generator, spec: EditSpec, seeds: Sequence[int], top: int = 16,
          progress: bool | None = None) -> tuple[list[int], np.ndarray, torch.Tensor]:
    """The ``top`` samples of ``seeds`` with the strongest response to the spec's directions.

    Returns ``(samples, scores, responses)``: sample indices best first, their scores
    (maximum response over positions), and the responses [top, h, w].
    """
    inputs = Rewriter(G, progress=progress).prepare(spec)
    resp = key_response(G, spec.layer, inputs.D, list(seeds))
    scores = resp.flatten(1).max(1).values.numpy()
    order = np.argsort(-scores, kind="stable")[:top]
    seeds = list(seeds)
    return [seeds[i] for i in order], scores[order], resp[order]
