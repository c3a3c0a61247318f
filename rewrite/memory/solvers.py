"""Solvers for ``Λ`` in ``W1 = W0 + Λ Dᵀ``, and the unconstrained layer baseline.

Every solver takes an :class:`EditProblem` (tensors and the layer's functions,
no model) and a frozen parameter dataclass, and returns a :class:`SolveResult`
with the weight change, the final loss and the time taken. The loss reported
by all of them is the same: the masked mean L1 distance between the layer's
true (non-linear) output and the goal values, measured with the final weight.

``SOLVERS`` maps names to :class:`~.registry.Method` entries (the one description
of each method: its parameter class with limits in field metadata, its function,
the edit kinds it serves, what it can do, and a summary built from its defaults):

* ``adam``: the paper's schedule (Adam on W, projection onto span(D) every
  ``project_every`` steps and after the last step); it returns the best
  projected iterate, so its loss never ends above the starting loss;
* ``closed-form``: ridge least squares for Λ at the pre-activation output;
  under a ReLU, goals that are clipped to zero become "at most
  min(current, 0)" (an active-set loop adds the violated ones); four ridges
  are tried and the best by the true loss is kept;
* ``closed-form+refine``: the closed form, then a short Adam on Λ directly
  (every iterate stays in span(D)) on the full non-linear loss;
* ``finetune-layer``: the baseline, Adam on the whole weight, no constraint
  (the best iterate is returned);
* ``least-collateral`` (the default): the closed form, but the penalty on Λ is
  the *predicted collateral* ``tr(ΔW C ΔWᵀ)`` (the mean squared change of the
  layer's linear output over all keys the model sees, ``C = E[k kᵀ]``) instead
  of ``|Λ|²``. Directions that many keys respond to cost more, so a rank-r
  update spends its change on what is specific to the context. ``weight``
  sets the penalty relative to the goal's own scale and is raised until the
  predicted collateral (relative to ``tr(W0 C W0ᵀ)``) is within ``budget``.

An iterative solver calls ``problem.step(step, steps)`` at every step: the problem's
``on_step`` callback, which may raise to stop the solve (a cancelled edit) or record
progress. Nothing else carries it: a session passes its reporting callback along
(:meth:`rewrite.edit.session.Rewriter.reporting`).

Step sizes: the paper's lr 0.05 assumes weights rescaled at run time (stored
weights of magnitude about 1). With ``lr_relative`` (default) the step is
``lr · std(W0)``, which gives the same relative step on plain weights (DCGAN:
std 0.044, step 0.0022) and on rescaled ones.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from ..utils.errors import EditError
from .layer import ACTIVATIONS, LayerFunction
from .registry import (
    MAX_ACTIVE_SET_ITERS,
    MAX_LR,
    MAX_RIDGE_SEARCH,
    MAX_STEPS,
    Method,
    StepCallback,
    param,
    registry,
)
from .update import (
    as_matrix,
    lambda_of,
    lambda_shape,
    low_rank_delta,
    project_onto_span,
)


@dataclasses.dataclass
class EditProblem:
    """What a solver sees.

    Attributes:
        layer: the layer's functions and current weight W0.
        keys: goal keys [N, C_in, h, w] (the full key maps of the goal samples).
        goal: goal values [N, C_out, H, W].
        mask: loss weights [N, 1, H, W] (1 inside the pasted box, 0 elsewhere).
        D: directions [r, C_in] with orthonormal rows (unused by ``finetune-layer``).
        moment: the layer's key second moment ``C = E[k kᵀ]`` [C_in, C_in]; needed by
            ``least-collateral`` and by :meth:`collateral`.
        on_step: called as ``on_step(step, steps)`` at every step of an iterative solve
            (:meth:`step`); it may raise to stop the solve. None: nothing is called.
    """

    layer: LayerFunction
    keys: torch.Tensor
    goal: torch.Tensor
    mask: torch.Tensor
    D: torch.Tensor
    moment: torch.Tensor | None = None
    on_step: StepCallback | None = None

    def __post_init__(self):
        n, _, h, w = self.goal.shape
        assert self.keys.shape[0] == n, (tuple(self.keys.shape), tuple(self.goal.shape))
        assert self.mask.shape == (n, 1, h, w), (tuple(self.mask.shape), tuple(self.goal.shape))
        assert self.D.ndim == 2 and self.D.shape[1] == self.keys.shape[1], tuple(self.D.shape)
        if float(self.mask.sum()) <= 0:
            raise ValueError("the loss mask is empty")

    def step(self, step: int, steps: int) -> None:
        """Report step ``step`` of ``steps`` to :attr:`on_step` (which may raise to stop)."""
        if self.on_step is not None:
            self.on_step(step, steps)

    def loss(self, values: torch.Tensor) -> torch.Tensor:
        """Masked mean L1 between ``values`` [N, C_out, H, W] and the goal (a scalar)."""
        err = (values - self.goal).abs() * self.mask
        return err.sum() / (self.mask.sum() * self.goal.shape[1])

    def loss_of_weight(self, weight: torch.Tensor) -> float:
        """The loss with the layer's weight replaced by ``weight``."""
        with torch.no_grad():
            return float(self.loss(self.layer.forward(self.keys, weight)))

    def collateral(self, delta: torch.Tensor) -> float:
        """Predicted collateral of a weight change: ``tr(ΔW C ΔWᵀ) / tr(W0 C W0ᵀ)``.

        The mean squared change of the layer's linear output over all keys, relative to
        the output itself; nan without ``moment``.
        """
        if self.moment is None:
            return float("nan")
        f = self.layer
        c = self.moment.to(torch.float64)
        dw = as_matrix(delta, f.in_axis, f.out_axis).to(torch.float64).reshape(-1, c.shape[0])
        w0 = as_matrix(f.weight, f.in_axis, f.out_axis).to(torch.float64).reshape(-1, c.shape[0])
        base = float(torch.einsum("ai,ij,aj->", w0, c, w0))
        return float(torch.einsum("ai,ij,aj->", dw, c, dw)) / base if base > 0 else float("nan")


