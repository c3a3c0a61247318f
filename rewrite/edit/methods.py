"""Edit methods by name: the constrained solvers and the paper's baselines.

``METHODS`` maps a name to its one registry entry, a
:class:`~rewrite.memory.registry.Method` (parameter dataclass with its limits,
function, the edit kinds it serves, what it can do, a summary built from its
defaults). The layer solvers come from :data:`rewrite.memory.solvers.SOLVERS`;
the methods that need the whole model live here: ``example-fit``
(:mod:`.example_fit`) and two baselines:

* ``finetune-all``: every generator weight, Adam on the pixel L1 between the
  model's image and the pasted image inside the paste box (copy-paste only);
* ``dissect-erase``: zero the erased units everywhere (GAN-Dissection unit
  ablation; erase only).

:func:`compute_delta` runs any of them on ``(G, inputs, params)`` and returns a
:class:`Delta`; the model is never modified. Nothing outside the registry
branches on a method's name: it asks the entry (``constrained``, ``joint``,
``not_here``, ``budgeted``, ``kinds``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import torch
from torch.func import functional_call

from ..memory.registry import MAX_LR, MAX_STEPS, Method, StepCallback, param, registry
from ..memory.solvers import DEFAULT_SOLVER, SOLVERS
from .delta import Delta, LowRank
from .example_fit import ExampleFitParams, example_fit
from .gated_fit import GatedParams, gated_fit
from .gated_pair import GatedPairParams, gated_pair_fit

if TYPE_CHECKING:
    from ..models.base import Generator
    from .goals import EditInputs


def _layer_delta(
    G: Generator, inputs: EditInputs, entry: Method, params, step: StepCallback | None
) -> Delta:
    """A layer solver's edit: its problem built from ``inputs``, solved, as a delta."""
    problem = dataclasses.replace(inputs.problem(G), on_step=step)
    assert entry.solve is not None, entry.name  # called for layer solvers only
    res = entry.solve(problem, params)
    f = problem.layer
    weight_name = G.weight_name(inputs.info.name)
    if inputs.goal_rows is not None:  # report the goal's loss, not the preserve rows'
        own = inputs.problem(G, goal_only=True)
        res.loss_before = own.loss_of_weight(f.weight)
        res.loss = own.loss_of_weight(f.weight + res.delta)
    if res.lam is not None:
        return Delta(
            inputs.info.name,
            entry.name,
            low_rank=LowRank(
                weight_name, res.lam.detach().cpu(), problem.D.detach().cpu(), f.in_axis, f.out_axis
            ),
            loss_before=res.loss_before,
            loss=res.loss,
            seconds=res.seconds,
            steps=res.steps,
            collateral=res.collateral,
        )
    return Delta(
        inputs.info.name,
        entry.name,
        dense={weight_name: res.delta.detach().cpu()},
        loss_before=res.loss_before,
        loss=res.loss,
        seconds=res.seconds,
        steps=res.steps,
        collateral=res.collateral,
    )


def compute_delta(
    G: Generator, inputs: EditInputs, name: str, params=None, step: StepCallback | None = None
) -> Delta:
    """Method ``name``'s edit for ``inputs`` (the model is not changed).

    Args:
        params: the method's parameter dataclass (:func:`method_params`); None: defaults.
        step: called as ``step(step, steps)`` at every step of an iterative method; may
            raise to stop it. None: no callback (a session passes its own,
            :meth:`~rewrite.edit.session.Rewriter.reporting`).
    """
    entry = METHODS[name]
    params = entry.make_params() if params is None else params
    if entry.solve is not None:
        return _layer_delta(G, inputs, entry, params, step)
    assert entry.run is not None, name  # an entry has a solve or a run function
    return entry.run(G, inputs, params, step)


@dataclasses.dataclass(frozen=True)
class FinetuneAllParams:
    """Adam on every generator weight; ``lr`` is absolute (the usual GAN training scale)."""

    steps: int = param(200, MAX_STEPS)
    lr: float = param(2e-4, MAX_LR)


def finetune_all(
    G: Generator, inputs: EditInputs, p: FinetuneAllParams, step: StepCallback | None = None
) -> Delta:
    """Baseline: fine-tune all weights so the image matches the pasted image in the box
    (the best iterate is kept, so the loss never rises)."""
    t0 = time.perf_counter()
    z = G.latents(inputs.goal_samples)
    target, mask = inputs.target_image, inputs.image_mask
    base = {n: t.detach() for n, t in G.named_parameters()}
    params = {n: t.clone().requires_grad_(True) for n, t in base.items()}

    def loss_of(ps):
        img = functional_call(G, ps, (z,))
        return ((img - target).abs() * mask).sum() / (mask.sum() * img.shape[1])

    with torch.no_grad():
        before = float(loss_of(base))
    best = (before, base)
    opt = torch.optim.Adam(list(params.values()), lr=p.lr)
    for i in range(p.steps):
        if step is not None:
            step(i, p.steps)
        opt.zero_grad(set_to_none=True)
        loss = loss_of(params)
        if float(loss.detach()) < best[0]:  # the iterate before this step
            best = (float(loss.detach()), {n: t.detach().clone() for n, t in params.items()})
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = float(loss_of(params))
    if last < best[0]:
        best = (last, {n: t.detach().clone() for n, t in params.items()})
    after, chosen = best
    dense = {n: (chosen[n] - base[n]).cpu() for n in base}
    return Delta(
        inputs.info.name,
        "finetune-all",
        dense=dense,
        loss_before=before,
        loss=after,
        loss_kind="pixel-L1",
        seconds=time.perf_counter() - t0,
        steps=p.steps,
    )


