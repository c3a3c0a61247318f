"""Judge an edit on held-out samples: where the rule fires, efficacy there, locality elsewhere.

Where the rule should fire: the response of the context directions ``D`` to
the edited layer's keys (``d · k``, or ``|D k|`` for rank r) on the unedited
held-out samples; positions above the ``quantile`` (default 0.99) of all those
responses fire, grown by one cell and upsampled to pixels
(:mod:`rewrite.metrics.firing`). Then, on a 0-1 pixel scale:

* goal reproduction: on the user's own example (the paste target; for erase,
  each marked sample), the image distance between the edited image and the
  goal image inside the goal box, as a fraction of the unedited distance
  (0 = the request reproduced, 1 = no closer than doing nothing);
* efficacy: the fraction of firing samples that moved *toward the request*:
  for copy-paste, whose firing region now looks like the copied object
  (``object transfer`` >= 0.1: the patch aligned to the object's box moved
  closer to the object in structure, not only in mean colour); for erase,
  whose firing region now looks like its surroundings (``erase removal`` >=
  0.2); firing samples whose score cannot be measured (nan) are left out of the
  fraction (:func:`~rewrite.metrics.transfer.transferred`,
  :func:`~rewrite.metrics.transfer.removed`); ``matched efficacy`` is the same fraction
  among the 16 samples where the rule responds most (those ``rewrite match`` shows).
  ``changed fraction`` is the old count of regions that merely changed by more than
  0.05; ``colour gain`` and ``erased-unit drop`` are kept;
* structure transfer (copy-paste): the share of the copied object's structure (its
  band-pass, :mod:`rewrite.metrics.structure`) drawn into the object's box, best of the
  same small shifts, averaged over the firing samples and over the 16 best matched
  (``matched structure transfer``); a wash, a blur or a fade scores at most 0, a faint or
  partly drawn object the share it drew;
* clean removal (erase): whether the firing region now looks like the same region of a
  face *without* the object (:mod:`rewrite.metrics.removal`; the faces are the unedited
  samples where the rule never fires and responds less than on half of all,
  :func:`~rewrite.metrics.removal.reference_bank`), averaged over the firing samples it
  can judge and over those among the 16 best matched (``matched clean removal``); 1 = as
  object-free as those faces look to each other, 0 = no better than before. A flat fill of
  the surroundings' colour scores at most 0 and a grey blotch or a heavy blur little, where
  ``erase removal`` ("looks like its surroundings") scores such smears as high as a clean
  removal or higher. A firing region that already looked object-free is not judged
  (``clean removal judged`` counts the samples that were: often a third or fewer);
* locality: mean absolute change and PSNR outside the firing regions, and the
  ``silent change``: the whole-image change on the samples where the rule does
  not fire at all;
* the goal loss on the user's own example, the predicted collateral, the time
  and the relative change of the edited layer's weight.

Usage::

    result = evaluate(load_model("dcgan-digiface64"), EditSpec.load("examples/add-sunglasses.json"),
                      seeds=range(1000, 1512))
    print(result.metrics)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..edit.delta import Delta
from ..edit.goals import EditInputs
from ..edit.masks import layer_window, render_mask, window_coverage
from ..edit.methods import METHODS
from ..edit.session import Rewriter
from ..edit.spec import DEFAULT_RANK, MAX_STRENGTH, EditSpec
from ..memory.solvers import DEFAULT_SOLVER
from ..models.base import Generator
from ..sampling.cache import cached_generate
from ..utils.distributed import DistContext
from ..utils.images import to_unit
from .before_after import visible_at_strength
from .firing import firing_mask, key_response, quantile_threshold
from .pixels import colour_shift, efficacy, mean_change, psnr
from .removal import clean_removal, reference_bank
from .structure import structure_transfer
from .transfer import (
    Box,
    erase_removal,
    goal_reproduction,
    object_transfer,
    place_box,
    removed,
    transferred,
)

DEFAULT_QUANTILE = 0.99
#: Collateral budgets of the default solver that ``method_variants`` compares.
COMPARED_BUDGETS = (0.003, 0.03, 0.1)
#: How many best-matched held-out samples ``matched efficacy`` looks at.
MATCHED = 16


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
    goal_before: np.ndarray  # the goal samples without the edit [G, R, R, 3] 0-1
    goal_image: np.ndarray  # what the user asked for [G, R, R, 3] 0-1
    goal_box: np.ndarray  # where it counts, bool [G, R, R]
    obj: np.ndarray | None = None  # the copied object [h, w, 3] 0-1 and its alpha [h, w]
    obj_alpha: np.ndarray | None = None
    boxes: list | None = None  # per held-out sample: the object's box where it fires


def _object_boxes(
    G: Generator,
    spec: EditSpec,
    inputs: EditInputs,
    response: np.ndarray,
    fire: np.ndarray,
    size_hw: tuple[int, int],
) -> list:
    """Where the object should appear on each held-out sample: the box of the pasted
    object, placed relative to the sample's strongest response as the paste box sits
    relative to the paste target's strongest response (None where the rule is silent)."""
    box = inputs.image_mask[0, 0].numpy() > 0
    rows, cols = np.nonzero(box)
    centre = np.array([(rows.min() + rows.max() + 1) / 2, (cols.min() + cols.max() + 1) / 2])
    own = key_response(G, spec.layer, inputs.D, inputs.goal_samples)[0].numpy()  # [h, w]
    cell = G.resolution / own.shape[-1]
    peak = np.array(np.unravel_index(own.argmax(), own.shape)) + 0.5
    offset = centre - peak * cell
    out: list[Box | None] = []
    for i in range(len(response)):
        if not fire[i].any():
            out.append(None)
            continue
        p = np.array(np.unravel_index(response[i].argmax(), response[i].shape)) + 0.5
        c = p * cell + offset
        out.append(place_box((c[0], c[1]), size_hw, (G.resolution, G.resolution)))
    return out