@dataclasses.dataclass
class SolveResult:
    """A solver's answer.

    Attributes:
        delta: the weight change ΔW, in the weight's layout.
        lam: ``Λ`` [out, rest..., r] for constrained solvers; None for unconstrained ones.
        loss_before: the loss with W0.
        loss: the loss with W0 + ΔW (after any final projection).
        seconds: wall time of the solve.
        steps: optimiser steps taken (0 for a pure closed form).
        collateral: predicted collateral (:meth:`EditProblem.collateral`), nan if unknown.
    """

    delta: torch.Tensor
    lam: torch.Tensor | None
    loss_before: float
    loss: float
    seconds: float
    steps: int
    collateral: float = float("nan")

    @classmethod
    def of(
        cls,
        problem: EditProblem,
        delta: torch.Tensor,
        lam: torch.Tensor | None,
        loss_before: float,
        started: float,
        steps: int,
        collateral: float | None = None,
    ) -> SolveResult:
        """The result for ``delta`` (and ``Λ``) on ``problem``: its loss with ``W0 + ΔW``,
        the seconds since ``started`` (a ``time.perf_counter()`` value) and its predicted
        collateral (computed unless given)."""
        return cls(
            delta,
            lam,
            loss_before,
            problem.loss_of_weight(problem.layer.weight + delta),
            time.perf_counter() - started,
            steps,
            problem.collateral(delta) if collateral is None else collateral,
        )


# -- parameters -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AdamParams:
    """Paper schedule. ``lr`` is relative to std(W0) when ``lr_relative``."""

    steps: int = param(2001, MAX_STEPS)
    lr: float = param(0.05, MAX_LR)
    lr_relative: bool = True
    project_every: int = param(10, MAX_STEPS)


@dataclasses.dataclass(frozen=True)
class ClosedFormParams:
    """``ridge`` is relative to the mean diagonal of JᵀJ; ``ridge_search`` tries that many
    ridges, each 10x the last, and keeps the best by the true loss (1: no search);
    ``active_set_iters`` bounds the inequality loop for clipped (ReLU) goals."""

    ridge: float = 1e-3
    ridge_search: int = param(4, MAX_RIDGE_SEARCH)
    active_set_iters: int = param(20, MAX_ACTIVE_SET_ITERS)


