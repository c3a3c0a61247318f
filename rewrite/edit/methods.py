"""Edit methods by name: the constrained solvers and the paper's baselines.

``METHODS`` maps a name to a :class:`Method` (parameter dataclass, function,
which edit kinds it serves). The constrained solvers and ``finetune-layer``
come from :data:`rewrite.memory.solvers.SOLVERS`; two baselines need the whole
model and live here:

* ``finetune-all``: every generator weight, Adam on the pixel L1 between the
  model's image and the pasted image inside the paste box (copy-paste only);
* ``dissect-erase``: zero the erased units everywhere (GAN-Dissection unit
  ablation; erase only).

Each method takes ``(G, inputs, params)`` and returns a :class:`Delta`; the
model is never modified.
"""

from __future__ import annotations

import dataclasses
import math
import difflib
import time
from typing import TYPE_CHECKING, Callable

import torch
from torch.func import functional_call

from ..memory.solvers import DEFAULT_SOLVER, SOLVERS, make_params, report_step
from .delta import Delta, LowRank
from .example_fit import ExampleFitParams, example_fit

if TYPE_CHECKING:
    from ..models.base import Generator
    from .goals import EditInputs


@dataclasses.dataclass(frozen=True)
class Method:
    """A registry entry."""

    params: type
    run: Callable[["Generator", "EditInputs", object], Delta]
    kinds: tuple[str, ...]
    constrained: bool
    summary: str


def _layer_solver(name: str):
    def run(G: "Generator", inputs: "EditInputs", params) -> Delta:
        problem = inputs.problem(G)
        res = SOLVERS[name].solve(problem, params)
        f = problem.layer
        weight_name = G.weight_name(inputs.info.name)
        if inputs.goal_rows is not None:          # report the goal's loss, not the preserve rows'
            own = inputs.problem(G, goal_only=True)
            res.loss_before = own.loss_of_weight(f.weight)
            res.loss = own.loss_of_weight(f.weight + res.delta)
        if res.lam is not None:
            return Delta(inputs.info.name, name,
                         low_rank=LowRank(weight_name, res.lam.detach().cpu(),
                                          problem.D.detach().cpu(), f.in_axis, f.out_axis),
                         loss_before=res.loss_before, loss=res.loss, seconds=res.seconds,
                         steps=res.steps, collateral=res.collateral)
        return Delta(inputs.info.name, name, dense={weight_name: res.delta.detach().cpu()},
                     loss_before=res.loss_before, loss=res.loss, seconds=res.seconds,
                     steps=res.steps, collateral=res.collateral)
    return run


@dataclasses.dataclass(frozen=True)
class FinetuneAllParams:
    """Adam on every generator weight; ``lr`` is absolute (the usual GAN training scale)."""

    steps: int = 200
    lr: float = 2e-4


def finetune_all(G: "Generator", inputs: "EditInputs", p: FinetuneAllParams) -> Delta:
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
    for step in range(p.steps):
        report_step(step, p.steps)
        opt.zero_grad(set_to_none=True)
        loss = loss_of(params)
        if float(loss.detach()) < best[0]:            # the iterate before this step
            best = (float(loss.detach()), {n: t.detach().clone() for n, t in params.items()})
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = float(loss_of(params))
    if last < best[0]:
        best = (last, {n: t.detach().clone() for n, t in params.items()})
    after, chosen = best
    dense = {n: (chosen[n] - base[n]).cpu() for n in base}
    return Delta(inputs.info.name, "finetune-all", dense=dense, loss_before=before, loss=after,
                 loss_kind="pixel-L1", seconds=time.perf_counter() - t0, steps=p.steps)


@dataclasses.dataclass(frozen=True)
class DissectParams:
    """No parameters: the units come from the spec's ``erase.units``."""


def dissect_erase(G: "Generator", inputs: "EditInputs", p: DissectParams) -> Delta:
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
    return Delta(inputs.info.name, "dissect-erase", dense=dense, loss_before=before, loss=after,
                 seconds=time.perf_counter() - t0, units=units)


