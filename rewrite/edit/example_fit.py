"""``example-fit``: the request re-applied to many samples, fitted in image space.

Why: a rule fitted to one pasted feature patch writes the same patch into every
context, and a low-rank update cannot carry an object whose appearance differs per
face, so held-out faces get a colour wash (see ``benchmarks/FRONTIER.md``). This
method takes the lesson of the reference implementations that generalise (GANWarping
re-applies the user's operation to each new sample; MEMIT derives each example's target
through the rest of the network; UCE keeps an explicit preserve set):

* **examples**: the paste sample, the context samples, and the ``examples`` samples of
  a fixed pool whose keys respond most to the rule's directions ``D`` inside the band
  (where the rule should fire). Each gets the request *re-applied in pixels*: the copied
  object alpha-blended at the same place (copy-paste), or its own inpainted goal
  rendered through the generator (erase: the values of a donor without the object);
* **preserve**: the ``silent`` pool samples whose keys respond least and the samples of the
  spec's "not here" regions (their whole image must stay), and ``keep`` more pool samples
  whose image outside the band must stay (as must the examples' images outside the band);
* **fit**: Adam on the whole layer weight (full capacity: no rank limit) through the
  rest of the generator, on the pixel L1 to each example's goal inside its goal region,
  plus ``keep_weight`` x the L1 change outside the band and ``silent_weight`` x the L1
  change of the silent samples.

Locality comes from the preserve terms (measured in the image, not in the layer's
output), not from a low rank. The result is a plain weight change, so it is saved,
exported and re-applied like any other edit. The pool (``POOL``) is disjoint from the
held-out judging samples (3000-3255) and from the erase donors.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..memory.directions import response_map
from ..memory.registry import MAX_LR, MAX_STEPS, StepCallback, param
from ..memory.solvers import EditProblem
from ..models.base import frozen
from ..utils.errors import EditError
from .delta import Delta
from .masks import layer_window, window_coverage
from .projected import drawn_erase_goals, project_goals, projection_layer, relative_residual
from .seamless import border_offset, feather_ramp, object_matte, poisson_paste

if TYPE_CHECKING:
    from ..memory.layer import LayerFunction
    from ..models.base import Generator, Split
    from .goals import EditInputs

#: Samples the method draws its examples and preserve set from.
POOL = range(800_000, 800_512)


@dataclasses.dataclass(frozen=True)
class FitSampleParams:
    """The samples and schedule of an image-space fit (example-fit's, gated's).

    ``examples``: pool samples (most responsive) that get the request re-applied;
    ``silent``: pool samples drawn from the least responsive ``silent_share`` of the
    pool, kept whole; ``keep``: further pool samples kept outside the band; ``steps``,
    ``lr`` (relative to std(W0)): the Adam schedule; ``keep_weight``, ``silent_weight``:
    the preserve terms relative to the goal term (higher = more local); ``seamless``: on the
    examples other than the user's own, a copy-paste goal's pasted pixels are this mix of the
    copied pixels (0) and their seamless (Poisson) blend into the example (1,
    :mod:`rewrite.edit.seamless`), which drops the source face's skin around the object;
    ``matte``: above 0, on those examples only the copied pixels that differ from the
    examples' median there by about this much (mean |Δ| over channels, pixels in -1..1) are
    pasted (:func:`rewrite.edit.seamless.object_matte`), with their own colours;
    ``blend_own`` 1: the user's own examples get the same ``seamless`` and ``matte`` as the
    others instead of the literal paste (the fit then asks for the object on their own skin,
    not the copied rectangle; the goal reproduction, measured against the literal paste, no
    longer says how well the edit did: benchmarks/FRONTIER.md §25); ``feather`` above 0:
    on every example the pasted pixels fade into the example's own over that many pixels
    inside the rectangle's border (:func:`rewrite.edit.seamless.feather_ramp`), so no goal
    has a hard-edged patch (§27); ``blend_below`` above 0: when the copied rectangle's border
    differs from what surrounds the user's paste by less than this mean colour offset
    (:func:`rewrite.edit.seamless.border_offset`, pixels in -1..1), every example, the user's
    own too, gets the seamless blend (``seamless`` 1, ``blend_own`` 1); above it, the
    parameters as given (§28); ``project`` 1: on the examples other than the user's own
    (all of them with ``blend_own`` 1), each copy-paste goal is replaced by the closest image
    the generator draws from a change of its first layer only
    (:func:`rewrite.edit.projected.project_goals`), so what the generator cannot draw there,
    the copied rectangle's hard edges and the source face's skin, drops out;
    ``project_below`` T above 0: the same, but only when the projection reaches the goals to
    within T of the way (:func:`rewrite.edit.projected.relative_residual`: what the
    generator can draw from its first layer is drawn its way, what it cannot is pasted as
    given; §29); ``erase_drawn`` 1: an erase's examples other than the user's own get goals
    the generator draws (:func:`rewrite.edit.projected.drawn_erase_goals`: its first layer
    redraws each so the band's keys respond to the rule no more than the keep samples' median
    does) instead of a donor's values pasted in (§30); ``erase_examples`` above 0: an erase
    takes that many pool examples instead of ``examples``; ``projected_examples`` above 0: a
    copy-paste whose goals are projected (``project`` 1, or ``project_below`` passed on the
    ``examples`` examples) takes that many pool examples instead, all projected (§31)."""

    examples: int = param(12, 256)
    silent: int = param(16, 256)
    silent_share: float = param(0.0625, 1.0)
    keep: int = param(8, 256)
    steps: int = param(100, MAX_STEPS)
    lr: float = param(0.05, MAX_LR)
    keep_weight: float = 3.0
    silent_weight: float = 5.0
    seamless: float = param(0.0, 1.0)
    matte: float = param(0.0, 2.0)
    blend_own: int = param(0, 1)
    feather: int = param(0, 16)
    blend_below: float = param(0.0, 2.0)
    project: int = param(0, 1)
    project_below: float = param(0.0, 1.0)
    erase_drawn: int = param(0, 1)
    erase_examples: int = param(0, 256)
    projected_examples: int = param(0, 256)


@dataclasses.dataclass(frozen=True)
class ExampleFitParams(FitSampleParams):
    """:class:`FitSampleParams`, and ``null_energy``: project the change away from the
    preserved keys' top directions holding that share of their energy (0 = off);
    ``collateral_weight``: weight of the layer-space collateral ``tr(ΔW C ΔWᵀ)/tr(W0 C W0ᵀ)``
    over every key the model sees (removes the diffuse change a full-capacity fit to few
    samples leaves everywhere). Defaults chosen on the tuning edits with samples 2000-2255
    (benchmarks/FRONTIER.md)."""

    null_energy: float = param(0.0, 0.999)
    collateral_weight: float = 100.0


def preserve_projector(keys: torch.Tensor, energy: float) -> torch.Tensor:
    """Projector [C_in, C_in] onto the key directions that hold the *least* energy of
    ``keys`` [M, C_in]: the top eigen-directions of their second moment that together hold
    ``energy`` of it are removed (AlphaEdit's null space, chosen by an energy fraction, not
    an absolute threshold). ``energy`` 0 gives the identity."""
    c_in = keys.shape[1]
    if energy <= 0:
        return torch.eye(c_in, dtype=keys.dtype)
    k = keys.double()
    evals, evecs = torch.linalg.eigh(k.T @ k / max(1, k.shape[0]))  # ascending
    evals = evals.clamp_min(0).flip(0)
    evecs = evecs.flip(1)
    share = torch.cumsum(evals, 0) / evals.sum().clamp_min(1e-30)
    drop = int((share < energy).sum()) + 1
    keep = evecs[:, drop:]
    return (keep @ keep.T).to(keys.dtype)


def project_keys(d: torch.Tensor, proj: torch.Tensor | None, in_axis: int) -> torch.Tensor:
    """The weight change ``d`` reading only the key directions ``proj`` [C_in, C_in] keeps
    (along ``in_axis``); ``d`` itself when ``proj`` is None."""
    if proj is None:
        return d
    return torch.movedim(
        torch.tensordot(torch.movedim(d, in_axis, -1), proj.to(d), dims=1), -1, in_axis
    )


def band_cells(G: Generator, layer: str, band: torch.Tensor) -> torch.Tensor:
    """The key cells of ``layer`` that the band (bool [R, R], image pixels) covers by half:
    bool [h, w]."""
    cover = window_coverage(band.float().cpu().numpy(), layer_window(G.layer(layer), "key"))
    return torch.as_tensor(cover > 0.5)


def rule_response(
    G: Generator, layer: str, keys: torch.Tensor, D: torch.Tensor, band: torch.Tensor
) -> torch.Tensor:
    """How strongly each sample's keys respond to the rule inside the band.

    Args:
        keys: [N, C_in, h, w]; D: [r, C_in]; band: bool [R, R] in image pixels.
    Returns:
        float [N]: the largest ``|D k|`` over the key cells the band covers by half.
    """
    cells = band_cells(G, layer, band)
    resp = response_map(D, keys)  # [N, h, w]
    if not cells.any():
        cells = torch.ones_like(cells)
    return resp[:, cells.to(resp.device)].amax(1)


def _pool_roles(
    G: Generator, inputs: EditInputs, p: FitSampleParams, n_examples: int | None = None
):
    """(examples, silent, keep) sample lists from :data:`POOL`, by the rule's response:
    ``n_examples`` examples (None: an erase's ``erase_examples`` where set, else
    ``examples``)."""
    pool = list(POOL)
    with torch.no_grad():
        scores = torch.cat(
            [
                rule_response(
                    G,
                    inputs.info.name,
                    G.split(G.latents(pool[s : s + 128]), inputs.info.name).keys,
                    inputs.D,
                    _band(inputs),
                )
                for s in range(0, len(pool), 128)
            ]
        )
    order = torch.argsort(scores, descending=True, stable=True).tolist()
    if n_examples is None:
        n_examples = _n_examples(inputs, p)
    examples = [pool[i] for i in order[:n_examples]]
    quiet = order[len(order) - max(p.silent, int(len(order) * p.silent_share)) :]
    gen = torch.Generator().manual_seed(0)
    silent = [
        pool[quiet[i]] for i in torch.randperm(len(quiet), generator=gen)[: p.silent].tolist()
    ]
    taken = set(silent)
    middle = [i for i in order[n_examples:] if pool[i] not in taken]
    keep = [pool[middle[i]] for i in torch.randperm(len(middle), generator=gen)[: p.keep].tolist()]
    return examples, silent, keep


def _n_examples(inputs: EditInputs, p: FitSampleParams) -> int:
    """How many pool examples a request takes before projection is decided: an erase's
    ``erase_examples`` where set, else ``examples``."""
    return p.erase_examples if inputs.pixel_paste is None and p.erase_examples else p.examples


def _band(inputs: EditInputs) -> torch.Tensor:
    """The inputs' band, bool [R, R] (``build_inputs`` always sets it)."""
    assert inputs.band is not None, "inputs without a band"
    return inputs.band