@dataclasses.dataclass(frozen=True)
class RefineParams:
    """Closed form, then ``steps`` of Adam on Λ (lr relative to std(W0) when ``lr_relative``).

    The closed form's ``ridge`` and ``ridge_search`` are as in :class:`ClosedFormParams`;
    a larger ``ridge`` with ``ridge_search`` 1 forces a smaller weight change (a weaker
    edit with less collateral change).
    """

    ridge: float = 1e-3
    ridge_search: int = param(4, MAX_RIDGE_SEARCH)
    active_set_iters: int = param(20, MAX_ACTIVE_SET_ITERS)
    steps: int = param(100, MAX_STEPS)
    lr: float = param(0.05, MAX_LR)
    lr_relative: bool = True


@dataclasses.dataclass(frozen=True)
class LeastCollateralParams:
    """``weight``: the lightest collateral penalty tried, relative to the goal's scale (the
    strongest edit allowed); ``budget``: the largest predicted collateral accepted (per
    edit: edits solved together share the sum). The penalty grows by √2 from ``weight``
    until the predicted collateral is within ``budget`` (a very large ``budget`` keeps
    ``weight`` as it is). ``active_set_iters`` bounds the inequality loop for clipped goals."""

    weight: float = 0.01
    budget: float = param(0.01, per_edit=True)
    active_set_iters: int = param(20, MAX_ACTIVE_SET_ITERS)


@dataclasses.dataclass(frozen=True)
class FinetuneLayerParams:
    """Adam on the whole weight, no constraint."""

    steps: int = param(2001, MAX_STEPS)
    lr: float = param(0.05, MAX_LR)
    lr_relative: bool = True


def _step_size(weight: torch.Tensor, lr: float, relative: bool) -> float:
    return lr * float(weight.float().std()) if relative else lr


# -- solvers ----------------------------------------------------------------


def _adam_on_weight(
    problem: EditProblem, lr: float, steps: int, project_every: int | None
) -> torch.Tensor:
    """Adam on the whole weight, projected onto span(D) every ``project_every`` steps
    (never when None). Returns the best weight seen: among the projected iterates
    when projecting, else among all iterates; W0 counts, so the loss never rises."""
    f, w0 = problem.layer, problem.layer.weight
    weight = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([weight], lr=lr)
    best = (problem.loss_of_weight(w0), w0.clone())
    for step in range(steps):
        problem.step(step, steps)
        opt.zero_grad(set_to_none=True)
        loss = problem.loss(f.forward(problem.keys, weight))
        if not project_every and float(loss.detach()) < best[0]:  # the iterate before the step
            best = (float(loss.detach()), weight.detach().clone())
        loss.backward()
        opt.step()
        if project_every and (step + 1) % project_every == 0:
            with torch.no_grad():
                weight.copy_(project_onto_span(weight, w0, problem.D, f.in_axis, f.out_axis))
            current = problem.loss_of_weight(weight.detach())
            if current < best[0]:
                best = (current, weight.detach().clone())
    last = weight.detach()
    if project_every:
        last = project_onto_span(last, w0, problem.D, f.in_axis, f.out_axis)
    if problem.loss_of_weight(last) < best[0]:
        best = (problem.loss_of_weight(last), last.clone())
    return best[1]


def solve_adam(problem: EditProblem, p: AdamParams = AdamParams()) -> SolveResult:
    """The paper's optimiser: Adam on W, projected onto span(D) every few steps and at the end."""
    t0 = time.perf_counter()
    f, w0 = problem.layer, problem.layer.weight
    ax = (f.in_axis, f.out_axis)
    loss_before = problem.loss_of_weight(w0)
    weight = _adam_on_weight(problem, _step_size(w0, p.lr, p.lr_relative), p.steps, p.project_every)
    final = project_onto_span(weight, w0, problem.D, *ax)
    lam = lambda_of(final, w0, problem.D, *ax)
    delta = low_rank_delta(lam, problem.D, *ax)
    return SolveResult.of(problem, delta, lam, loss_before, t0, p.steps)