#: Method name -> entry: every solver of :data:`rewrite.memory.solvers.SOLVERS` (both edit
#: kinds), then the whole-model baselines. The CLI's, the spec's and the app's choices.
METHODS: dict[str, Method] = {
    **{name: Method(s.params, _layer_solver(name), ("copy-paste", "erase"), s.constrained,
                    s.summary) for name, s in SOLVERS.items()},
    "example-fit": Method(ExampleFitParams, example_fit, ("copy-paste", "erase"), False,
                          "the request re-applied on the samples where the rule fires most, "
                          "the whole layer fitted in image space with an image-space preserve "
                          "set (locality from the preserve terms, not from rank)"),
    "finetune-all": Method(FinetuneAllParams, finetune_all, ("copy-paste",), False,
                           "baseline: every weight, pixel L1 to the pasted image"),
    "dissect-erase": Method(DissectParams, dissect_erase, ("erase",), False,
                            "baseline: zero the erased units everywhere (GAN Dissection)"),
}

#: The method a spec gets when it names none and its model has no entry below.
DEFAULT_METHOD = DEFAULT_SOLVER

#: Models whose default method was chosen on their own tuning frontier (issue 27): the face
#: model's tuning edits (benchmarks/edits/tune/, samples 2000-2255) put ``example-fit`` ahead
#: of ``least-collateral`` at silent change <= 0.010 (benchmarks/FRONTIER.md). Other models
#: keep ``least-collateral``: nothing was measured on them, and ``example-fit`` renders the
#: generator's tail at every step, which costs minutes on a 1024-px model.
MODEL_DEFAULT_METHODS = {"dcgan-digiface64": "example-fit"}


def default_method(model: str | None) -> str:
    """The method a spec for ``model`` (a zoo name or a checkpoint path) gets when it names
    none: :data:`MODEL_DEFAULT_METHODS`, else :data:`DEFAULT_METHOD`."""
    return MODEL_DEFAULT_METHODS.get(model or "", DEFAULT_METHOD)


def method_params(name: str, overrides: dict | None = None):
    """The parameter dataclass of method ``name`` with ``overrides`` applied."""
    if name in SOLVERS:
        return make_params(name, overrides)
    cls = METHODS[name].params
    return cls(**(overrides or {}))


#: Upper bounds of solver parameters (an edit must finish: steps bound the time).
PARAM_LIMITS = {"examples": 256, "silent": 256, "keep": 256, "silent_share": 1.0, "null_energy": 0.999,
                "steps": 100_000, "active_set_iters": 1000, "ridge_search": 12,
                "project_every": 100_000, "lr": 10.0}


def method_param_problems(name: str, overrides: dict) -> list[str]:
    """Problems with ``overrides`` for method ``name`` (unknown names, wrong types)."""
    cls = METHODS[name].params
    problems = []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, val in overrides.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), sorted(fields), n=1, cutoff=0.6)
            if close:
                problems.append(f"solver {name!r} has no parameter {key!r}; did you mean "
                                f"{close[0]!r}?")
                continue
            problems.append(f"solver {name!r} has no parameter {key!r}; it takes "
                            f"{sorted(fields) or 'none'}")
            continue
        want = type(fields[key].default)
        ok = isinstance(val, want) and not (want is not bool and isinstance(val, bool))
        if want is float and isinstance(val, int) and not isinstance(val, bool):
            ok = True
        if not ok:
            problems.append(f"solver parameter {key!r} must be a {want.__name__}, got {val!r}")
        elif want is float and not math.isfinite(val):
            problems.append(f"solver parameter {key!r} must be a finite number, got {val!r}")
        elif want in (int, float) and val < 0:
            problems.append(f"solver parameter {key!r} must not be negative, got {val!r}")
        elif want in (int, float) and val > PARAM_LIMITS.get(key, float("inf")):
            problems.append(f"solver parameter {key!r} must be at most {PARAM_LIMITS[key]:g}, "
                            f"got {val!r}")
    return problems