@dataclasses.dataclass(frozen=True)
class DissectParams:
    """No parameters: the units come from the spec's ``erase.units``."""


def dissect_erase(
    G: Generator, inputs: EditInputs, p: DissectParams, step: StepCallback | None = None
) -> Delta:
    """Baseline: ablate the erased units at every position (GAN Dissection)."""
    t0 = time.perf_counter()
    units = list(inputs.units or [])
    state = G.state_dict()
    new = G.unit_ablation(inputs.info.name, units)
    dense = {n: (t - state[n]).cpu() for n, t in new.items()}
    problem = inputs.problem(G)
    ablated = inputs.split.values.clone()
    ablated[:, units] = 0
    with torch.no_grad():
        before = float(problem.loss(inputs.split.values))
        after = float(problem.loss(ablated))
    return Delta(
        inputs.info.name,
        "dissect-erase",
        dense=dense,
        loss_before=before,
        loss=after,
        seconds=time.perf_counter() - t0,
        units=units,
    )


#: Method name -> entry: every solver of :data:`rewrite.memory.solvers.SOLVERS`, then the
#: whole-model methods. The CLI's, the spec's and the app's choices.
METHODS: dict[str, Method] = {
    **SOLVERS,
    **registry(
        Method(
            "example-fit",
            ExampleFitParams,
            "the request re-applied on the samples where the rule fires most, the whole "
            "layer fitted in image space with an image-space preserve set (locality from "
            "the preserve terms, not from rank)",
            run=example_fit,
            not_here=True,
        ),
        Method(
            "gated",
            GatedParams,
            "example-fit's examples and preserve set, the whole layer fitted behind a gate on "
            "its keys (LDA, shut on {quantile:g} of the examples' band cells): the change "
            "applies only where the gate opens; saved as a delta file, not a checkpoint",
            run=gated_fit,
            not_here=True,
            weights_only=False,
        ),
        Method(
            "gated-pair",
            GatedPairParams,
            "gated on the edit's layer and the layer before it, both fitted together behind "
            "their own gates and kept at one share (where the one before has no grid of keys, "
            "gated alone with a gate per image); saved as a delta file, not a checkpoint",
            run=gated_pair_fit,
            not_here=True,
            weights_only=False,
        ),
        Method(
            "finetune-all",
            FinetuneAllParams,
            "baseline: every weight, pixel L1 to the pasted image",
            run=finetune_all,
            kinds=("copy-paste",),
        ),
        Method(
            "dissect-erase",
            DissectParams,
            "baseline: zero the erased units everywhere (GAN Dissection)",
            run=dissect_erase,
            kinds=("erase",),
        ),
    ),
}

#: The method a spec gets when it names none and its model has no entry below.
DEFAULT_METHOD = DEFAULT_SOLVER

#: Models whose default method was chosen on their own tuning frontier (issue 27): on the face
#: model's tuning edits (benchmarks/edits/tune/, samples 2000-2255, strength 1) ``gated-pair``
#: reaches a median goal reproduction of 0.099 and erase removal of 0.108 with every edit at
#: silent change <= 0.010, against ``gated``'s 0.160 and 0.071 (and example-fit's 0.64,
#: least-collateral's 0.82 before; benchmarks/FRONTIER.md §8, §15; its copy-paste goals drawn by
#: the first layer where it reaches them, §31). Its edits are saved as
#: delta files, not checkpoints. Other models keep ``least-collateral``: nothing was measured
#: on them, and the image-space methods render the generator's tail at every step (minutes at
#: 1024 px).
MODEL_DEFAULT_METHODS = {"dcgan-digiface64": "gated-pair"}


def default_method(model: str | None) -> str:
    """The method a spec for ``model`` (a zoo name or a checkpoint path) gets when it names
    none: :data:`MODEL_DEFAULT_METHODS`, else :data:`DEFAULT_METHOD`."""
    return MODEL_DEFAULT_METHODS.get(model or "", DEFAULT_METHOD)


def method_params(name: str, overrides: dict | None = None):
    """The parameter dataclass of method ``name`` with ``overrides`` applied (ValueError
    naming unknown ones)."""
    return METHODS[name].make_params(overrides)


def method_param_problems(name: str, overrides: dict) -> list[str]:
    """Problems with ``overrides`` for method ``name`` (unknown names, wrong types, limits)."""
    return METHODS[name].param_problems(overrides)


def _param_limits() -> dict[str, float]:
    limits: dict[str, float] = {}
    for entry in METHODS.values():
        for key, limit in entry.limits().items():
            assert limits.setdefault(key, limit) == limit, (entry.name, key)
    return limits


#: Parameter name -> upper bound, over every method (read from the params' field metadata;
#: a name has the same bound in every method that takes it).
PARAM_LIMITS: dict[str, float] = _param_limits()