def _nanmean(x: np.ndarray) -> float:
    """Mean of the finite entries of ``x``; nan if there are none."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def _best_aligned_transfer(
    before: np.ndarray,
    after: np.ndarray,
    shared: _Shared,
    size: int,
    shifts=(-4, 0, 4),
    score_fn=object_transfer,
) -> np.ndarray:
    """``score_fn`` (``object_transfer`` or ``structure_transfer``) per sample [N], at the
    best of a few small shifts of each box (the firing peak is only known to a key cell; the
    same box judges before and after)."""
    assert shared.obj is not None and shared.obj_alpha is not None and shared.boxes is not None
    best = np.full(len(before), np.nan)
    h, w = shared.obj.shape[:2]
    for dr in shifts:
        for dc in shifts:
            boxes = [
                None
                if bx is None
                else place_box(
                    ((bx[0] + bx[1]) / 2 + dr, (bx[2] + bx[3]) / 2 + dc), (h, w), (size, size)
                )
                for bx in shared.boxes
            ]
            score = score_fn(before, after, shared.obj, shared.obj_alpha, boxes)
            best = np.fmax(best, score)
    return best


def _shared(
    session: Rewriter,
    spec: EditSpec,
    seeds: list[int],
    quantile: float,
    batch_size: int,
    progress,
    cache: bool,
    dist: DistContext,
) -> _Shared:
    G = session.model
    inputs = session.prepare(spec)
    before = cached_generate(G, seeds, batch_size, progress, cache, dist)
    response = key_response(G, spec.layer, inputs.D, seeds, batch_size, dist).numpy()
    threshold = quantile_threshold(torch.from_numpy(response), quantile)
    fire = firing_mask(torch.from_numpy(response), threshold, G.resolution).numpy()
    colour = obj = alpha = boxes = None
    with torch.no_grad():
        goal_before = to_unit(G(G.latents(inputs.goal_samples)))
    goal_image = to_unit(inputs.target_image)
    goal_box = inputs.image_mask[:, 0].numpy() > 0
    if spec.kind == "copy-paste":
        source = spec.copy
        assert source is not None, "a copy-paste spec has a copy selection"
        a = cached_generate(G, [source.sample], cache=cache)[0].astype(np.float64) / 255
        m = render_mask(source.mask, G.resolution)
        colour = a[m > 0.5].mean(0)
        rows, cols = np.nonzero(m > 0)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        obj, alpha = a[r0:r1, c0:c1], m[r0:r1, c0:c1].astype(np.float64)
        boxes = _object_boxes(G, spec, inputs, response, fire, (r1 - r0, c1 - c0))
    return _Shared(
        inputs,
        before,
        response,
        threshold,
        fire,
        colour,
        goal_before,
        goal_image,
        goal_box,
        obj,
        alpha,
        boxes,
    )


@torch.no_grad()
def _unit_activation(
    G: Generator, layer: str, units: list[int], seeds: list[int], fire: np.ndarray, batch_size: int
) -> float:
    """Mean activation of ``units`` at ``layer`` over the firing cells of ``seeds``."""
    total, count = 0.0, 0
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start : start + batch_size]
        v = G.split(G.latents(chunk), layer).values[:, units]  # [B, U, H, W]
        f = torch.from_numpy(fire[start : start + len(chunk)]).float()[:, None]
        f = window_coverage(f[:, 0], layer_window(G.layer(layer), "value")) > 0
        sel = f[:, None].expand_as(v)
        total += float(v[sel].sum())
        count += int(sel.sum())
    return total / count if count else float("nan")


def _measure(
    session: Rewriter,
    spec: EditSpec,
    label: str,
    shared: _Shared,
    seeds: list[int],
    batch_size: int,
    progress,
    cache: bool,
    dist: DistContext,
    delta: Delta | None = None,
) -> Evaluation:
    G = session.model
    weight_name = G.weight_name(spec.layer)
    w0 = G.state_dict()[weight_name].detach().clone()
    units = shared.inputs.units
    act_before = (
        _unit_activation(G, spec.layer, units, seeds, shared.fire, batch_size) if units else None
    )
    delta = session.apply(spec if delta is None else delta)
    try:
        after = cached_generate(G, seeds, batch_size, progress, cache, dist)
        with torch.no_grad():
            goal_after = to_unit(G(G.latents(shared.inputs.goal_samples)))
        act_after = (
            _unit_activation(G, spec.layer, units, seeds, shared.fire, batch_size)
            if units
            else None
        )
    finally:
        session.undo()
    b, a = shared.before.astype(np.float64) / 255, after.astype(np.float64) / 255
    fire = shared.fire
    silent = ~fire.any((1, 2))  # never fires
    repro = [
        goal_reproduction(
            shared.goal_before[i], goal_after[i], shared.goal_image[i], shared.goal_box[i]
        )
        for i in range(len(goal_after))
    ]
    structure = clean = None
    firing = ~silent
    peak = shared.response.reshape(len(seeds), -1).max(1)
    if spec.kind == "copy-paste":
        toward = _best_aligned_transfer(b, a, shared, G.resolution)
        structure = _best_aligned_transfer(b, a, shared, G.resolution, score_fn=structure_transfer)
        rate = transferred
    else:
        toward = erase_removal(b, a, fire)
        # Against unedited faces without the object: silent, the rule responding least.
        clean = np.full(len(seeds), np.nan)
        clean[firing] = clean_removal(
            b[firing], a[firing], fire[firing], b[reference_bank(fire, peak)]
        )
        rate = removed
    # The best-matched held-out samples (what `rewrite match` shows first).
    top = np.argsort(-peak, kind="stable")[: min(MATCHED, int(firing.sum()))]
    m: dict[str, Any] = {
        "firing samples": int(firing.sum()),
        "firing pixels": float(fire.mean()),
        "goal reproduction": float(np.nanmean(repro)) if repro else float("nan"),
        "efficacy": rate(toward[firing]),
        "matched efficacy": rate(toward[top]),
        ("object transfer" if spec.kind == "copy-paste" else "erase removal"): float(
            np.nanmean(toward[firing])
        )
        if firing.any()
        else float("nan"),
        "change inside": mean_change(b, a, fire),
        "change outside": mean_change(b, a, ~fire),
        "PSNR outside": psnr(b, a, ~fire),
        "silent change": mean_change(b[silent], a[silent], ~fire[silent])
        if silent.any()
        else float("nan"),
        "PSNR, silent samples": psnr(b[silent], a[silent], ~fire[silent])
        if silent.any()
        else float("nan"),
        "changed fraction": efficacy(b, a, fire),
    }
    if structure is not None:  # the object's structure (rewrite.metrics.structure)
        m["structure transfer"] = _nanmean(structure[firing])
        m["matched structure transfer"] = _nanmean(structure[top])
    if clean is not None:  # looks like object-free faces there (rewrite.metrics.removal)
        m["clean removal"] = _nanmean(clean[firing])
        m["matched clean removal"] = _nanmean(clean[top])
        m["clean removal judged"] = int(np.isfinite(clean).sum())
    if shared.target_colour is not None:
        gain, closer = colour_shift(b, a, fire, shared.target_colour)
        m["colour gain"], m["closer fraction"] = gain, closer
    if units and act_after is not None:
        m["erased-unit drop"] = (1 - act_after / act_before) if act_before else float("nan")
    change = delta.changes().get(weight_name)
    m["|ΔW|/|W0|"] = float(change.norm() / w0.norm()) if change is not None else 0.0
    m["predicted collateral"] = delta.collateral
    m["goal loss before"], m["goal loss"] = delta.loss_before, delta.loss
    m["loss kind"] = delta.loss_kind
    m["seconds"] = delta.seconds
    return Evaluation(
        label,
        spec.to_json(),
        seeds,
        shared.threshold,
        fire,
        shared.response,
        shared.before,
        after,
        m,
        delta,
    )


def evaluate(
    G: Generator,
    spec: EditSpec,
    seeds: Sequence[int],
    quantile: float = DEFAULT_QUANTILE,
    batch_size: int = 32,
    progress: bool | None = None,
    cache: bool = True,
    dist: DistContext | None = None,
) -> Evaluation:
    """Measure ``spec`` on held-out ``seeds`` (``G`` is left unedited); see the module docstring.

    Under torchrun (``dist``) every rank computes the same edit (bit-identical) and renders
    its share of the samples; every rank returns the same result.
    """
    seeds, dist = list(seeds), dist or DistContext()
    session = Rewriter(G, progress=progress and dist.is_main)
    spec.validate_for(G)
    with G.using_sampling(spec.sampling):  # held-out samples as the edit's
        shared = _shared(session, spec, seeds, quantile, batch_size, progress, cache, dist)
        return _measure(
            session, spec, _label(spec), shared, seeds, batch_size, progress, cache, dist
        )


#: The strengths, as factors of the spec's own, at which ``rewrite eval`` also measures the
#: edit (no new solve), so a user sees where the edit sits on its strength curve.
CURVE_FACTORS = (0.5, 1.5)


def evaluate_curve(
    G: Generator,
    spec: EditSpec,
    seeds: Sequence[int],
    factors: Sequence[float] = CURVE_FACTORS,
    quantile: float = DEFAULT_QUANTILE,
    batch_size: int = 32,
    progress: bool | None = None,
    cache: bool = True,
    dist: DistContext | None = None,
) -> list[Evaluation]:
    """:func:`evaluate` of ``spec``, then the same solved edit re-weighted to each
    ``factor`` x the spec's strength (clipped to ``MAX_STRENGTH``; no new solve), measured on
    the same samples and firing regions. Returns the evaluations ordered by strength; the
    spec's own is the one whose ``delta.strength`` equals ``spec.strength``."""
    seeds, dist = list(seeds), dist or DistContext()
    session = Rewriter(G, progress=progress and dist.is_main)
    spec.validate_for(G)
    with G.using_sampling(spec.sampling):
        shared = _shared(session, spec, seeds, quantile, batch_size, progress, cache, dist)
        main = _measure(
            session, spec, _label(spec), shared, seeds, batch_size, progress, cache, dist
        )
        out = [main]
        for f in factors:
            s = min(MAX_STRENGTH, f * spec.strength)
            if any(abs(e.delta.strength - s) < 1e-9 for e in out):
                continue
            d = dataclasses.replace(main.delta, strength=s)
            out.append(
                _measure(
                    session,
                    spec,
                    f"{_label(spec)} strength {s:g}",
                    shared,
                    seeds,
                    batch_size,
                    progress,
                    cache,
                    dist,
                    delta=d,
                )
            )
    return sorted(out, key=lambda e: e.delta.strength)


