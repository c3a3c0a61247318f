"""Several edits of one layer solved together, in closed form, without interfering.

Applying edits one after another lets the second one move the first one's
keys away from their goal (they share the layer's weight): a second edit of
the eyes repaints the first one's sunglasses. Solving them together (as MEMIT
and UCE do for many facts) avoids that: one least-squares problem holds every
edit's goal rows, so each edit's keys (and goal) are a preserve set for the
others. The update is ``ΔW = Σ_i Λ_i D_i`` over each edit's own directions
(with each edit's "not here" rows in the problem too), solved for all ``Λ_i`` at once with
the same collateral penalty as the single-edit solver; the collateral budget
is the sum of the edits' budgets (each edit is allowed what it would be
allowed alone).

The answer is one :class:`~rewrite.edit.delta.Delta` per edit (``Λ_i``, ``D_i``),
so each keeps its own strength and can be removed on its own. Edits on
different layers are solved one layer at a time, in order (see
:meth:`rewrite.edit.session.Rewriter.apply_together`).

Usage::

    deltas = solve_together(G, [spec_a, spec_b], [stats, stats])
"""

from __future__ import annotations

import time

import torch

from ..memory.registry import StepCallback
from ..memory.solvers import EditProblem
from ..memory.update import low_rank_delta
from ..models.base import Generator
from ..utils.errors import EditError
from .delta import Delta, LowRank
from .goals import build_inputs
from .layer_stats import LayerStats
from .methods import METHODS, method_params
from .spec import EditSpec

#: Solvers that can take several edits in one closed-form problem (``joint`` in the registry).
JOINT_SOLVERS = tuple(name for name, m in METHODS.items() if m.joint)


def solve_together(
    G: Generator, specs: list[EditSpec], stats: LayerStats, step: StepCallback | None = None
) -> list[Delta]:
    """Solve edits of one layer jointly; returns one delta per spec (the model is not changed).

    Args:
        G: the generator (current weights).
        specs: at least two validated specs of the same layer, all naming the same
            closed-form solver (:data:`JOINT_SOLVERS`) with the same parameters.
        stats: the layer's statistics.
        step: called as ``step(step, steps)`` by an iterative solve; may raise to stop it
            (None: no callback).
    """
    layer = specs[0].layer
    if any(s.layer != layer for s in specs):
        raise EditError("edits solved together must be on the same layer")
    solver, params = specs[0].solver, specs[0].solver_params
    if solver not in JOINT_SOLVERS:
        raise EditError(
            f"edits on the same layer are solved together in closed form; use one "
            f"of {', '.join(JOINT_SOLVERS)} (the spec names {solver!r})"
        )
    if any((s.solver, s.solver_params) != (solver, params) for s in specs):
        raise EditError(
            "edits solved together must name the same solver and parameters; "
            + ", ".join(f"{s.name or i}: {s.solver} {s.solver_params}" for i, s in enumerate(specs))
        )
    t0 = time.perf_counter()
    inputs = [build_inputs(G, s, stats) for s in specs]
    Ds = [inp.D for inp in inputs]
    samples = [
        i
        for spec, inp in zip(specs, inputs, strict=True)
        for i in inp.goal_samples + [sel.sample for sel in spec.preserve]
    ]
    with torch.no_grad():
        split = G.split(G.latents(samples), layer)
    f = G.layer_function(split)
    dtype = split.keys.dtype
    D = torch.cat(Ds).to(dtype)
    problem = EditProblem(
        f,
        split.keys,
        torch.cat([x.goal for x in inputs]),
        torch.cat([x.mask for x in inputs]),
        D,
        inputs[0].moment,
        on_step=step,
    )
    entry = METHODS[solver]
    assert entry.solve is not None, solver  # joint entries are layer solvers
    p = entry.joint_params(method_params(solver, params), len(specs))  # each edit keeps its
    res = entry.solve(problem, p)  # own budget
    weight_name = G.weight_name(layer)
    deltas, start = [], 0
    total = f.weight + res.delta
    for spec, inp, d in zip(specs, inputs, Ds, strict=True):
        r = d.shape[0]
        lam = res.lam[..., start : start + r].detach().cpu()
        start += r
        own = inp.problem(G, goal_only=True)
        low = LowRank(weight_name, lam, d.to(dtype).cpu(), f.in_axis, f.out_axis)
        delta = Delta(
            layer,
            f"{solver} (together)",
            low_rank=low,
            loss_before=own.loss_of_weight(own.layer.weight),
            loss=own.loss_of_weight(total.to(own.layer.weight)),
            seconds=(time.perf_counter() - t0) / len(specs),
            collateral=problem.collateral(low_rank_delta(lam, low.D, f.in_axis, f.out_axis)),
            spec=spec.to_json(),
            strength=spec.strength,
        )
        deltas.append(delta)
    return deltas
