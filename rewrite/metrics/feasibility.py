"""Feasibility before solving: do a layer's keys separate the rule's place from the rest?

An edit of one layer changes its output by ``ΔW k`` at every key ``k``. It can draw an
object at the rule's place and leave everything else alone only where the keys there
differ from the keys elsewhere; where they do not, any update that reaches the place
reaches the rest too, and a budgeted solver ends with a wash of colour. This module
measures the separation from the layer's keys alone, before anything is solved
(about a second per layer with cached statistics on a small model).

Key vectors (rows [M, C_in]), with the sample each came from:

* context keys: key cells under the spec's context masks, as the solver takes them
  (:func:`rewrite.edit.goals.region_keys`; a copy-paste without context uses its paste
  region);
* outside keys: the same context samples' key cells outside the bounding box of all
  context masks grown by one key cell, and the key cells of those samples of a fixed
  pool (:data:`FEASIBILITY_POOL`) whose strongest response to the rule's directions is
  in the lower half (faces where the rule should stay silent), and the keys under the
  spec's "not here" regions.

All keys are whitened by the layer's second moment (``(C + λI)^{-1/2}``, the metric of the
solver's ZCA directions), so a direction counts by how much it varies over the layer.
(In raw key units the AUCs below come out 0.01-0.3 higher, the discriminant leaning on
the loud directions, and the gap between edits that work and edits that do not narrows.)
Every figure is *held out*: the samples of each set are split into two halves (by
sample, so cells of one face never sit on both sides); a model fitted on one half scores
the other, both ways round, over :data:`REPEATS` random splits, and the figures are the
means. Context sets are small (12-300 keys in 128-512 dimensions), so anything fitted and
scored on the same keys would separate them perfectly and mean nothing; one split of six
faces into three and three is itself a noisy estimate, hence the repeats.

* ``auc`` (the headline): the held-out area under the ROC curve of a shrinkage Fisher
  discriminant (LDA) between context and outside keys. The within-class covariance
  (the mean of the two classes') is shrunk halfway to its scaled identity, which in the
  whitened space is the layer's own key covariance: a fixed, well-conditioned ridge that
  needs no tuning. AUC is a rank statistic: bounded, blind to the keys' scale and to the
  classes' sizes, and 0.5 where the keys say nothing. LDA was chosen over logistic
  regression: closed form (one solve), deterministic, no iterations to converge.
* ``coverage``: the share of held-out context keys scoring above the 99th percentile of
  the held-out outside keys: how much of the place a gate reaches when it may fire on 1 %
  of the rest (the firing level :mod:`rewrite.metrics.firing` uses). AUC averages over
  all outside keys; this one looks at the hardest 1 %.
* ``context_share`` / ``outside_share``: the shares of held-out context and outside key
  energy (``‖k‖²``, whitened) in the top-``rank`` generalised eigen-directions of
  ``(C_context, C_outside + ρI)`` fitted on the other half: the room an update of the
  spec's rank has on the rule's keys, against the collateral it pays on the rest.

The verdict (:func:`verdict_for`) reads AUC and coverage: ``separates`` (AUC >=
:data:`AUC_SEPARATES` and coverage >= :data:`COVERAGE_SEPARATES`: a gate could be both
selective and covering), ``partly`` (AUC >= :data:`AUC_PARTLY`), else ``does not
separate`` (expect a colour change, not the object). The thresholds were set on
``benchmarks/edits/tune/`` only: at ``main.6`` the beard (the edit the issue's gate probe
made work on about 5 of 8 faces), the glasses and the mouth read 0.90-0.92, the cap (whose
keys the null-space probe found to point the same way inside and outside the band) and
the red hair 0.79-0.81, the hat erase 0.73-0.75. The figures move by about 0.03 with
another outside pool or statistics sample count: within that of a threshold a verdict is
borderline.

Usage::

    f = feasibility(G, spec, Rewriter(G).stats(spec))
    print(f.line())     # feasibility at main.6: partly (held-out AUC 0.91; ...): ...
    s = separation(context_keys, outside_keys, moment)     # the same figures on any keys
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from ..edit.goals import region_keys
from ..edit.layer_stats import LayerStats
from ..edit.masks import (
    crop_window,
    encode_png,
    layer_window,
    render_mask,
    window_coverage,
)
from ..edit.spec import EditSpec, Selection
from ..memory.directions import context_directions, count_distinct, inverse_sqrt
from ..models.base import Generator
from ..utils.errors import EditError, RewriteError

#: Samples whose quiet half gives outside keys (fixed, far from the indices specs are
#: written on and from the held-out evaluation samples).
FEASIBILITY_POOL = range(810_000, 810_064)
#: At most this many outside keys from the pool (cells drawn at random per sample, fixed seed).
MAX_POOL_KEYS = 16_384
#: Shrinkage of the discriminant's within-class covariance toward its scaled identity.
SHRINKAGE = 0.5
#: Relative ridge on the outside keys' second moment in the generalised eigenproblem.
EIG_RIDGE = 0.1
#: The outside-key quantile a context key must pass to count as covered.
FIRING_QUANTILE = 0.99
#: Random splits of the samples into halves that the held-out figures average over.
REPEATS = 8
#: Verdict thresholds (chosen on benchmarks/edits/tune/ only; see the module docstring).
AUC_SEPARATES = 0.95
COVERAGE_SEPARATES = 0.5
AUC_PARTLY = 0.85

SEPARATES = "separates"
PARTLY = "partly"
NO = "does not separate"
UNKNOWN = "unknown"


@dataclasses.dataclass
class Separation:
    """Held-out separation of two sets of keys (see the module docstring); nan if too few."""

    auc: float
    coverage: float
    context_share: float
    outside_share: float


@dataclasses.dataclass
class Feasibility:
    """How well one layer's keys separate a spec's rule from the rest, before solving.

    Attributes:
        layer: the layer.
        auc, coverage, context_share, outside_share: see :class:`Separation` (nan when the
            layer could not be measured).
        context_keys, outside_keys: how many keys of each set were used.
        rank: the update rank the energy shares were measured for.
        verdict: ``separates``, ``partly``, ``does not separate`` or ``unknown``.
        message: one line for a person: what the verdict means for the edit.
    """

    layer: str
    auc: float
    coverage: float
    context_share: float
    outside_share: float
    context_keys: int
    outside_keys: int
    rank: int
    verdict: str
    message: str

    @property
    def does_not_separate(self) -> bool:
        """The layer was measured and its keys do not separate (``partly`` and ``unknown``
        do not count)."""
        return self.verdict == NO

    def line(self) -> str:
        """``feasibility at <layer>: <verdict> (figures): <message>``."""
        if self.verdict == UNKNOWN:
            return f"feasibility at {self.layer}: unknown: {self.message}"
        return (
            f"feasibility at {self.layer}: {self.verdict} (held-out AUC {self.auc:.2f}; "
            f"a gate firing on 1% of the rest reaches {self.coverage:.0%} of the place; "
            f"a rank-{self.rank} update reaches {self.context_share:.0%} of the place's "
            f"key energy, {self.outside_share:.0%} of the rest's): {self.message}"
        )


def verdict_for(auc: float, coverage: float) -> tuple[str, str]:
    """``(verdict, message)`` for a held-out AUC and coverage (thresholds above)."""
    if not np.isfinite(auc):
        return UNKNOWN, "too few keys to measure"
    if auc >= AUC_SEPARATES and coverage >= COVERAGE_SEPARATES:
        return SEPARATES, "the layer tells the rule's place from the rest: an edit can stay local"
    if auc >= AUC_PARTLY:
        return PARTLY, (
            "the layer partly tells the rule's place from the rest: expect part of "
            "the object, or changes elsewhere"
        )
    return NO, (
        "expect a colour change, not the object: the keys look alike at the rule's "
        "place and elsewhere (try another layer: rewrite suggest-layer)"
    )


# ---------------------------------------------------------------- on any keys


def auc_score(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Area under the ROC curve of scores ``pos`` [P] against ``neg`` [N] (ties count half)."""
    neg = torch.sort(neg.double()).values
    pos = pos.double()
    below = torch.searchsorted(neg, pos, right=False).double()
    upto = torch.searchsorted(neg, pos, right=True).double()
    return float(((below + upto) / 2).sum() / (pos.numel() * neg.numel()))