def _outside_keys(inputs: EditInputs) -> torch.Tensor:
    """1 at key cells outside the band (covered by it at most half), else 0: [1, 1, res, res]."""
    cov = window_coverage(_band(inputs).float().cpu().numpy(), layer_window(inputs.info, "key"))
    return (cov <= 0.5).float()[None, None]


@torch.no_grad()
def _goals(
    G: Generator,
    inputs: EditInputs,
    samples: list[int],
    images: torch.Tensor,
    seamless: float = 0.0,
    literal: int = 0,
    matte: float = 0.0,
    feather: int = 0,
):
    """Each example's goal image [N, 3, R, R] and where it counts [N, 1, R, R]; a copy-paste
    goal's pasted pixels on the examples after the first ``literal`` mix in ``seamless`` of
    their Poisson blend (:func:`rewrite.edit.seamless.poisson_paste`), and with ``matte``
    above 0 only the object's pixels are pasted there
    (:func:`rewrite.edit.seamless.object_matte`); ``feather`` above 0 fades every example's
    pasted pixels into its own near the rectangle's border
    (:func:`rewrite.edit.seamless.feather_ramp`)."""
    R = G.resolution
    if inputs.pixel_paste is not None:  # copy-paste
        src, alpha, (top, left) = inputs.pixel_paste
        h, w = alpha.shape
        goal = images.clone()
        a = alpha.to(images).expand(len(samples), 1, -1, -1).clone()
        if matte > 0 and literal < len(samples):
            typical = images[:, :, top : top + h, left : left + w].median(0).values
            a[literal:] = a[literal:] * object_matte(src.to(images), typical, matte)
        if feather > 0:
            a = a * feather_ramp(h, w, top, left, R, feather).to(images)
        patch = src.to(images).expand(len(samples), -1, -1, -1).clone()
        if seamless > 0 and literal < len(samples):
            blended = poisson_paste(images[literal:], src.to(images), top, left).clamp(-1, 1)
            patch[literal:] = (1 - seamless) * patch[literal:] + seamless * blended
        goal[:, :, top : top + h, left : left + w] = (
            goal[:, :, top : top + h, left : left + w] * (1 - a) + patch * a
        )
        where = torch.zeros(len(samples), 1, R, R)
        where[:, :, top : top + h, left : left + w] = 1
        return goal, where
    from .goals import inpaint_goal  # erase

    info = inputs.info
    region = window_coverage(_band(inputs).float().cpu().numpy(), layer_window(info, "value")) > 0
    split = G.split(G.latents(samples), info.name)
    values = inpaint_goal(G, info.name, split, region[None].expand(len(samples), -1, -1), inputs.D)
    goal = G.resume(split.with_values(values))
    return goal, _band(inputs)[None, None].float().expand(len(samples), -1, -1, -1).clone()