def _goal_targets(f: LayerFunction, goal: torch.Tensor, z0: torch.Tensor):
    """Targets for the pre-activation ``z = scale·pre + shift``.

    Returns ``(target, upper)``: where ``upper`` is True the goal is clipped by a ReLU
    and ``target`` is an upper bound (``min(z0, 0)``); elsewhere it is an equality.
    """
    v = goal / f.gain
    upper = torch.zeros_like(v, dtype=torch.bool)
    if f.activation == "relu":
        upper = v <= 0
        target = torch.where(upper, torch.minimum(z0, torch.zeros_like(z0)), v)
    elif f.activation == "leaky_relu":
        target = torch.where(v >= 0, v, v / f.negative_slope)
    elif f.activation == "tanh":
        target = torch.atanh(v.clamp(-0.999, 0.999))
    elif f.activation == "identity":
        target = v
    else:
        raise ValueError(f"unknown activation {f.activation!r}; known: {ACTIVATIONS}")
    return target, upper


def _least_squares_system(problem: EditProblem):
    """``(J [out, P, q], b [out, P], upper [out, P], m [P], shape)`` of the closed form."""
    f, D = problem.layer, problem.D
    w0, ax = f.weight, (f.in_axis, f.out_axis)
    shape = lambda_shape(w0, *ax, D.shape[0])  # [out, rest..., r]
    c_out, q = shape[0], int(torch.tensor(shape[1:]).prod())
    sel = problem.mask[:, 0] > 0  # [N, H, W]
    m = problem.mask[:, 0][sel].to(torch.float64)  # [P]

    def masked(x):  # [N, C, H, W] -> [C, P]
        return x.permute(1, 0, 2, 3)[:, sel]

    with torch.no_grad():
        scale = torch.broadcast_to(f.scale, problem.goal.shape)
        z0 = f.scale * f.linear(problem.keys, w0) + f.shift
        # Response of every masked position to entry j of Λ[o], for all o at once.
        cols = []
        for j in range(q):
            basis = torch.zeros(c_out, q, dtype=w0.dtype, device=w0.device)
            basis[:, j] = 1
            dw = low_rank_delta(basis.reshape(shape), D, *ax)
            cols.append(masked(scale * f.linear(problem.keys, dw)).to(torch.float64))
        J = torch.stack(cols, -1)  # [out, P, q]
        target, upper = _goal_targets(f, problem.goal, z0)
        b = masked(target - z0).to(torch.float64)  # [out, P]
    return J, b, masked(upper), m, shape


