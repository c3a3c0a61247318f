"""Gate forms beyond one direction: the quadratic gate (``fit_gate(..., quadratic=True)``) and
the threshold set by the negatives (``leak``): what one direction cannot separate, the
read-out against the Gaussian log-likelihood ratio it stands for; the gate per image (the
rule's response on the band against a threshold); both in delta files."""

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from rewrite.edit import Delta, Rewriter
from rewrite.edit.calibrate import firing_threshold
from rewrite.edit.delta import load_deltas
from rewrite.memory.gate import Gate, fit_gate
from rewrite.metrics.firing import quantile_threshold
from rewrite.utils.errors import DeltaFileError

from ..conftest import make_tiny_dcgan, rewrite_delta_file

LAYER, WEIGHT = "main.6", "main.6.weight"  # tiny DCGAN: keys [N, 8, 8, 8]
SAMPLES = list(range(16))


def _shell_and_core(n: int, c: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positives: a tight Gaussian (std 0.3) at the origin; negatives: a wide one (std 1.5)
    with the same mean. [n, c] each: no direction separates them, their spreads do."""
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(n, c, generator=g), 1.5 * torch.randn(n, c, generator=g)


def _passed(gate: Gate, cells: torch.Tensor) -> float:
    """The share of ``cells`` [M, C] whose read-out passes the gate's threshold."""
    return float((gate.read(cells[:, :, None, None])[:, 0, 0] > gate.b).double().mean())


def test_a_quadratic_gate_separates_spreads_that_no_direction_separates():
    pos, neg = _shell_and_core(2000, 8, seed=0)
    fresh_pos, fresh_neg = _shell_and_core(2000, 8, seed=1)
    linear, _, _ = fit_gate(pos, neg, quantile=0.5)
    quad, cover, leak = fit_gate(pos, neg, quantile=0.5, quadratic=True)
    assert cover == pytest.approx(0.5, abs=0.01)
    # One direction lets about as many negatives through as positives ...
    assert _passed(linear, fresh_neg) > 0.3
    # ... the quadratic read-out almost none, on cells it was not fitted on too.
    assert leak < 0.02 and _passed(quad, fresh_neg) < 0.02
    assert _passed(quad, fresh_pos) > 0.4


def test_the_quadratic_read_out_is_the_log_likelihood_ratio_up_to_a_constant():
    g = torch.Generator().manual_seed(3)
    c, shrink = 5, 0.1
    pos = torch.randn(300, c, generator=g, dtype=torch.float64) @ torch.randn(
        c, c, generator=g, dtype=torch.float64) + 1.0
    neg = torch.randn(500, c, generator=g, dtype=torch.float64) * 2.0
    gate, _, _ = fit_gate(pos, neg, quadratic=True, shrink=shrink)

    def gaussian(x):
        cov = torch.cov(x.T)
        cov = cov + shrink * torch.eye(c, dtype=cov.dtype) * cov.diagonal().mean()
        return torch.distributions.MultivariateNormal(x.mean(0), covariance_matrix=cov)

    probe = torch.randn(50, c, generator=g, dtype=torch.float64) * 2.0
    llr = gaussian(pos).log_prob(probe) - gaussian(neg).log_prob(probe)
    read = gate.read(probe.float()[:, :, None, None])[:, 0, 0].double()
    # The gate stores float32 weights: compare differences (the constant drops out) with a
    # tolerance derived from float32 rounding of terms as large as the read-out's.
    scale = float(read.abs().max()) + float(llr.abs().max())
    tol = 50 * c * torch.finfo(torch.float32).eps * scale
    assert torch.allclose(read - read[0], llr - llr[0], atol=tol, rtol=0)


@pytest.mark.parametrize("quadratic", [False, True])
@pytest.mark.parametrize("leak", [0.003, 0.05])
def test_a_leak_threshold_lets_that_share_of_the_negatives_through(quadratic, leak):
    g = torch.Generator().manual_seed(5)
    pos = torch.randn(400, 6, generator=g) + 1.5
    neg = torch.randn(4000, 6, generator=g)
    gate, cover, passed = fit_gate(pos, neg, leak=leak, quadratic=quadratic)
    assert passed == pytest.approx(leak, abs=2 / 4000)
    assert _passed(gate, neg) == pytest.approx(passed, abs=1e-9)
    # The cover follows from the separation, not from a quantile of the positives.
    assert cover > 0.5 and cover != pytest.approx(0.5, abs=0.01)


# -- in a delta file -------------------------------------------------------------------------------
def _quadratic_delta(G, seed: int = 0) -> Delta:
    """A gated edit of main.6 with a quadratic gate fitted on the test samples' key cells
    (the upper-left quarter of each key grid against the rest) and a random weight change."""
    g = torch.Generator().manual_seed(seed)
    W = G.state_dict()[WEIGHT]
    with torch.no_grad():
        keys = G.split(G.latents(SAMPLES), LAYER).keys
    cells = keys.permute(0, 2, 3, 1)
    inside = torch.zeros(keys.shape[-2:], dtype=torch.bool)
    inside[:4, :4] = True
    gate, _, _ = fit_gate(cells[:, inside].reshape(-1, keys.shape[1]),
                          cells[:, ~inside].reshape(-1, keys.shape[1]),
                          quadratic=True, at="keys")
    change = torch.randn(W.shape, generator=g) * float(W.std())
    return Delta(LAYER, "gated", dense={WEIGHT: change}, loss_kind="pixel-L1", gate=gate)


def test_a_quadratic_gate_round_trips_through_a_delta_file(tmp_path):
    G = make_tiny_dcgan()
    session = Rewriter(G, progress=False)
    session.apply(_quadratic_delta(G))
    with torch.no_grad():
        x1 = G(G.latents(SAMPLES))
    path = session.export_deltas(tmp_path / "quad.safetensors")
    fresh = make_tiny_dcgan()
    (loaded,) = Rewriter(fresh, progress=False).apply_delta_file(path)
    with torch.no_grad():
        assert torch.equal(fresh(fresh.latents(SAMPLES)), x1)
    assert loaded.gate.A is not None
    assert torch.equal(loaded.gate.A, session.deltas[0].gate.A)
    # The quadratic part is what the images depend on: without it they differ.
    linear = Rewriter(make_tiny_dcgan(), progress=False)
    d = session.deltas[0]
    linear.apply(Delta(LAYER, "gated", dense=d.dense, loss_kind="pixel-L1",
                       gate=Gate(d.gate.u, d.gate.b, d.gate.tau, d.gate.at)))
    with torch.no_grad():
        assert not torch.equal(linear.model(linear.model.latents(SAMPLES)), x1)


def _assert_refused(tmp_path, make_delta, change, match: str) -> Path:
    """Write a delta file of ``make_delta(G)`` on the tiny DCGAN, damage it with
    ``change(entries, tensors)`` (:func:`rewrite_delta_file`), and check a fresh model refuses
    it with a message matching ``match`` and is left unwrapped and unchanged. Returns the
    undamaged file."""
    good = tmp_path / "good.safetensors"
    session = Rewriter(make_tiny_dcgan(), progress=False)
    session.apply(make_delta(session.model))
    session.export_deltas(good)
    path = rewrite_delta_file(good, change, tmp_path / "damaged.safetensors")
    G = make_tiny_dcgan()
    with torch.no_grad():
        x0 = G(G.latents(SAMPLES))
    target = Rewriter(G, progress=False)
    with pytest.raises(DeltaFileError, match=match):
        target.apply_delta_file(path)
    assert G.value_wraps() == [] and target.deltas == []
    with torch.no_grad():
        assert torch.equal(G(G.latents(SAMPLES)), x0)
    return good


@pytest.mark.parametrize("damage", ["nan", "shape", "missing"])
def test_a_damaged_quadratic_part_is_refused(tmp_path, damage):
    def change(entries, tensors):
        A = tensors["edit.0.gate.A"]
        if damage == "nan":
            tensors["edit.0.gate.A"] = torch.full_like(A, math.nan)
        elif damage == "shape":
            tensors["edit.0.gate.A"] = A[:-1]
        else:
            del tensors["edit.0.gate.A"]

    good = _assert_refused(tmp_path, _quadratic_delta, change, r"quadratic part|gate\.A")
    # The same file undamaged loads with its quadratic part.
    assert load_deltas(good)[0][0].gate.A is not None


# -- the gate per image ------------------------------------------------------------------------
def _face_gate(c: int = 4, b: float = 2.0) -> Gate:
    """A cell gate open everywhere (u = 0, b far below) and a gate per image on direction
    e0 over the upper-left 2x2 cells of a 4x4 grid, threshold ``b``, ramp 0.01."""
    cells = torch.zeros(4, 4, dtype=torch.bool)
    cells[:2, :2] = True
    D = torch.zeros(1, c)
    D[0, 0] = 1.0
    return Gate(torch.zeros(c), -100.0, 1.0, "keys", face_D=D, face_cells=cells, face_b=b,
                face_tau=0.01)


def test_the_gate_per_image_shuts_images_whose_band_response_stays_below_it():
    gate = _face_gate()
    keys = torch.zeros(3, 4, 4, 4)
    keys[0, 0, 1, 1] = 3.0    # above the threshold inside the cells read
    keys[1, 0, 3, 3] = 3.0    # as strong, but outside them
    keys[2, 0, 0, 0] = 1.0    # inside, below the threshold
    opened = gate.open(keys)  # [3, 1, 4, 4]
    assert opened.shape == (3, 1, 4, 4)
    assert bool((opened[0] > 0.99).all())
    assert bool((opened[1] < 1e-6).all()) and bool((opened[2] < 1e-6).all())
    # Without the gate per image every image is open.
    plain = Gate(gate.u, gate.b, gate.tau, gate.at)
    assert bool((plain.open(keys) > 0.99).all())


def test_the_gate_per_image_reads_the_signed_response_at_rank_one():
    gate = _face_gate()
    keys = torch.zeros(1, 4, 4, 4)
    keys[0, 0, 0, 0] = -3.0   # |d·k| is large, d·k is not
    assert float(gate.open(keys).max()) < 1e-6
    two = dataclasses.replace(gate, face_D=torch.eye(4)[:2])  # rank 2: the norm
    assert float(two.open(keys).min()) > 0.99


@pytest.mark.parametrize("change, needle", [
    ({"face_cells": None}, "both"),
    ({"face_D": torch.zeros(1, 3)}, "[r, 4]"),
    ({"face_D": torch.full((1, 4), math.nan)}, "not finite"),
    ({"face_cells": torch.zeros(4, 4, dtype=torch.bool)}, "no cell"),
    ({"face_cells": torch.ones(4, 4)}, "bool"),
    ({"face_tau": 0.0}, "softness"),
    ({"face_b": math.inf}, "threshold"),
])
def test_a_damaged_gate_per_image_is_a_problem(change, needle):
    assert _face_gate().problem(4) is None
    why = dataclasses.replace(_face_gate(), **change).problem(4)
    assert why is not None and needle in why


def test_the_firing_threshold_is_the_evaluations():
    G = make_tiny_dcgan()
    D = torch.randn(2, G.layer(LAYER).in_channels, generator=torch.Generator().manual_seed(0))
    samples = list(range(40))
    with torch.no_grad():
        keys = G.split(G.latents(samples), LAYER).keys
    by_hand = quantile_threshold(torch.einsum("rc,nchw->nrhw", D, keys).norm(dim=1))
    assert firing_threshold(G, LAYER, D, samples) == pytest.approx(by_hand, rel=1e-6)


def _face_delta(G) -> Delta:
    """A gated edit of main.6 whose gate per image opens on about half the test samples."""
    g = torch.Generator().manual_seed(4)
    W = G.state_dict()[WEIGHT]
    c_in = W.shape[0]
    D = torch.randn(2, c_in, generator=g)
    cells = torch.zeros(8, 8, dtype=torch.bool)
    cells[2:5, 2:6] = True
    with torch.no_grad():
        keys = G.split(G.latents(SAMPLES), LAYER).keys
    peak = torch.einsum("rc,nchw->nrhw", D, keys).norm(dim=1)[:, cells].amax(1)
    gate = Gate(torch.zeros(c_in), -100.0, 1.0, "keys", face_D=D, face_cells=cells,
                face_b=float(peak.median()), face_tau=1e-3 * float(peak.std()))
    change = torch.randn(W.shape, generator=g) * float(W.std())
    return Delta(LAYER, "gated", dense={WEIGHT: change}, loss_kind="pixel-L1", gate=gate)


def test_a_gate_per_image_round_trips_and_leaves_the_images_it_shuts_alone(tmp_path):
    G = make_tiny_dcgan()
    with torch.no_grad():
        x0 = G(G.latents(SAMPLES))
    session = Rewriter(G, progress=False)
    session.apply(_face_delta(G))
    with torch.no_grad():
        x1 = G(G.latents(SAMPLES))
    changed = (x1 - x0).abs().flatten(1).amax(1)
    assert int((changed > 1e-3).sum()) >= 4 and int((changed < 1e-6).sum()) >= 4
    path = session.export_deltas(tmp_path / "face.safetensors")
    fresh = make_tiny_dcgan()
    (loaded,) = Rewriter(fresh, progress=False).apply_delta_file(path)
    with torch.no_grad():
        assert torch.equal(fresh(fresh.latents(SAMPLES)), x1)
    assert torch.equal(loaded.gate.face_cells, session.deltas[0].gate.face_cells)
    assert loaded.gate.face_b == session.deltas[0].gate.face_b


@pytest.mark.parametrize("damage", ["cells-grid", "cells-missing", "both-missing", "tau"])
def test_a_damaged_gate_per_image_in_a_file_is_refused(tmp_path, damage):
    def change(entries, tensors):
        if damage == "cells-grid":
            tensors["edit.0.gate.face_cells"] = torch.ones(4, 4, dtype=torch.bool)
        elif damage == "cells-missing":
            del tensors["edit.0.gate.face_cells"]
        elif damage == "both-missing":
            del tensors["edit.0.gate.face_cells"], tensors["edit.0.gate.face_D"]
        else:
            entries[0]["gate"]["face"]["tau"] = -1.0

    _assert_refused(tmp_path, _face_delta, change, "per image")


# -- a change that reads only the examples' main key directions (key_rank) ---------------------
def test_a_key_rank_change_reads_only_the_examples_main_key_directions():
    from rewrite.edit.example_fit import project_keys
    from rewrite.edit.gated_fit import key_projector

    g = torch.Generator().manual_seed(7)
    c = 6
    basis, _ = torch.linalg.qr(torch.randn(c, c, generator=g))
    # The examples' keys live in the first two basis directions (plus a little noise).
    coef = torch.randn(5, 2, 3, 3, generator=g)
    keys = torch.einsum("nrhw,cr->nchw", coef, basis[:, :2]) + 1e-4 * torch.randn(
        5, c, 3, 3, generator=g)
    gate = Gate(torch.zeros(c), -100.0, 1.0, "keys")  # open everywhere
    proj = key_projector(keys, gate, n_ex=5, rank=2)
    assert proj is not None
    assert torch.allclose(proj @ proj, proj, atol=1e-5)
    assert torch.allclose(proj, basis[:, :2] @ basis[:, :2].T, atol=1e-3)
    w = torch.randn(c, 4, 2, 2, generator=g)          # a transposed convolution's weight: in axis 0
    d = project_keys(w, proj, in_axis=0)
    outside = basis[:, 2:]                           # key directions the examples never use
    assert float(torch.einsum("cohw,cr->rohw", d, outside).abs().max()) < 1e-3
    inside = basis[:, :2]
    assert torch.allclose(torch.einsum("cohw,cr->rohw", d, inside),
                          torch.einsum("cohw,cr->rohw", w, inside), atol=1e-3)
    assert key_projector(keys, gate, n_ex=5, rank=0) is None
    assert key_projector(keys, gate, n_ex=5, rank=c) is None
    assert project_keys(w, None, in_axis=0) is w


# -- a gate spread to the cells beside an open one (gate_spread) -------------------------------
def _one_cell_open(
    c: int = 4, size: int = 6, at: tuple[int, int] = (2, 3)
) -> tuple[Gate, torch.Tensor]:
    """A sharp gate reading channel 0 and keys [1, c, size, size] that pass it at one cell."""
    keys = torch.zeros(1, c, size, size)
    keys[0, 0, at[0], at[1]] = 1.0
    u = torch.zeros(c)
    u[0] = 1.0
    return Gate(u, 0.5, 1e-3, "keys"), keys


@pytest.mark.parametrize("spread", [1, 2])
def test_a_spread_gate_opens_the_cells_within_its_reach_of_an_open_one(spread):
    gate, keys = _one_cell_open()
    own = gate.open(keys)[0, 0]
    assert int((own > 0.99).sum()) == 1 and float(own.sum()) < 1.01
    opened = dataclasses.replace(gate, spread=spread).open(keys)[0, 0]
    rows, cols = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    near = ((rows - 2).abs() <= spread) & ((cols - 3).abs() <= spread)
    assert bool((opened[near] > 0.99).all()) and float(opened[~near].max()) < 1e-6
    # Shut everywhere stays shut everywhere: the spread opens nothing on its own.
    assert float(dataclasses.replace(gate, spread=spread).open(keys * 0).max()) < 1e-6


def test_a_spread_gate_round_trips_through_a_delta_file(tmp_path):
    G = make_tiny_dcgan()
    W = dict(G.named_parameters())[WEIGHT].detach()
    g = torch.Generator().manual_seed(11)
    u = torch.nn.functional.normalize(torch.randn(W.shape[0], generator=g), dim=0)
    with torch.no_grad():
        read = torch.einsum("c,nchw->nhw", u, G.split(G.latents(SAMPLES), LAYER).keys)
    gate = Gate(u, float(read.quantile(0.97)), 1e-3 * float(read.std()), "keys", spread=1)
    delta = Delta(
        LAYER,
        "gated",
        dense={WEIGHT: torch.randn(W.shape, generator=g) * float(W.std())},
        loss_kind="pixel-L1",
        gate=gate,
    )
    with torch.no_grad():
        x0 = G(G.latents(SAMPLES))
    session = Rewriter(G, progress=False)
    session.apply(delta)
    with torch.no_grad():
        x1 = G(G.latents(SAMPLES))
    path = session.export_deltas(tmp_path / "spread.safetensors")
    fresh = make_tiny_dcgan()
    (loaded,) = Rewriter(fresh, progress=False).apply_delta_file(path)
    assert loaded.gate.spread == 1
    with torch.no_grad():
        assert torch.equal(fresh(fresh.latents(SAMPLES)), x1)
    # The spread is part of the edit: the same change without it draws less.
    narrow = make_tiny_dcgan()
    Rewriter(narrow, progress=False).apply(
        dataclasses.replace(delta, gate=dataclasses.replace(gate, spread=0))
    )
    with torch.no_grad():
        x_narrow = narrow(narrow.latents(SAMPLES))
    assert float((x1 - x0).abs().sum()) > float((x_narrow - x0).abs().sum()) > 0


@pytest.mark.parametrize("bad", [-1, 1.5, 99, True])
def test_a_damaged_spread_in_a_file_is_refused(tmp_path, bad):
    def make(G):
        W = dict(G.named_parameters())[WEIGHT].detach()
        gate = Gate(
            torch.nn.functional.normalize(torch.ones(W.shape[0]), dim=0), 0.0, 1.0, "keys", spread=1
        )
        return Delta(
            LAYER,
            "gated",
            dense={WEIGHT: 0.01 * torch.ones_like(W)},
            loss_kind="pixel-L1",
            gate=gate,
        )

    def change(entries, tensors):
        entries[0]["gate"]["spread"] = bad

    _assert_refused(tmp_path, make, change, "spread")