def curve_table(curve: Sequence[Evaluation], own_strength: float) -> str:
    """Markdown: per strength, silent change, goal reproduction, transfer or removal and the
    visible collateral; the spec's own strength marked."""
    toward = "structure transfer" if "structure transfer" in curve[0].metrics else "erase removal"
    lines = [
        f"| strength | silent change | goal reproduction | {toward} | visible collateral |",
        "|---|---|---|---|---|",
    ]
    for e in curve:
        m, s = e.metrics, e.delta.strength
        mark = " (this spec)" if abs(s - own_strength) < 1e-9 else ""
        vis = visible_at_strength(e.delta)
        lines.append(
            f"| {s:g}{mark} | {m['silent change']:.4f} | {m['goal reproduction']:.3f} | "
            f"{m[toward]:.3f} | {vis:.4f} |"
        )
    return "\n".join(lines)


def _label(spec: EditSpec) -> str:
    """``least-collateral r4``, ``adam r1``, ``least-collateral r4 budget=0.03``,
    ``finetune-all``."""
    label = spec.solver
    if spec.solver in METHODS and METHODS[spec.solver].constrained:
        label += f" r{spec.rank}"
    return label + "".join(
        f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}"
        for k, v in sorted(spec.solver_params.items())
    )


def variant(
    spec: EditSpec, solver: str, rank: int | None = None, params: dict | None = None
) -> EditSpec:
    """A copy of ``spec`` solved by ``solver`` with ``params`` (and at ``rank``: ``zca``
    directions above 1, ``mean`` at 1); the whole-model baselines drop ``preserve``."""
    s = copy.deepcopy(spec)
    s.solver, s.solver_params = solver, dict(params or {})
    if not METHODS[solver].not_here:  # the whole-model baselines take no "not here"
        s.preserve = []
    if rank is not None:
        s.rank, s.direction = rank, ("zca" if rank > 1 else "mean")
    return s