def _solve_system(
    J, b, upper, m, ridge: float, active_set_iters: int, penalty: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-channel ridge solve with the one-sided clipped rows; λ [out, q] float64.

    The penalty is ``ρ λᵀ P λ`` with ``P`` = ``penalty`` [q, q] (identity when None),
    ``ρ = ridge · mean diag(JᵀJ) / mean diag(P)``.
    """
    q = J.shape[-1]
    eye = torch.eye(q, dtype=torch.float64, device=J.device)
    if penalty is not None:
        eye = penalty.to(torch.float64)
    rho = (
        ridge * float((J * J * m[None, :, None]).sum(1).mean()) / float(torch.diagonal(eye).mean())
        + 1e-12
    )
    # Clipped goals enter as a one-sided penalty max(0, z - bound)²: solve, put the
    # violated ones in, solve again, until the set of violated rows is stable.
    active = torch.zeros_like(upper)
    for _ in range(max(1, active_set_iters)):
        w = m[None] * (~upper | active)  # [out, P]
        A = torch.einsum("opq,op,opr->oqr", J, w, J) + rho * eye
        # A floor on the diagonal keeps A invertible when both the data term and the
        # penalty are singular (edits solved together with the same rule: equal columns).
        floor = 1e-9 * torch.diagonal(A, dim1=-2, dim2=-1).abs().mean(-1).clamp_min(1e-300)
        A = A + floor[:, None, None] * torch.eye(q, dtype=torch.float64, device=J.device)
        rhs = torch.einsum("opq,op,op->oq", J, w, b)
        try:
            lam = torch.linalg.solve(A, rhs)  # [out, q]
        except torch.linalg.LinAlgError as e:
            raise EditError(
                f"the edit's least-squares system could not be solved ({e}); "
                "raise the solver's ridge, or lower the rank"
            ) from None
        new_active = upper & (torch.einsum("opq,oq->op", J, lam) > b + 1e-9)
        if torch.equal(new_active | active, active):
            break
        active = active | new_active
    return lam


def closed_form_lambda(
    problem: EditProblem, ridge: float = 1e-3, active_set_iters: int = 20, ridge_search: int = 1
) -> torch.Tensor:
    """Ridge least-squares ``Λ`` [out, rest..., r] at the pre-activation output.

    Output channel ``o`` depends only on ``Λ[o]``, so the solve splits into one small
    system per channel: with ``J_o`` [P, q] the response of the masked positions to
    each entry of ``Λ[o]`` (q = rest·r), solve
    ``min Σ_p m_p (z0 + J_o λ - t)_p² + ρ |λ|²`` in float64, where clipped goals
    only enter (as "at most their bound") once the solution violates them. ``ρ`` is
    ``ridge`` times the mean diagonal of ``JᵀJ``.

    With ``ridge_search`` = k > 1 the ridges ``ridge · 10^i`` (i < k) are all solved
    and the one whose Λ gives the lowest true (non-linear) loss is kept: a layer
    whose tail depends on the weight (StyleGAN2's demodulation) is overshot by a
    weak ridge, a plain layer is not.
    """
    J, b, upper, m, shape = _least_squares_system(problem)
    f = problem.layer
    best = None
    for i in range(max(1, ridge_search)):
        lam = _solve_system(J, b, upper, m, ridge * 10**i, active_set_iters)
        lam = lam.to(f.weight.dtype).reshape(shape)
        if ridge_search <= 1:
            return lam
        loss = problem.loss_of_weight(
            f.weight + low_rank_delta(lam, problem.D, f.in_axis, f.out_axis)
        )
        if best is None or loss < best[0]:
            best = (loss, lam)
    assert best is not None  # ridge_search > 1: the loop ran
    return best[1]


def solve_closed_form(
    problem: EditProblem, p: ClosedFormParams = ClosedFormParams()
) -> SolveResult:
    """Least squares for Λ at the pre-activation output (see :func:`closed_form_lambda`)."""
    t0 = time.perf_counter()
    f = problem.layer
    loss_before = problem.loss_of_weight(f.weight)
    lam = closed_form_lambda(problem, p.ridge, p.active_set_iters, p.ridge_search)
    delta = low_rank_delta(lam, problem.D, f.in_axis, f.out_axis)
    return SolveResult.of(problem, delta, lam, loss_before, t0, 0)


def solve_closed_form_refine(problem: EditProblem, p: RefineParams = RefineParams()) -> SolveResult:
    """Closed form, then Adam on Λ itself (the constraint holds at every step)."""
    t0 = time.perf_counter()
    f, w0 = problem.layer, problem.layer.weight
    ax = (f.in_axis, f.out_axis)
    loss_before = problem.loss_of_weight(w0)
    lam = closed_form_lambda(problem, p.ridge, p.active_set_iters, p.ridge_search)
    lam = lam.clone().requires_grad_(True)
    opt = torch.optim.Adam([lam], lr=_step_size(w0, p.lr, p.lr_relative))
    best = (float("inf"), lam.detach().clone())
    for step in range(p.steps):
        problem.step(step, p.steps)
        opt.zero_grad(set_to_none=True)
        loss = problem.loss(f.forward(problem.keys, w0 + low_rank_delta(lam, problem.D, *ax)))
        if float(loss.detach()) < best[0]:  # the loss of the iterate before this step
            best = (float(loss.detach()), lam.detach().clone())
        loss.backward()
        opt.step()
    final = problem.loss_of_weight(w0 + low_rank_delta(lam.detach(), problem.D, *ax))
    if final < best[0]:
        best = (final, lam.detach().clone())
    lam_best = best[1]
    delta = low_rank_delta(lam_best, problem.D, *ax)
    return SolveResult.of(problem, delta, lam_best, loss_before, t0, p.steps)


def collateral_penalty(
    D: torch.Tensor, moment: torch.Tensor, shape: tuple[int, ...]
) -> torch.Tensor:
    """The matrix ``P`` [q, q] with ``λᵀ P λ`` = the collateral ``tr(ΔW C ΔWᵀ)`` of one
    output channel's Λ (q = rest·r, r last): ``I_rest ⊗ (D C Dᵀ)``."""
    d = D.to(torch.float64)
    g = d @ moment.to(torch.float64).to(d.device) @ d.T  # [r, r]
    rest = 1
    for n in shape[1:-1]:
        rest *= int(n)
    return torch.kron(torch.eye(rest, dtype=torch.float64, device=d.device), g)


def solve_least_collateral(
    problem: EditProblem, p: LeastCollateralParams = LeastCollateralParams()
) -> SolveResult:
    """Least squares for Λ at the pre-activation output, penalised by the predicted
    collateral ``tr(ΔW C ΔWᵀ)`` (see the module docstring); needs ``problem.moment``.

    The penalty weight starts at ``p.weight`` and grows by √2 (at most 47 times) until the
    predicted collateral is within ``p.budget``: an edit whose context keys are common
    (a broad rule) is made gentler instead of repainting every image.
    """
    if problem.moment is None:
        raise ValueError("the least-collateral solver needs the layer's key second moment")
    t0 = time.perf_counter()
    f = problem.layer
    loss_before = problem.loss_of_weight(f.weight)
    J, b, upper, m, shape = _least_squares_system(problem)
    penalty = collateral_penalty(problem.D, problem.moment, shape)
    weight = p.weight
    for step in range(48):
        problem.step(step, 48)
        lam = _solve_system(J, b, upper, m, weight, p.active_set_iters, penalty)
        lam = lam.to(f.weight.dtype).reshape(shape)
        delta = low_rank_delta(lam, problem.D, f.in_axis, f.out_axis)
        collateral = problem.collateral(delta)
        if not collateral > p.budget:
            break
        weight *= 2**0.5
    return SolveResult.of(problem, delta, lam, loss_before, t0, 0, collateral)


def solve_finetune_layer(
    problem: EditProblem, p: FinetuneLayerParams = FinetuneLayerParams()
) -> SolveResult:
    """Baseline: Adam on the whole weight of the layer, no constraint (D is ignored)."""
    t0 = time.perf_counter()
    w0 = problem.layer.weight
    loss_before = problem.loss_of_weight(w0)
    delta = _adam_on_weight(problem, _step_size(w0, p.lr, p.lr_relative), p.steps, None) - w0
    return SolveResult.of(problem, delta, None, loss_before, t0, p.steps)


# -- the registry -------------------------------------------------------------

#: Layer solver name -> entry. The CLI's and the spec's choices come from here (through
#: :data:`rewrite.edit.methods.METHODS`, which adds the whole-model methods).
SOLVERS: dict[str, Method] = registry(
    Method(
        "least-collateral",
        LeastCollateralParams,
        "least squares for Λ penalised by the predicted collateral tr(ΔW C ΔWᵀ), within "
        "a collateral budget (default)",
        solve=solve_least_collateral,
        constrained=True,
        joint=True,
        not_here=True,
        budgeted=True,
    ),
    Method(
        "closed-form+refine",
        RefineParams,
        "ridge least squares for Λ, then {steps} Adam steps on Λ",
        solve=solve_closed_form_refine,
        constrained=True,
        not_here=True,
    ),
    Method(
        "closed-form",
        ClosedFormParams,
        "ridge least squares for Λ at the pre-activation",
        solve=solve_closed_form,
        constrained=True,
        joint=True,
        not_here=True,
    ),
    Method(
        "adam",
        AdamParams,
        "the paper's schedule: {steps} Adam steps on W, projected onto span(D)",
        solve=solve_adam,
        constrained=True,
        not_here=True,
    ),
    Method(
        "finetune-layer",
        FinetuneLayerParams,
        "baseline: the same layer, no constraint",
        solve=solve_finetune_layer,
        not_here=True,
    ),
)

#: The solver used when a spec names none (benchmarks/edit_benchmark.py measures why).
DEFAULT_SOLVER = "least-collateral"


def solve(problem: EditProblem, name: str, overrides: dict | None = None) -> SolveResult:
    """Run solver ``name`` (see ``SOLVERS``) with parameter ``overrides``."""
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; known: {', '.join(SOLVERS)}")
    entry = SOLVERS[name]
    assert entry.solve is not None, name  # every SOLVERS entry is a layer solver
    return entry.solve(problem, entry.make_params(overrides))