@dataclasses.dataclass
class FitSamples:
    """What an image-space fit works on (:func:`fit_samples`).

    Attributes:
        samples: the examples, then the silent samples, then the keep samples.
        n_ex, n_sil: how many examples and silent samples lead ``samples``.
        split: the generator split at the layer for ``samples``; f: the layer there.
        original: the unedited images [N, 3, R, R].
        goal, where: each example's goal image [n_ex, 3, R, R] and where it counts
            [n_ex, 1, R, R].
        outside: 1 outside the rule's band, [1, 1, R, R].
    """

    samples: list[int]
    n_ex: int
    n_sil: int
    split: Split
    f: LayerFunction
    original: torch.Tensor
    goal: torch.Tensor
    where: torch.Tensor
    outside: torch.Tensor

    def losses(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(goal, keep, silent) terms for rendered ``img`` [N, 3, R, R]: the examples' L1 to
        their goals inside their regions, the L1 change outside the band of the examples and
        keep samples, and the L1 change of the silent samples."""
        n_ex, n_sil = self.n_ex, self.n_sil
        err = (img[:n_ex] - self.goal).abs().mean(1, keepdim=True)
        goal_term = (err * self.where).sum() / self.where.sum().clamp_min(1)
        change = (img - self.original).abs().mean(1, keepdim=True)
        kept = torch.cat([change[:n_ex], change[n_ex + n_sil :]])
        keep_term = (kept * self.outside).sum() / (self.outside.sum() * kept.shape[0])
        silent_term = change[n_ex : n_ex + n_sil].mean() if n_sil else img.new_zeros(())
        return goal_term, keep_term, silent_term


def blends_by_offset(inputs: EditInputs, own_image: torch.Tensor, below: float) -> bool:
    """Whether a copy-paste request's paste is blended (``blend_below``): its copied pixels'
    :func:`~rewrite.edit.seamless.border_offset` against the user's own paste sample
    ``own_image`` [3, R, R] is below ``below``. False for an erase."""
    if inputs.pixel_paste is None:
        return False
    src, _, (top, left) = inputs.pixel_paste
    offset = border_offset(src.to(own_image), own_image, top, left)
    return offset == offset and offset < below


def projected_goals(
    G: Generator,
    examples: list[int],
    goal: torch.Tensor,
    where: torch.Tensor,
    images: torch.Tensor,
    literal: int,
    p: FitSampleParams,
) -> tuple[torch.Tensor, bool]:
    """(goals [N, 3, R, R], whether they were projected): the copy-paste goals with those
    after the first ``literal`` re-rendered through the generator's first layer
    (:func:`rewrite.edit.projected.project_goals`): always with ``project`` 1; with
    ``project_below`` T only when the projection comes within T of them
    (:func:`rewrite.edit.projected.relative_residual`), else ``goal`` as given."""
    if literal >= len(examples):
        return goal, False
    rest = slice(literal, None)
    drawn = project_goals(G, examples[rest], goal[rest], where[rest], images[rest])
    if not p.project and relative_residual(drawn, goal[rest], images[rest], where[rest]) >= (
        p.project_below
    ):
        return goal, False
    out = goal.clone()
    out[rest] = drawn
    return out, True


def _drawn_erase(
    G: Generator,
    inputs: EditInputs,
    examples: list[int],
    keep_keys: torch.Tensor,
    images: torch.Tensor,
    own: int,
    goal: torch.Tensor,
) -> torch.Tensor:
    """``goal`` [n_ex, 3, R, R] with the examples after the first ``own`` redrawn by
    :func:`~rewrite.edit.projected.drawn_erase_goals`, down to the median band response of
    the keep samples (``keep_keys`` [M, C_in, h, w], drawn from the pool's middle)."""
    n_ex = len(examples)
    if own >= n_ex:
        return goal
    band = _band(inputs)
    cells = band_cells(G, inputs.info.name, band)
    if not bool(cells.any()):
        return goal
    resp = response_map(inputs.D, keep_keys)
    target = float(resp[:, cells.to(resp.device)].mean(1).median())
    out = goal.clone()
    drawn, _ = drawn_erase_goals(
        G, inputs.info.name, examples[own:], images[own:], band, cells, inputs.D, target
    )
    out[own:] = drawn.to(goal)
    return out


def fit_samples(G: Generator, inputs: EditInputs, p: FitSampleParams) -> FitSamples:
    """The examples (the user's own, the context samples, then the pool's most responsive),
    the preserve samples (the spec's "not here" samples and the pool's least responsive, kept
    whole; more pool samples kept outside the band) and each example's goal. A copy-paste
    whose goals are projected takes ``projected_examples`` pool examples where that is set:
    the decision is made on the ``examples`` examples, then every goal of the larger set is
    projected."""
    if inputs.pixel_paste is None and p.erase_drawn and G.layer_modules(inputs.info.name) is None:
        raise EditError(
            f"erase_drawn needs the generator's layer modules to read {inputs.info.name!r}'s "
            f"keys, and {type(G).__name__} does not expose them; set erase_drawn to 0"
        )
    fs, projected = _fit_samples(G, inputs, p, _n_examples(inputs, p))
    if projected and p.projected_examples and p.projected_examples != p.examples:
        fs, _ = _fit_samples(G, inputs, dataclasses.replace(p, project=1), p.projected_examples)
    return fs


def _fit_samples(
    G: Generator, inputs: EditInputs, p: FitSampleParams, n_examples: int
) -> tuple[FitSamples, bool]:
    """:func:`fit_samples` with ``n_examples`` pool examples, and whether the copy-paste
    goals were projected."""
    layer = inputs.info.name
    own = inputs.goal_samples[: inputs.goal_rows] if inputs.goal_rows else inputs.goal_samples
    examples, silent, keep = _pool_roles(G, inputs, p, n_examples)
    context = list(dict.fromkeys(own + list(inputs.context_samples)))
    examples = context + [s for s in examples if s not in context]
    # "Not here" samples are kept whole, like the silent ones.
    silent = list(inputs.preserve_samples) + [s for s in silent if s not in inputs.preserve_samples]
    samples = examples + silent + keep
    with torch.no_grad():
        split = G.split(G.latents(samples), layer)
        f = G.layer_function(split)
        original = G.resume(split)
    n_ex, n_sil = len(examples), len(silent)
    seamless, blend_own = p.seamless, p.blend_own
    if p.blend_below > 0 and blends_by_offset(inputs, original[0], p.blend_below):
        seamless, blend_own = 1.0, 1
    literal = 0 if blend_own else len(own)
    goal, where = _goals(
        G, inputs, examples, original[:n_ex], seamless, literal, p.matte, p.feather
    )
    projected = False
    if inputs.pixel_paste is not None and (p.project or p.project_below > 0):
        goal, projected = projected_goals(G, examples, goal, where, original[:n_ex], literal, p)
    if inputs.pixel_paste is None and p.erase_drawn and layer != projection_layer(G):
        keep_keys = split.keys[n_ex + n_sil :]
        goal = _drawn_erase(G, inputs, examples, keep_keys, original[:n_ex], len(own), goal)
    if inputs.pixel_paste is None:  # erase: the user's own goals as built
        for i in range(len(own)):
            goal[i] = inputs.target_image[i]
    device = original.device
    outside = (~_band(inputs)).float()[None, None].to(device)
    fs = FitSamples(
        samples, n_ex, n_sil, split, f, original, goal.to(device), where.to(device), outside
    )
    return fs, projected


def fit_weight_change(
    G: Generator,
    w0: torch.Tensor,
    losses: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    p: FitSampleParams,
    step: StepCallback | None = None,
    shape: Callable[[torch.Tensor], torch.Tensor] | None = None,
    penalty: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, float]:
    """Adam on a weight change ΔW (shaped like ``w0``, from zero; ``p.steps`` steps at
    ``p.lr`` × std(w0)), the only thing asking for gradients.

    ``losses(d) -> (goal, keep, silent)`` renders with the change ``d``
    (:meth:`FitSamples.losses`); the objective is ``goal + keep_weight·keep +
    silent_weight·silent`` plus ``penalty(d)`` when given; ``shape`` maps the free variable to
    the change used (a projection; identity when None); ``step(i, steps)`` is called at every
    step (it may raise to stop). Returns (the fitted change, shaped, detached; the goal term
    at zero change).
    """

    def shaped(d):
        return d if shape is None else shape(d)

    delta = torch.zeros_like(w0, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=p.lr * float(w0.std()))
    with torch.no_grad():
        before = float(losses(torch.zeros_like(w0))[0])
    with frozen(G):  # gradients for the layer's change only
        for i in range(p.steps):
            if step is not None:
                step(i, p.steps)
            opt.zero_grad(set_to_none=True)
            d = shaped(delta)
            g, k, s = losses(d)
            total = g + p.keep_weight * k + p.silent_weight * s
            if penalty is not None:
                total = total + penalty(d)
            total.backward()
            opt.step()
    return shaped(delta.detach()), before


def pixel_fit_delta(
    G: Generator,
    layer: str,
    method: str,
    change: torch.Tensor,
    losses: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    before: float,
    t0: float,
    steps: int,
    **extra,
) -> Delta:
    """The :class:`Delta` of an image-space fit begun at ``time.perf_counter()`` ``t0``:
    ``change`` on ``layer``'s weight, ``loss_before`` = ``before`` and ``loss`` the goal term of
    ``losses(change)`` (pixel L1), ``extra`` (e.g. ``collateral``, ``gate``) passed on."""
    with torch.no_grad():
        after = float(losses(change)[0])
    return Delta(
        layer,
        method,
        dense={G.weight_name(layer): change.cpu()},
        loss_before=before,
        loss=after,
        loss_kind="pixel-L1",
        seconds=time.perf_counter() - t0,
        steps=steps,
        **extra,
    )


def example_fit(
    G: Generator, inputs: EditInputs, p: ExampleFitParams, step: StepCallback | None = None
) -> Delta:
    """Fit the layer's whole weight to the request re-applied on many samples (see the module
    docstring). Returns a dense :class:`Delta` on the layer's weight; ``loss`` is the pixel
    L1 to the goals inside their regions, before and after. ``step(i, steps)`` is called at
    every Adam step (it may raise to stop)."""
    t0 = time.perf_counter()
    layer = inputs.info.name
    fs = fit_samples(G, inputs, p)
    split, f, n_ex, n_sil = fs.split, fs.f, fs.n_ex, fs.n_sil
    w0 = f.weight.detach()
    if p.null_energy > 0:  # the silent samples' keys, and every sample's outside the band
        c_in = split.keys.shape[1]
        kept_keys = torch.cat(
            [
                split.keys[n_ex : n_ex + n_sil].movedim(1, -1).reshape(-1, c_in),
                (split.keys * _outside_keys(inputs).to(split.keys))
                .movedim(1, -1)
                .reshape(-1, c_in),
            ]
        )
        proj = preserve_projector(kept_keys, p.null_energy).to(w0)

    def projected(d):
        return project_keys(d, proj if p.null_energy > 0 else None, f.in_axis)

    if p.collateral_weight > 0 and inputs.moment is None:
        raise EditError(
            "example-fit's collateral_weight needs the layer's key statistics; "
            "build the inputs with them (Rewriter.prepare does)"
        )
    moment = inputs.moment.to(w0) if inputs.moment is not None else None

    def layer_collateral(d):
        """tr(ΔW C ΔWᵀ) / tr(W0 C W0ᵀ): the mean squared change of the layer's linear output
        over every key the model sees, relative to the output."""
        assert moment is not None  # only called with collateral_weight > 0
        rows = torch.movedim(d, f.in_axis, -1).reshape(-1, d.shape[f.in_axis])
        base = torch.movedim(w0, f.in_axis, -1).reshape(-1, w0.shape[f.in_axis])
        return ((rows @ moment) * rows).sum() / ((base @ moment) * base).sum()

    keys = split.keys.detach()

    def losses(d):
        return fs.losses(G.resume(split.with_values(f.forward(keys, w0 + d))))

    penalty = None
    if p.collateral_weight > 0:

        def penalty(d):
            return p.collateral_weight * layer_collateral(d)

    change, before = fit_weight_change(G, w0, losses, p, step, projected, penalty)
    problem = EditProblem(
        f,
        keys[:1],
        split.values[:1],
        torch.ones_like(split.values[:1, :1]),
        inputs.D.to(keys),
        inputs.moment,
    )
    return pixel_fit_delta(
        G,
        layer,
        "example-fit",
        change,
        losses,
        before,
        t0,
        p.steps,
        collateral=problem.collateral(change),
    )