def method_variants(spec: EditSpec) -> list[EditSpec]:
    """The comparison for ``spec``: the spec itself, the default solver at other collateral
    budgets (``COMPARED_BUDGETS``: one gentler, two stronger), the previous default
    (``closed-form+refine`` at rank 1), the paper's schedule (``adam`` at rank 1), the
    unconstrained ``finetune-layer``, and ``finetune-all`` (copy-paste) or
    ``dissect-erase`` (erase). Duplicates (the spec is one of them) are dropped."""
    out = [
        copy.deepcopy(spec),
        *[variant(spec, DEFAULT_SOLVER, DEFAULT_RANK, {"budget": b}) for b in COMPARED_BUDGETS],
        variant(spec, "closed-form+refine", 1),
        variant(spec, "adam", 1),
        variant(spec, "finetune-layer"),
        *[
            variant(spec, name)
            for name in ("finetune-all", "dissect-erase")
            if spec.kind in METHODS[name].kinds
        ],
    ]
    seen, unique = set(), []
    for s in out:
        key = json.dumps(s.to_json(), sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return unique


def compare_methods(
    G: Generator,
    spec: EditSpec,
    seeds: Sequence[int],
    variants: list[EditSpec] | None = None,
    quantile: float = DEFAULT_QUANTILE,
    batch_size: int = 32,
    progress: bool | None = None,
    cache: bool = True,
    dist: DistContext | None = None,
) -> list[Evaluation]:
    """Evaluate every variant of ``spec`` on the same held-out samples and the same
    firing regions (those of ``spec``'s own directions)."""
    seeds, dist = list(seeds), dist or DistContext()
    session = Rewriter(G, progress=progress and dist.is_main)
    spec.validate_for(G)
    results = []
    with G.using_sampling(spec.sampling):  # held-out samples as the edit's
        shared = _shared(session, spec, seeds, quantile, batch_size, progress, cache, dist)
        for variant in variants or method_variants(spec):
            results.append(
                _measure(
                    session,
                    variant,
                    _label(variant),
                    shared,
                    seeds,
                    batch_size,
                    progress,
                    cache,
                    dist,
                )
            )
    return results


# --- The field's standard metrics: FID/KID (pytorch-fid's Inception) and masked LPIPS (VGG).

#: Names of the standard figures :func:`add_standard_metrics` adds to ``Evaluation.metrics``.
STANDARD_METRICS = ("FID", "KID", "LPIPS outside", "LPIPS, silent samples")


def _feature_cache_path(kind: str, weights_id: str, images: np.ndarray):
    import hashlib

    from ..utils.cache import cache_dir

    h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    h.update(repr(images.shape).encode())
    return cache_dir() / kind / weights_id / f"{h.hexdigest()[:32]}.npy"


def cached_inception_features(
    net,
    images: np.ndarray,
    weights_id: str | None = None,
    batch_size: int = 50,
    progress: bool | None = None,
    cache: bool = True,
) -> np.ndarray:
    """pool3 features [N, 2048] of uint8 images [N, H, W, 3], kept on disk under
    ``<cache>/inception/<weights_id>/<hash of the images>.npy`` (the images' content
    stands for the model and its edit, as the sample cache's fingerprint does)."""
    from ..utils.cache import cache_usable, read_cached_array
    from ..utils.fileio import atomic_path
    from .inception import inception_features

    path = _feature_cache_path("inception", weights_id, images) if cache and weights_id else None
    if path is not None and path.is_file():
        try:
            return read_cached_array(path, np.float64, (len(images), 2048))
        except (OSError, ValueError) as e:
            print(
                f"warning: the cached Inception features {path} were refused ({e}); "
                "computing them again",
                file=sys.stderr,
            )
    bar = _bar(len(images), "Inception features", progress)
    feats = inception_features(
        net,
        images,
        batch_size=batch_size,
        progress=bar and (lambda done, total: bar.update(done - bar.n)),
    )
    if bar:
        bar.close()
    if path is not None and cache_usable("Inception features"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, feats)
    return feats


def _bar(total: int, desc: str, progress: bool | None):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def add_standard_metrics(
    results: Sequence[Evaluation],
    inception=None,
    lpips=None,
    inception_id: str | None = None,
    batch_size: int = 16,
    progress: bool | None = None,
    cache: bool = True,
) -> None:
    """Add the field's standard figures to each result's ``metrics`` (in place):

    * ``FID``, ``KID``: between the unedited and the edited held-out samples, on the
      2048-d pool3 features of pytorch-fid's Inception (``inception``, a
      :class:`~rewrite.metrics.inception.FIDInception`); FID as pytorch-fid, KID as
      torch-fidelity (one subset of all samples). 0 = the edit left the distribution as it was.
    * ``LPIPS outside``: spatial LPIPS-VGG (``lpips``, a :class:`~rewrite.metrics.lpips.LPIPS`)
      between each sample before and after, averaged outside its firing region, then over
      the samples (the rewriting paper's locality measure; lower is better);
      ``LPIPS, silent samples``: whole-image LPIPS on the samples where the rule never fires.

    Either network may be None (its figures are left out). Features of the unedited
    samples are computed once for all results."""
    from .inception import fid_kid
    from .lpips import masked_lpips

    before_feats = {}
    for r in results:
        if inception is not None:
            key = id(r.before)
            if key not in before_feats:
                before_feats[key] = cached_inception_features(
                    inception, r.before, inception_id, batch_size, progress, cache
                )
            after = cached_inception_features(
                inception, r.after, inception_id, batch_size, progress, cache
            )
            r.metrics.update(fid_kid(before_feats[key], after))
        if lpips is not None:
            bar = _bar(len(r.before), f"LPIPS {r.label}", progress)
            per = masked_lpips(
                lpips,
                r.before,
                r.after,
                ~r.fire,
                batch_size,
                progress=bar and (lambda done, total, bar=bar: bar.update(done - bar.n)),
            )
            if bar:
                bar.close()
            silent = ~r.fire.any((1, 2))
            r.metrics["LPIPS outside"] = (
                float(np.nanmean(per)) if np.isfinite(per).any() else float("nan")
            )
            r.metrics["LPIPS, silent samples"] = (
                float(per[silent].mean()) if silent.any() else float("nan")
            )


def standard_table(results: Sequence[Evaluation]) -> str:
    """The standard figures of ``results`` as a Markdown table (one row per method)."""
    cols = [k for k in STANDARD_METRICS if any(k in r.metrics for r in results)]
    fmt = lambda v: "–" if v != v else f"{v:.4g}"  # noqa: E731
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join([r.label] + [fmt(r.metrics.get(k, float("nan"))) for k in cols]) + " |"
        for r in results
    ]
    return "\n".join(lines)
