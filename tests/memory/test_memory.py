"""The associative-memory maths on random layers: statistics, directions, the update, solvers."""

import numpy as np
import pytest
import torch

from rewrite.utils.errors import EditError
from rewrite.memory.directions import context_directions, inverse_sqrt, regularised
from rewrite.memory.solvers import SOLVERS, EditProblem, closed_form_lambda, solve
from rewrite.memory.stats import SecondMoment, UnitMoments
from rewrite.memory.update import as_matrix, lambda_of, low_rank_delta, project_onto_span
from rewrite.memory.layer import LayerFunction


def test_second_moment_matches_numpy_and_merges():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, 4, generator=g)
    rows = x.permute(0, 2, 3, 1).reshape(-1, 5).double().numpy()
    acc = SecondMoment(5, batch_dtype=torch.float64)
    acc.add_feature_map(x)
    assert np.allclose(acc.moment().numpy(), rows.T @ rows / len(rows), rtol=1e-12, atol=1e-14)
    assert np.allclose(acc.mean().numpy(), rows.mean(0))
    halves = SecondMoment(5, batch_dtype=torch.float64)
    halves.add_feature_map(x[:1])
    other = SecondMoment(5, batch_dtype=torch.float64)
    other.add_feature_map(x[1:])
    halves.merge(other)
    assert halves.count == acc.count
    assert torch.allclose(halves.moment(), acc.moment(), rtol=1e-12)
    restored = SecondMoment.from_state_dict(acc.state_dict())
    assert torch.equal(restored.moment(), acc.moment()) and restored.count == acc.count
    fast = SecondMoment(5)                              # float32 batch products
    fast.add_feature_map(x)
    assert torch.allclose(fast.moment(), acc.moment(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        acc.merge(SecondMoment(4))


def test_unit_moments():
    x = torch.randn(2, 3, 5, 5)
    acc = UnitMoments(3, batch_dtype=torch.float64)
    acc.add_feature_map(x[:1])
    other = UnitMoments(3, batch_dtype=torch.float64)
    other.add_feature_map(x[1:])
    acc.merge(other)
    assert torch.allclose(acc.mean(), x.double().mean((0, 2, 3)))
    assert torch.allclose(acc.rms(), x.double().pow(2).mean((0, 2, 3)).sqrt())


def _moment(dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(200, dim, generator=g, dtype=torch.float64)
    return a.T @ a / 200, a


def test_inverse_sqrt_whitens():
    c, _ = _moment()
    w = inverse_sqrt(c, ridge=0)
    assert torch.allclose(w @ c @ w, torch.eye(6, dtype=torch.float64), atol=1e-9)


def test_mean_direction_is_normalised_solve():
    c, a = _moment()
    keys = a[:10]
    d = context_directions(keys, c, rank=1, method="mean", ridge=1e-3)
    want = torch.linalg.solve(regularised(c, 1e-3), keys.mean(0))
    assert d.shape == (1, 6)
    assert torch.allclose(d[0], want / want.norm(), atol=1e-12)


def test_zca_directions_are_orthonormal_and_aligned():
    c, a = _moment()
    keys = a[:20] + 2.0
    d = context_directions(keys, c, rank=3, method="zca")
    assert d.shape == (3, 6) and d.dtype == torch.float64
    assert torch.allclose(d @ d.T, torch.eye(3, dtype=torch.float64), atol=1e-10)
    assert (d @ keys.mean(0) >= 0).all()


def test_direction_errors():
    c, a = _moment()
    two = torch.cat([a[:2], a[:2]])                     # four keys, two distinct
    with pytest.raises(EditError, match="rank 3 is larger than the number of distinct context keys"):
        context_directions(two, c, rank=3, method="zca")
    with pytest.raises(EditError, match="'mean' direction has rank 1"):
        context_directions(a[:5], c, rank=2, method="mean")
    with pytest.raises(EditError, match="no context keys"):
        context_directions(a[:0], c)


@pytest.mark.parametrize("method,rank", [("mean", 1), ("zca", 1), ("zca", 2)])
def test_all_zero_or_non_finite_keys_are_refused_before_factorising(method, rank):
    """A layer whose keys are all zero (a zero second moment) made ``linalg.cholesky`` fail
    with a traceback; zero context keys gave a NaN direction."""
    c, a = _moment()
    zeros = torch.zeros(5, c.shape[0])
    with pytest.raises(EditError, match="every key of this layer is zero"):
        context_directions(zeros, torch.zeros_like(c), rank=rank, method=method)
    with pytest.raises(EditError, match="the context keys are all zero"):
        context_directions(zeros, c, rank=rank, method=method)
    nan = a[:5].clone()
    nan[0, 0] = float("nan")
    with pytest.raises(EditError, match="NaN or infinite"):
        context_directions(nan, c, rank=rank, method=method)
    inf = c.clone()
    inf[0, 0] = float("inf")
    with pytest.raises(EditError, match="NaN or infinite"):
        context_directions(a[:5], inf, rank=rank, method=method)


def test_an_edit_of_a_layer_with_all_zero_keys_is_an_edit_error(tmp_path, monkeypatch):
    """End to end: a model whose keys at the edited layer are all zero (the BatchNorm before
    it zeroed, so ReLU gives 0 everywhere) fails with a clear EditError, nothing changed."""
    from rewrite.edit import EditSpec, Rewriter

    from ..conftest import make_tiny_dcgan

    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    G = make_tiny_dcgan()
    with torch.no_grad():
        G.state_dict()["main.1.weight"].zero_()
        G.state_dict()["main.1.bias"].zero_()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    for direction, rank in (("mean", 1), ("zca", 2)):
        spec = EditSpec.from_json({
            "version": 1, "model": "tiny", "layer": "main.3", "kind": "copy-paste",
            "rank": rank, "direction": direction, "solver": "least-collateral",
            "stats": {"samples": 20, "seed": 0},
            "copy": {"sample": 0, "mask": {"rect": [8, 8, 24, 24]}},
            "paste": {"sample": 1, "mask": {"rect": [8, 8, 24, 24]}},
            "context": [{"sample": 1, "mask": {"rect": [8, 8, 24, 24]}},
                        {"sample": 2, "mask": {"rect": [0, 0, 16, 16]}}]})
        with pytest.raises(EditError, match="every key of this layer is zero"):
            Rewriter(G, progress=False).apply(spec)
    assert all(torch.equal(G.state_dict()[k], before[k]) for k in before)


@pytest.mark.parametrize("kind", ["convT", "conv"])
def test_low_rank_delta_acts_on_the_input_axis(kind):
    w = torch.randn(5, 7, 3, 3)                         # convT: [in=5, out=7]; conv: [out=5, in=7]
    in_axis, out_axis = (0, 1) if kind == "convT" else (1, 0)
    c_in, c_out = w.shape[in_axis], w.shape[out_axis]
    D = torch.linalg.qr(torch.randn(c_in, 2, dtype=torch.float64))[0].T
    lam = torch.randn(c_out, 3, 3, 2)
    dw = low_rank_delta(lam, D, in_axis, out_axis)
    letters = "ioyx" if kind == "convT" else "oiyx"
    want = torch.einsum(f"oyxr,ri->{letters}", lam, D.float())
    assert torch.allclose(dw, want, atol=1e-6)
    assert torch.allclose(lambda_of(w + dw, w, D, in_axis, out_axis), lam, atol=1e-5)
    # Projection keeps exactly the span(D) part of any change.
    other = w + torch.randn_like(w)
    proj = project_onto_span(other, w, D, in_axis, out_axis)
    assert torch.allclose(project_onto_span(proj, w, D, in_axis, out_axis), proj, atol=1e-6)


def _random_problem(activation="relu", rank=1, seed=0, c_in=6, c_out=5, conv="convT"):
    g = torch.Generator().manual_seed(seed)
    if conv == "convT":
        weight = torch.randn(c_in, c_out, 4, 4, generator=g) * 0.3
        in_axis, out_axis = 0, 1

        def linear(k, w):
            return torch.nn.functional.conv_transpose2d(k, w, None, 2, 1)
    else:
        weight = torch.randn(c_out, c_in, 3, 3, generator=g) * 0.3
        in_axis, out_axis = 1, 0

        def linear(k, w):
            return torch.nn.functional.conv2d(k, w, None, 1, 1)
    f = LayerFunction("random", weight, in_axis, out_axis, linear,
                      scale=(torch.rand(1, c_out, 1, 1, generator=g) + 0.5),
                      shift=torch.randn(1, c_out, 1, 1, generator=g) * 0.1,
                      activation=activation)
    keys = torch.relu(torch.randn(2, c_in, 8, 8, generator=g))
    values = f.forward(keys)
    goal = values.clone()
    h = values.shape[-1]
    box = (slice(None), slice(None), slice(h // 4, h // 4 + h // 2), slice(h // 4, h // 4 + h // 2))
    new = torch.randn(goal[box].shape, generator=g)
    goal[box] = torch.relu(new) + 0.2 if activation == "relu" else new
    if activation == "relu":
        goal[:, :2][box] = 0                                  # clipped goals in two channels
    mask = torch.zeros(2, 1, h, h)
    mask[box] = 1
    ctx = keys[:, :, 1:3, 1:3].permute(0, 2, 3, 1).reshape(-1, c_in).double()
    m = keys.permute(0, 2, 3, 1).reshape(-1, c_in).double()
    moment = m.T @ m / len(m)
    D = context_directions(ctx, moment, rank, "zca").float()
    return EditProblem(f, keys, goal, mask, D, moment)


@pytest.mark.parametrize("name", ["adam", "closed-form", "closed-form+refine"])
@pytest.mark.parametrize("conv", ["convT", "conv"])
def test_constrained_solvers_change_w_only_inside_span(name, conv):
    p = _random_problem(rank=2, conv=conv)
    overrides = {"steps": 60} if name != "closed-form" else {}
    r = solve(p, name, overrides)
    f = p.layer
    w1 = f.weight + r.delta
    outside = as_matrix(w1, f.in_axis, f.out_axis) - \
        as_matrix(w1 - f.weight, f.in_axis, f.out_axis) @ p.D.T @ p.D
    assert torch.allclose(outside, as_matrix(f.weight, f.in_axis, f.out_axis), atol=1e-6)
    assert r.loss < r.loss_before
    assert r.seconds > 0 and r.lam is not None


def test_finetune_layer_is_unconstrained():
    p = _random_problem(rank=1)
    r = solve(p, "finetune-layer", {"steps": 60})
    f = p.layer
    change = as_matrix(r.delta, f.in_axis, f.out_axis)
    assert (change - change @ p.D.T @ p.D).abs().max() > 1e-3
    assert r.lam is None and r.loss < r.loss_before


@pytest.mark.parametrize("conv", ["convT", "conv"])
def test_closed_form_matches_lstsq(conv):
    """With an identity tail the closed form is plain least squares: compare with lstsq."""
    p = _random_problem(activation="identity", rank=2, conv=conv)
    f = p.layer
    lam = closed_form_lambda(p, ridge=0.0)
    shape = lam.shape
    sel = (p.mask[:, 0] > 0)

    def masked_values(flat):
        dw = low_rank_delta(flat.reshape(shape), p.D, f.in_axis, f.out_axis)
        out = f.tail(f.linear(p.keys, f.weight + dw))
        return out.permute(1, 0, 2, 3)[:, sel].reshape(-1)

    zero = torch.zeros(lam.numel(), dtype=torch.float64)
    f64 = dict(weight=f.weight.double(), scale=f.scale.double(), shift=f.shift.double())
    f.weight, f.scale, f.shift = f64["weight"], f64["scale"], f64["shift"]
    p.keys, p.goal, p.D = p.keys.double(), p.goal.double(), p.D.double()
    A = torch.autograd.functional.jacobian(masked_values, zero)             # [rows, unknowns]
    b = p.goal.permute(1, 0, 2, 3)[:, sel].reshape(-1) - masked_values(zero)
    want = torch.linalg.lstsq(A, b[:, None]).solution[:, 0]
    assert torch.allclose(lam.double().reshape(-1), want, rtol=1e-4, atol=1e-5)


def test_closed_form_treats_relu_clipped_goals_as_upper_bounds():
    """Clipped goals are "at most min(z0, 0)": the solution beats both naive treatments
    (dropping them, or fitting them exactly) on the one-sided objective."""
    p = _random_problem(activation="relu", rank=2)
    f = p.layer
    z0 = f.scale * f.linear(p.keys, f.weight) + f.shift
    clipped = (p.goal <= 0) & (p.mask > 0)
    bound = torch.minimum(z0, torch.zeros_like(z0))
    assert clipped.sum() > 10

    def objective(lam):
        z = f.scale * f.linear(p.keys, f.weight + low_rank_delta(lam, p.D, 0, 1)) + f.shift
        eq = ((z - p.goal) ** 2)[(p.mask > 0) & ~clipped].sum()
        return float(eq + ((z - bound).clamp_min(0) ** 2)[clipped].sum())

    ours = objective(closed_form_lambda(p, ridge=0.0))
    # Dropping the clipped goals: the first pass of the active-set loop.
    dropped = objective(closed_form_lambda(p, ridge=0.0, active_set_iters=1))
    # Fitting them exactly to their bound, as if there were no ReLU.
    linear_tail = LayerFunction(f.name, f.weight, 0, 1, f.linear, f.scale, f.shift, "identity")
    exact = objective(closed_form_lambda(
        EditProblem(linear_tail, p.keys, torch.where(clipped, bound, p.goal), p.mask, p.D), 0.0))
    assert ours < objective(torch.zeros(closed_form_lambda(p).shape))
    assert ours <= exact + 1e-6 and ours < dropped


def test_solver_registry_rejects_unknown_parameters():
    p = _random_problem()
    with pytest.raises(ValueError, match="unknown parameter"):
        solve(p, "adam", {"stepz": 3})
    with pytest.raises(ValueError, match="unknown solver"):
        solve(p, "sgd")
    assert set(SOLVERS) == {"adam", "closed-form", "closed-form+refine", "finetune-layer",
                            "least-collateral"}


def test_least_collateral_solves_the_penalised_least_squares():
    """On a linear layer the solver's Λ is the minimiser of |J λ - b|² + ρ λᵀPλ: its
    gradient there vanishes; and a larger weight buys a smaller predicted collateral."""
    from rewrite.memory.solvers import (LeastCollateralParams, _least_squares_system,
                                        collateral_penalty, solve_least_collateral)
    p = _random_problem(activation="identity", rank=2, conv="conv")
    weak, strong = (solve_least_collateral(p, LeastCollateralParams(weight=w, budget=1e9))
                    for w in (0.01, 1.0))
    assert strong.collateral < 0.5 * weak.collateral
    assert weak.loss < strong.loss < strong.loss_before
    J, b, upper, m, shape = _least_squares_system(p)
    P = collateral_penalty(p.D, p.moment, shape)
    rho = 0.01 * float((J * J * m[None, :, None]).sum(1).mean()) / float(torch.diagonal(P).mean())
    lam = weak.lam.double().reshape(J.shape[0], -1)
    grad = torch.einsum("opq,op,op->oq", J, m[None].expand_as(b), torch.einsum("opq,oq->op", J, lam) - b) \
        + rho * lam @ P
    scale = torch.einsum("opq,op->oq", J.abs(), b.abs()).max()
    assert float(grad.abs().max()) < 1e-4 * float(scale)


def test_least_collateral_keeps_within_the_budget():
    from rewrite.memory.solvers import LeastCollateralParams, solve_least_collateral
    p = _random_problem(activation="relu", rank=2)
    free = solve_least_collateral(p, LeastCollateralParams(weight=0.01, budget=1e9))
    for budget in (0.5 * free.collateral, 0.05 * free.collateral):
        r = solve_least_collateral(p, LeastCollateralParams(weight=0.01, budget=budget))
        assert r.collateral <= budget and r.loss > free.loss, (budget, r.collateral)
        assert r.loss < r.loss_before


def test_collateral_is_the_mean_squared_output_change():
    """tr(ΔW C ΔWᵀ)/tr(W0 C W0ᵀ) equals the ratio of mean squared linear outputs over keys
    whose second moment is C (checked with a 1x1 convolution, where that is exact)."""
    g = torch.Generator().manual_seed(3)
    keys = torch.relu(torch.randn(4, 6, 5, 5, generator=g))
    w0 = torch.randn(5, 6, 1, 1, generator=g)
    dw = torch.randn(5, 6, 1, 1, generator=g) * 0.1
    f = LayerFunction("one", w0, 1, 0, lambda k, w: torch.nn.functional.conv2d(k, w),
                      scale=torch.ones(1, 5, 1, 1), shift=torch.zeros(1, 5, 1, 1))
    flat = keys.permute(0, 2, 3, 1).reshape(-1, 6).double()
    moment = flat.T @ flat / len(flat)
    mask = torch.ones(4, 1, 5, 5)
    p = EditProblem(f, keys, f.forward(keys), mask, torch.eye(6)[:1], moment)
    want = float((f.linear(keys, dw).double() ** 2).mean() / (f.linear(keys, w0).double() ** 2).mean())
    assert p.collateral(dw) == pytest.approx(want, rel=1e-6)


def test_the_ridge_solve_survives_a_singular_system():
    """Two edits of one rule solved together give equal columns and a singular penalty
    (was a 'singular matrix' crash in torch.linalg.solve): the solve returns a finite λ that
    fits as well as the one-column system does."""
    from rewrite.memory.solvers import _solve_system

    gen = torch.Generator().manual_seed(0)
    col = torch.randn(3, 40, 1, generator=gen, dtype=torch.float64)
    b = 2.0 * col[..., 0] + 0.01 * torch.randn(3, 40, generator=gen, dtype=torch.float64)
    upper = torch.zeros(3, 40, dtype=torch.bool)
    m = torch.ones(40, dtype=torch.float64)
    J = torch.cat([col, col], -1)                                   # equal columns
    penalty = torch.ones(2, 2, dtype=torch.float64)                 # singular
    lam = _solve_system(J, b, upper, m, 1e-3, 1, penalty)
    one = _solve_system(col, b, upper, m, 1e-3, 1, torch.ones(1, 1, dtype=torch.float64))
    assert torch.isfinite(lam).all()
    fit2 = ((torch.einsum("opq,oq->op", J, lam) - b) ** 2).sum()
    fit1 = ((torch.einsum("opq,oq->op", col, one) - b) ** 2).sum()
    assert fit2 <= fit1 * 1.001