def _halves(n: int, groups: Sequence[int] | None, gen: torch.Generator) -> torch.Tensor:
    """A random half of ``n`` rows, bool [n] (True: first half): half of the distinct
    ``groups`` when there are at least two (a group never straddles), else half the rows."""
    if groups is not None and len(set(groups)) >= 2:
        distinct = sorted(set(groups))
        order = torch.randperm(len(distinct), generator=gen).tolist()
        first = {distinct[i] for i in order[: (len(distinct) + 1) // 2]}
        return torch.tensor([g in first for g in groups], dtype=torch.bool)
    fold = torch.zeros(n, dtype=torch.bool)
    fold[torch.randperm(n, generator=gen)[: (n + 1) // 2]] = True
    return fold


def _cov(x: torch.Tensor) -> torch.Tensor:
    xc = x - x.mean(0)
    return xc.T @ xc / max(x.shape[0] - 1, 1)


def _lda(xc: torch.Tensor, xo: torch.Tensor, shrinkage: float) -> torch.Tensor:
    """Fisher direction [C] of whitened keys ``xc`` [Mc, C] against ``xo`` [Mo, C]:
    ``(S + shrink)⁻¹ (μc − μo)`` with S the mean of the two class covariances."""
    d = xc.shape[1]
    s = 0.5 * (_cov(xc) + _cov(xo))
    scale = float(torch.diagonal(s).mean())
    scale = scale if scale > 0 else 1.0
    s = (1 - shrinkage) * s + shrinkage * scale * torch.eye(d, dtype=s.dtype)
    return torch.linalg.solve(s, xc.mean(0) - xo.mean(0))


def _room(xc: torch.Tensor, xo: torch.Tensor, rank: int, ridge: float) -> torch.Tensor:
    """Orthonormal basis [C, r] of the top-``rank`` generalised eigen-directions of
    ``(C_c, C_o + ρI)`` (second moments of whitened keys ``xc`` [Mc, C], ``xo`` [Mo, C]).

    With ``C_o + ρI = L Lᵀ`` they are ``L⁻ᵀ u`` for the top right singular vectors ``u`` of
    ``xc L⁻ᵀ`` (an SVD of Mc rows, not an eigendecomposition of C x C)."""
    d = xc.shape[1]
    co = xo.T @ xo / xo.shape[0]
    lam = ridge * float(torch.diagonal(co).mean()) or ridge
    chol = torch.linalg.cholesky(co + lam * torch.eye(d, dtype=co.dtype))
    a = torch.linalg.solve_triangular(chol, xc.T, upper=False).T  # xc L⁻ᵀ [Mc, C]
    _, _, vh = torch.linalg.svd(a, full_matrices=False)
    v = torch.linalg.solve_triangular(chol.T, vh[:rank].T, upper=True)  # L⁻ᵀ u [C, r]
    return torch.linalg.qr(v).Q


def _share(x: torch.Tensor, basis: torch.Tensor) -> float:
    total = float((x**2).sum())
    return float(((x @ basis) ** 2).sum()) / total if total > 0 else float("nan")


def separation(
    context: torch.Tensor,
    outside: torch.Tensor,
    moment: torch.Tensor | None = None,
    context_groups: Sequence[int] | None = None,
    outside_groups: Sequence[int] | None = None,
    rank: int = 4,
    shrinkage: float = SHRINKAGE,
    ridge: float = EIG_RIDGE,
    repeats: int = REPEATS,
) -> Separation:
    """Held-out separation of ``context`` [Mc, C] from ``outside`` [Mo, C] keys.

    Args:
        moment: the layer's key second moment [C, C] to whiten by (None: keys as given).
        context_groups, outside_groups: the sample of each row (a half never splits one);
            None, or fewer than two distinct: rows are split at random.
        rank: dimensions of the update's room for the energy shares.
        repeats: random splits into halves (fixed seed), each used both ways round; the
            figures are their means (one split of six context faces is a noisy estimate).

    Returns nan figures when either set has fewer than two keys in a half.
    """
    xc, xo = context.double(), outside.double()
    if moment is not None:
        w = inverse_sqrt(moment)
        xc, xo = xc @ w, xo @ w
    rank = max(1, min(rank, xc.shape[1]))
    gen = torch.Generator().manual_seed(0)
    figs = []
    for _ in range(repeats):
        fc = _halves(xc.shape[0], context_groups, gen)
        fo = _halves(xo.shape[0], outside_groups, gen)
        if min(int(fc.sum()), int((~fc).sum()), int(fo.sum()), int((~fo).sum())) < 2:
            continue
        for train_c, train_o in ((fc, fo), (~fc, ~fo)):
            tc, to, hc, ho = xc[train_c], xo[train_o], xc[~train_c], xo[~train_o]
            w = _lda(tc, to, shrinkage)
            sc, so = hc @ w, ho @ w
            level = torch.quantile(so, FIRING_QUANTILE)
            basis = _room(tc, to, rank, ridge)
            figs.append(
                (
                    auc_score(sc, so),
                    float((sc > level).double().mean()),
                    _share(hc, basis),
                    _share(ho, basis),
                )
            )
    if not figs:
        return Separation(*(4 * [float("nan")]))
    return Separation(*(float(np.mean(v)) for v in zip(*figs, strict=True)))


# ---------------------------------------------------------------- on a model and a spec


@dataclasses.dataclass
class RuleKeys:
    """The keys :func:`feasibility` compares: rows [M, C_in] and the sample of each row."""

    context: torch.Tensor
    context_groups: list[int]
    outside: torch.Tensor
    outside_groups: list[int]


def rule_selections(G: Generator, spec: EditSpec) -> list[Selection]:
    """Where the rule holds: the context regions, or (copy-paste without context) the paste
    region (the copy mask moved by the paste offset when the paste has no mask)."""
    if spec.context:
        return list(spec.context)
    if spec.kind != "copy-paste" or spec.paste is None:
        return []
    if spec.paste.mask is not None:
        return [Selection(spec.paste.sample, spec.paste.mask)]
    dx, dy = spec.paste.offset or (0, 0)
    assert spec.copy is not None, "a copy-paste spec has both selections"
    m = render_mask(spec.copy.mask, G.resolution)
    moved = np.zeros_like(m)
    h, w = m.shape
    ys, xs = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
    yt, xt = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    moved[ys, xs] = m[yt, xt]
    return [Selection(spec.paste.sample, {"png": encode_png(moved)})]


@torch.no_grad()
def rule_keys(
    G: Generator,
    spec: EditSpec,
    moment: torch.Tensor,
    pool: Sequence[int] = FEASIBILITY_POOL,
    max_pool_keys: int = MAX_POOL_KEYS,
    batch_size: int = 16,
) -> RuleKeys:
    """Context and outside keys of ``spec.layer`` (see the module docstring).

    ``moment`` [C_in, C_in] defines the rule's directions that rank the pool samples.
    Raises :class:`EditError` when a region covers no key cell of the layer.
    """
    layer, info = spec.layer, G.layer(spec.layer)
    kwin = layer_window(info, "key")
    sels = rule_selections(G, spec)
    if not sels:
        raise EditError("the spec marks no region where its rule holds")
    per = [region_keys(G, layer, [sel], "context") for sel in sels]  # [m_i, C_in]
    context = torch.cat(per).cpu()
    cgroups = [sel.sample for sel, k in zip(sels, per, strict=True) for _ in range(k.shape[0])]
    # Outside the bounding box of all context masks, grown by one key cell.
    union = np.zeros((G.resolution, G.resolution), bool)
    for sel in sels:
        union |= render_mask(sel.mask, G.resolution) > 0
    ys, xs = np.nonzero(union)
    box = np.zeros_like(union, dtype=np.float32)
    box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 1
    near = crop_window(window_coverage(box, kwin), kwin) > 0  # [h, w]
    near = torch.nn.functional.max_pool2d(near.float()[None, None], 3, 1, 1)[0, 0] > 0
    samples = sorted({sel.sample for sel in sels})
    keys = crop_window(G.split(G.latents(samples), layer).keys, kwin).cpu()  # [S, C, h, w]
    outside = [keys[:, :, ~near].permute(0, 2, 1).reshape(-1, keys.shape[1])]
    ogroups = [s for s in samples for _ in range(int((~near).sum()))]
    # The pool: every sample's strongest response to the rule; keep the quieter half.
    k = count_distinct(context)
    rank = max(1, min(spec.rank, k, context.shape[1]))
    D = context_directions(context, moment, rank, spec.direction).float()
    pool = list(pool)
    per_sample = max(1, max_pool_keys // max(len(pool), 1))
    gen = torch.Generator().manual_seed(0)
    batch_scores, kept = [], []
    for i in range(0, len(pool), batch_size):
        kb = crop_window(G.split(G.latents(pool[i : i + batch_size]), layer).keys, kwin).cpu()
        proj = torch.einsum("rc,bchw->brhw", D, kb.float())
        resp = proj[:, 0] if rank == 1 else proj.norm(dim=1)
        batch_scores.append(resp.flatten(1).amax(1))
        flat = kb.flatten(2).permute(0, 2, 1)  # [B, hw, C]
        for row in flat:
            if row.shape[0] > per_sample:
                row = row[torch.randperm(row.shape[0], generator=gen)[:per_sample]]
            kept.append(row)
    scores = torch.cat(batch_scores)
    quiet = (scores <= torch.quantile(scores.double(), 0.5).float()).tolist()
    for s, q, row in zip(pool, quiet, kept, strict=True):
        if q:
            outside.append(row)
            ogroups += [s] * row.shape[0]
    # The user's "not here" regions are outside by definition (those covering no key cell
    # are left out: they say nothing at this layer).
    for sel in spec.preserve:
        try:
            rows = region_keys(G, layer, [sel], "preserve").cpu()
        except EditError:
            continue
        outside.append(rows)
        ogroups += [sel.sample] * rows.shape[0]
    return RuleKeys(context, cgroups, torch.cat(outside), ogroups)


def feasibility(
    G: Generator, spec: EditSpec, stats: LayerStats, pool: Sequence[int] = FEASIBILITY_POOL
) -> Feasibility:
    """How well the keys of ``spec.layer`` separate the rule's place from the rest.

    ``stats`` are the layer's statistics (their key second moment whitens the keys).
    Never raises for a spec the layer cannot take (a region covering no key cell, too
    few keys): the result is then ``unknown`` with the reason as its message.
    """
    moment = stats.keys.moment()
    try:
        with G.using_sampling(spec.sampling):
            keys = rule_keys(G, spec, moment, pool)
    except RewriteError as e:
        nan = float("nan")
        return Feasibility(
            spec.layer,
            nan,
            nan,
            nan,
            nan,
            0,
            0,
            spec.rank,
            UNKNOWN,
            str(e).splitlines()[-1].strip(" -"),
        )
    sep = separation(
        keys.context, keys.outside, moment, keys.context_groups, keys.outside_groups, rank=spec.rank
    )
    verdict, message = verdict_for(sep.auc, sep.coverage)
    return Feasibility(
        spec.layer,
        sep.auc,
        sep.coverage,
        sep.context_share,
        sep.outside_share,
        keys.context.shape[0],
        keys.outside.shape[0],
        spec.rank,
        verdict,
        message,
    )
