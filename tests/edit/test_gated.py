"""The ``gated`` method: the LDA gate (fit_gate, Gate.problem), the gated values, a gated
edit in a session (a wrap, never a weight change), in delta files and against checkpoints,
families that cannot wrap, and the method end to end on the beard request."""

import copy
import math
from pathlib import Path

import pytest
import torch

from rewrite.edit import Delta, EditSpec, Rewriter
from rewrite.edit.delta import load_deltas
from rewrite.edit.example_fit import POOL, _pool_roles
from rewrite.edit.methods import method_params
from rewrite.memory.gate import Gate, fit_gate, gated_values
from rewrite.metrics.evaluate import variant
from rewrite.models import load_model
from rewrite.utils.errors import DeltaFileError, EditError

from ..conftest import make_tiny_dcgan, rewrite_delta_file

ROOT = Path(__file__).resolve().parents[2]
LAYER = "main.6"                 # tiny DCGAN: keys [N, 8, 8, 8], values [N, 4, 16, 16]
WEIGHT = "main.6.weight"
SAMPLES = list(range(16))
EPS = torch.finfo(torch.float32).eps


# -- fit_gate on synthetic key cells ----------------------------------------------------------
def _two_gaussians(n: int, c: int, sep: float, seed: int, nuisance: float = 1.0):
    """Positives and negatives [n, c]: unit-variance Gaussians whose means differ by ``sep``
    along a random unit direction ``e``; with ``nuisance`` > 1 a second direction ``m``
    (orthogonal to ``e``) has that standard deviation and the means differ along it too, by
    ``sep``. Returns (positives, negatives, e)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=torch.float64))
    e, m = basis[:, 0], basis[:, 1]
    scale = torch.ones(c, dtype=torch.float64)
    scale[1] = nuisance

    def draw(shift):
        return (torch.randn(n, c, generator=g, dtype=torch.float64) * scale) @ basis.T + shift

    mu = torch.randn(c, generator=g, dtype=torch.float64)
    shift = sep * e + (sep * m if nuisance != 1.0 else 0.0)
    return draw(mu + shift).float(), draw(mu).float(), e


@pytest.mark.parametrize("quantile", [0.3, 0.5, 0.9])
def test_fit_gate_finds_the_separating_direction(quantile):
    n, sep = 4000, 3.0
    pos, neg, e = _two_gaussians(n, 16, sep, seed=1)
    gate, cover, leak = fit_gate(pos, neg, quantile=quantile)
    assert gate.u.shape == (16,) and gate.tau > 0
    assert float(gate.u.double() @ e) > 0.9                 # pointing to the positives
    # cover is measured on the very sample the quantile was taken on: within a cell or two.
    assert abs(cover - (1 - quantile)) <= 2 / n, cover
    # A negative passes only if it lies beyond the threshold along u; the threshold sits
    # at the positives' quantile, i.e. about sep + Φ⁻¹(quantile) from the negatives' mean
    # (unit variance along u). Allow half a standard deviation of slack for u ≠ e and the
    # estimated threshold, plus 4 binomial standard errors.
    z = sep + math.sqrt(2) * float(torch.special.erfinv(torch.tensor(2 * quantile - 1.0)))
    p = 1 - float(torch.special.ndtr(torch.tensor(z - 0.5)))
    assert leak <= p + 4 * math.sqrt(p * (1 - p) / n) + 1 / n, (leak, p)
    # The gate itself agrees: the positives are open where u·k > b, by its own reading.
    opened = gate.open(pos.T[None, :, :, None])[0, 0, :, 0]
    assert abs(float((opened > 0.5).float().mean()) - cover) <= 5 / n


def test_fit_gate_whitens_a_loud_nuisance_direction():
    """The means also differ along a direction with 20x the spread: LDA discounts it (the
    plain mean difference would be at 45 degrees to the separating direction)."""
    pos, neg, e = _two_gaussians(4000, 16, 3.0, seed=2, nuisance=20.0)
    mean_diff = (pos.mean(0) - neg.mean(0)).double()
    assert float(mean_diff @ e / mean_diff.norm()) < 0.75   # the naive direction is poor
    gate, cover, leak = fit_gate(pos, neg)
    assert float(gate.u.double() @ e) > 0.9
    assert leak < 0.05 and abs(cover - 0.5) <= 2 / 4000


@pytest.mark.parametrize("n_pos,n_neg", [(1, 50), (50, 1), (0, 50), (50, 0)])
def test_fit_gate_needs_two_cells_of_each(n_pos, n_neg):
    with pytest.raises(ValueError, match="at least 2"):
        fit_gate(torch.randn(n_pos, 6), torch.randn(n_neg, 6))


# -- gated_values on a real layer function ---------------------------------------------------
@pytest.fixture(params=["tiny", pytest.param("face", marks=pytest.mark.slow)])
def layer_case(request):
    """(keys, values, f) at main.6 for 4 samples of the tiny DCGAN or the face model."""
    G = make_tiny_dcgan() if request.param == "tiny" else request.getfixturevalue("face_model")
    with torch.no_grad():
        split = G.split(G.latents([0, 1, 2, 3]), LAYER)
    return split.keys, split.values, G.layer_function(split)


def _unit(c: int, seed: int) -> torch.Tensor:
    u = torch.randn(c, generator=torch.Generator().manual_seed(seed))
    return u / u.norm()


def _reads(u: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    return torch.einsum("c,nchw->nhw", u, keys)


@torch.no_grad()
def test_gated_values_zero_change_shut_and_open(layer_case):
    keys, values, f = layer_case
    W = f.weight
    change = torch.randn(W.shape, generator=torch.Generator().manual_seed(3)) * float(W.std())
    u = _unit(keys.shape[1], 4)
    reads = _reads(u, keys)
    tau = 0.25 * float(reads.std())
    moved = f.forward(keys, W + change) - f.forward(keys)
    assert float(moved.abs().max()) > 0                     # the change does something
    # No change: the values exactly, whatever the gate.
    half = Gate(u, float(reads.median()), tau)
    assert torch.equal(gated_values(f, keys, values, torch.zeros_like(W), half), values)
    # Shut: the largest gate is 1e-6 at the most open cell.
    b_shut = float(reads.max()) + tau * math.log(1e6)
    g_max = 1 / (1 + math.exp((b_shut - float(reads.max())) / tau))
    shut = gated_values(f, keys, values, change, Gate(u, b_shut, tau))
    bound = g_max * float(moved.abs().max()) * 1.01 + 2 * EPS * float(values.abs().max())
    assert float((shut - values).abs().max()) <= bound
    # Wide open: the whole change.
    b_open = float(reads.min()) - 40 * tau
    opened = gated_values(f, keys, values, change, Gate(u, b_open, tau))
    want = f.forward(keys, W + change) - f.forward(keys) + values
    scale = float(want.abs().max()) + float(moved.abs().max())
    assert torch.allclose(opened, want, rtol=0, atol=8 * EPS * scale)
    assert not torch.allclose(opened, values, rtol=0, atol=8 * EPS * scale)


@torch.no_grad()
def test_a_gate_at_the_keys_reads_gated_keys(layer_case):
    """At the keys: no change gives the values exactly; wide open, the whole change (the layer
    is linear in its weight); shut, nothing; half open, exactly the change computed from the
    keys scaled by their own gate (not the change's output scaled, as at the values)."""
    keys, values, f = layer_case
    W = f.weight
    change = torch.randn(W.shape, generator=torch.Generator().manual_seed(5)) * float(W.std())
    u = _unit(keys.shape[1], 6)
    reads = _reads(u, keys)
    tau = 0.25 * float(reads.std())
    at = "keys"
    half = Gate(u, float(reads.median()), tau, at)
    assert torch.equal(gated_values(f, keys, values, torch.zeros_like(W), half), values)
    moved = f.forward(keys, W + change) - f.forward(keys)
    scale = float(values.abs().max()) + float(moved.abs().max())
    opened = gated_values(f, keys, values, change, Gate(u, float(reads.min()) - 40 * tau, tau, at))
    assert torch.allclose(opened, values + moved, rtol=0, atol=16 * EPS * scale)
    shut = gated_values(
        f, keys, values, change, Gate(u, float(reads.max()) + 40 * tau, tau, at))
    assert torch.allclose(shut, values, rtol=0, atol=16 * EPS * scale)
    got = gated_values(f, keys, values, change, half)
    g = torch.sigmoid((reads - half.b) / tau)[:, None]
    want = values + f.tail(f.linear(keys, W) + f.linear(g * keys, change)) - f.forward(keys)
    assert torch.allclose(got, want, rtol=0, atol=16 * EPS * scale)
    at_values = gated_values(f, keys, values, change, Gate(u, half.b, tau, "values"))
    assert not torch.allclose(got, at_values, rtol=0, atol=1e-3 * scale)


def test_a_gate_at_an_unknown_place_is_a_problem():
    assert "acts at" in Gate(torch.ones(3), 0.0, 1.0, "pixels").problem(3)


@torch.no_grad()
def test_gated_values_take_the_gate_of_the_key_cell_above(layer_case):
    """Half open: each value cell gets the sigmoid of its own key cell (nearest, 2x up), per
    sample."""
    keys, values, f = layer_case
    W = f.weight
    change = torch.randn(W.shape, generator=torch.Generator().manual_seed(5)) * float(W.std())
    u = _unit(keys.shape[1], 6)
    reads = _reads(u, keys)
    gate = Gate(u, float(reads.median()), 0.25 * float(reads.std()))
    out = gated_values(f, keys, values, change, gate)
    g = torch.sigmoid((reads - gate.b) / gate.tau)                           # [N, h, w]
    up = values.shape[-1] // keys.shape[-1]
    g = g.repeat_interleave(up, -1).repeat_interleave(up, -2)[:, None]
    moved = f.forward(keys, W + change) - f.forward(keys)
    want = values + g * moved
    atol = 8 * EPS * (float(values.abs().max()) + float(moved.abs().max()))
    assert torch.allclose(out, want, rtol=0, atol=atol)
    assert 0.2 < float((g > 0.5).float().mean()) < 0.8


# -- Gate.problem -------------------------------------------------------------------------
@pytest.mark.parametrize("u,b,tau,needle", [
    (torch.ones(7) / 7 ** 0.5, 0.0, 1.0, "reads 7 key channels but the layer has 8"),
    (torch.ones(9) / 3, 0.0, 1.0, "reads 9 key channels but the layer has 8"),
    (torch.ones(2, 4), 0.0, 1.0, "1-axis float tensor"),
    (torch.ones(8, dtype=torch.int64), 0.0, 1.0, "1-axis float tensor"),
    (torch.ones(8), float("nan"), 1.0, "threshold must be a finite number"),
    (torch.ones(8), float("inf"), 1.0, "threshold must be a finite number"),
    (torch.ones(8), -float("inf"), 1.0, "threshold must be a finite number"),
    (torch.ones(8), True, 1.0, "threshold must be a finite number"),
    (torch.ones(8), "0.5", 1.0, "threshold must be a finite number"),
    (torch.ones(8), 0.0, float("nan"), "softness must be a finite number"),
    (torch.ones(8), 0.0, float("inf"), "softness must be a finite number"),
    (torch.ones(8), 0.0, 0.0, "softness must be above 0"),
    (torch.ones(8), 0.0, -0.5, "softness must be above 0"),
])
def test_gate_problem_names_what_is_wrong(u, b, tau, needle):
    why = Gate(u, b, tau).problem(8)
    assert why is not None and needle in why, why


def test_a_sound_gate_has_no_problem():
    assert Gate(_unit(8, 0), -3.5, 0.01).problem(8) is None
    assert Gate(_unit(8, 0), 2, 1).problem(8) is None             # integers are numbers


# -- a hand-made gated edit on the tiny DCGAN ----------------------------------------------------
def _gated_delta(G, seed: int = 0, strength: float = 1.0) -> Delta:
    """A gated edit of main.6: a random change of its weight behind a gate half open on the
    test samples."""
    g = torch.Generator().manual_seed(seed)
    W = G.state_dict()[WEIGHT]
    u = torch.randn(W.shape[0], generator=g)
    u = u / u.norm()
    with torch.no_grad():
        reads = _reads(u, G.split(G.latents(SAMPLES), LAYER).keys)
    change = torch.randn(W.shape, generator=g) * float(W.std())
    gate = Gate(u, float(reads.median()), 0.25 * float(reads.std()))
    return Delta(LAYER, "gated", dense={WEIGHT: change}, loss_kind="pixel-L1", gate=gate,
                 strength=strength)


@torch.no_grad()
def _images(G, samples=SAMPLES) -> torch.Tensor:
    return G(G.latents(samples))


def _state(G) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in G.state_dict().items()}


def _same_state(G, state) -> bool:
    now = G.state_dict()
    return set(now) == set(state) and all(torch.equal(now[k], state[k]) for k in state)


def test_a_gated_edit_wraps_the_values_and_undo_restores_everything(tiny_dcgan):
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    state, x0 = _state(G), _images(G)
    fp, fp9, fp6, fp3 = (G.fingerprint(), G.key_fingerprint("main.9"),
                         G.key_fingerprint("main.6"), G.key_fingerprint("main.3"))
    delta = session.apply(_gated_delta(G))
    x1 = _images(G)
    assert float((x1 - x0).abs().mean()) > 1e-3
    assert _same_state(G, state)                              # no weight changed
    assert [layer for layer, _ in G.value_wraps()] == [LAYER]
    assert G.fingerprint() != fp and G.key_fingerprint("main.9") != fp9
    assert G.key_fingerprint("main.6") == fp6 and G.key_fingerprint("main.3") == fp3
    with torch.no_grad():                                     # split and resume see the wrap
        z = G.latents(SAMPLES)
        assert torch.equal(G.resume(G.split(z, LAYER)), x1)
        assert torch.equal(G.resume(G.split(z, "main.9")), x1)
    assert session.deltas == [delta]
    assert session.undo() is delta
    assert torch.equal(_images(G), x0) and _same_state(G, state)
    assert G.value_wraps() == [] and G.fingerprint() == fp
    assert G.key_fingerprint("main.9") == fp9 and G.key_fingerprint("main.3") == fp3
    # Applied again, the very same images.
    session.apply(delta)
    assert torch.equal(_images(G), x1)


def test_reset_removes_every_wrap(tiny_dcgan):
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    state, x0, fp = _state(G), _images(G), G.fingerprint()
    session.apply(_gated_delta(G, seed=0))
    session.apply(_gated_delta(G, seed=1))
    assert len(G.value_wraps()) == 2
    session.reset()
    assert G.value_wraps() == [] and session.deltas == []
    assert torch.equal(_images(G), x0) and _same_state(G, state) and G.fingerprint() == fp


def test_strength_scales_the_gated_change(tiny_dcgan):
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    x0, fp = _images(G), G.fingerprint()
    session.apply(_gated_delta(G))
    full = float((_images(G) - x0).abs().mean())
    tag_full = G.value_wraps()[0][1]
    session.set_strength(0, 0)
    assert torch.equal(_images(G), x0)
    assert G.value_wraps() == [] and G.fingerprint() == fp
    session.set_strength(0, 0.5)
    x_half = _images(G)
    half = float((x_half - x0).abs().mean())
    assert 0.05 * full < half < 0.95 * full, (half, full)
    assert G.value_wraps()[0][1] != tag_full                   # the tag names the strength
    session.set_strength(0, 1)
    assert float((_images(G) - x0).abs().mean()) == full
    # The same edit made at strength 0.5 on a fresh copy: the same images, bit for bit.
    other = make_tiny_dcgan()
    Rewriter(other, progress=False).apply(_gated_delta(other, strength=0.5))
    assert torch.equal(_images(other), x_half)


# -- delta files ---------------------------------------------------------------------------------
def test_a_gated_delta_file_re_applies_bit_for_bit(tiny_dcgan, tmp_path):
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    session.apply(_gated_delta(G, seed=0, strength=0.7))
    session.apply(_gated_delta(G, seed=1))
    x1, fp1 = _images(G), G.fingerprint()
    path = session.export_deltas(tmp_path / "gated.safetensors")
    fresh = make_tiny_dcgan()
    state = _state(fresh)
    loaded = Rewriter(fresh, progress=False).apply_delta_file(path)
    assert torch.equal(_images(fresh), x1) and fresh.fingerprint() == fp1
    assert _same_state(fresh, state)
    for mine, theirs in zip(session.deltas, loaded, strict=True):
        assert torch.equal(theirs.gate.u, mine.gate.u)
        assert (theirs.gate.b, theirs.gate.tau) == (mine.gate.b, mine.gate.tau)
        assert theirs.strength == mine.strength and theirs.method == "gated"
        assert torch.equal(theirs.dense[WEIGHT], mine.dense[WEIGHT])


def _damaged(tmp_path, G, gate_meta=None, u=None, drop_u=False) -> Path:
    """A gated delta file for ``G`` written by rewrite, then its gate's metadata fields and /
    or its direction replaced (re-written with safetensors itself)."""
    good = tmp_path / "good.safetensors"
    session = Rewriter(make_tiny_dcgan(), progress=False)
    session.apply(_gated_delta(session.model))
    session.export_deltas(good)

    def change(entries, tensors):
        if gate_meta is not None:
            entries[0]["gate"].update(gate_meta)
        if u is not None:
            tensors["edit.0.gate.u"] = u
        if drop_u:
            del tensors["edit.0.gate.u"]

    return rewrite_delta_file(good, change, tmp_path / "damaged.safetensors")


@pytest.mark.parametrize("damage", [
    {"u": torch.ones(7) / 7 ** 0.5},
    {"u": torch.ones(8, 1)},
    {"u": torch.full((8,), float("nan"))},
    {"drop_u": True},
    {"gate_meta": {"tau": 0}},
    {"gate_meta": {"tau": -1.0}},
    {"gate_meta": {"b": float("nan")}},
    {"gate_meta": {"b": float("inf")}},
    {"gate_meta": {"b": "0.1"}},
    {"gate_meta": {"tau": None}},
], ids=["u-length", "u-2d", "u-nan", "u-missing", "tau-0", "tau-negative", "b-nan", "b-inf",
        "b-string", "tau-null"])
def test_a_damaged_gate_is_refused_and_nothing_is_wrapped(tiny_dcgan, tmp_path, damage):
    G = tiny_dcgan
    path = _damaged(tmp_path, G, **damage)
    state, x0, fp = _state(G), _images(G), G.fingerprint()
    session = Rewriter(G, progress=False)
    with pytest.raises(DeltaFileError):
        session.apply_delta_file(path)
    assert G.value_wraps() == [] and session.deltas == []
    assert torch.equal(_images(G), x0) and _same_state(G, state) and G.fingerprint() == fp


def test_the_undamaged_copy_of_the_damaged_files_applies(tiny_dcgan, tmp_path):
    """The tampering helper itself leaves a sound file when it changes nothing."""
    path = _damaged(tmp_path, tiny_dcgan)
    (d,) = load_deltas(path)[0]
    assert d.gate is not None
    Rewriter(tiny_dcgan, progress=False).apply_delta_file(path)
    assert len(tiny_dcgan.value_wraps()) == 1


# -- checkpoints -----------------------------------------------------------------------------
def test_export_checkpoint_refuses_a_gated_edit(tiny_dcgan, tmp_path):
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    state = _state(G)
    session.apply(_gated_delta(G))
    path = tmp_path / "edited.pt"
    with pytest.raises(EditError) as err:
        session.export_checkpoint(path)
    assert "delta file" in str(err.value) and LAYER in str(err.value)
    assert list(tmp_path.iterdir()) == []                     # nothing written, not even a temp
    session.undo()
    session.export_checkpoint(path)
    back = load_model(str(path))
    assert _same_state(back, state)


# -- families that cannot wrap -----------------------------------------------------------------
FAMILIES = {
    "stylegan2": ("stylegan2_rosinality_tiny64.pt", "convs.3"),
    "proggan": ("proggan_netdissect_tiny64.pth", "layer4"),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_family_without_layer_modules_refuses_gating(family, fixtures_dir):
    name, layer = FAMILIES[family]
    G = load_model(str(fixtures_dir / name))
    assert G.layer_modules(layer) is None
    state = _state(G)
    with pytest.raises(EditError, match="cannot gate"):
        G.wrap_values(layer, lambda keys, values: values, "noop")
    assert G.value_wraps() == []
    # A gated delta of the right shapes: refused by the session, nothing changed.
    info, wname = G.layer(layer), G.weight_name(layer)
    W = dict(G.named_parameters())[wname]
    delta = Delta(layer, "gated", dense={wname: torch.zeros_like(W) + 0.01},
                  gate=Gate(_unit(info.in_channels, 0), 0.0, 1.0))
    session = Rewriter(G, progress=False, stats_cache=False)
    with pytest.raises(EditError):
        session.apply(delta)
    assert G.value_wraps() == [] and session.deltas == [] and _same_state(G, state)
    # The method itself: a clear EditError before any fitting.
    q = G.resolution // 4
    spec = EditSpec.from_json({
        "version": 1, "model": str(fixtures_dir / name), "layer": layer, "kind": "copy-paste",
        "stats": {"samples": 50}, "solver": {"name": "gated", "params": {"steps": 2}},
        "copy": {"sample": 1, "mask": {"rect": [q, q, 2 * q, 2 * q]}},
        "paste": {"sample": 2, "mask": {"rect": [2 * q, 2 * q, 3 * q, 3 * q]}},
        "context": [{"sample": 3, "mask": {"rect": [q, q, 3 * q, 2 * q]}}]})
    with pytest.raises(EditError, match="gated method"):
        session.apply(spec)
    assert G.value_wraps() == [] and session.deltas == [] and _same_state(G, state)


# -- the face model ------------------------------------------------------------------------------
def _beard(solver_params: dict) -> EditSpec:
    spec = variant(EditSpec.load(ROOT / "benchmarks/edits/tune/add-beard.json"), "gated",
                   params=solver_params)
    spec.stats_samples = 2000
    return spec


def test_a_computed_gated_edit_round_trips_on_the_face_model(face_model, tmp_path):
    """A cheap fit: compute leaves the model alone; applied, the weights stay and the images
    change; its delta file gives a fresh copy of the model the very same images."""
    G = face_model
    session = Rewriter(G, progress=False)
    state, fp = _state(G), G.fingerprint()
    delta = session.compute(_beard({"steps": 5, "examples": 4, "silent": 4, "keep": 2}))
    assert delta.method == "gated" and delta.gate is not None and delta.loss_kind == "pixel-L1"
    assert set(delta.dense) == {WEIGHT} and delta.gate.problem(256) is None
    assert G.value_wraps() == [] and G.fingerprint() == fp and _same_state(G, state)
    samples = [9, 35, 46, 100, 101]
    x0 = _images(G, samples)
    try:
        session.apply(delta)
        x1 = _images(G, samples)
        assert _same_state(G, state) and G.fingerprint() != fp
        assert float((x1 - x0).abs().mean()) > 0
        path = session.export_deltas(tmp_path / "beard.safetensors")
        with pytest.raises(EditError, match="delta file"):
            session.export_checkpoint(tmp_path / "beard.pt")
    finally:
        session.reset()
    assert G.value_wraps() == [] and torch.equal(_images(G, samples), x0)
    fresh = copy.deepcopy(G)
    Rewriter(fresh, progress=False).apply_delta_file(path)
    assert torch.equal(_images(fresh, samples), x1)


@pytest.mark.slow
def test_gated_draws_on_its_examples_and_leaves_the_samples_its_gate_shuts_out(face_model):
    """On the beard request: the goal loss falls, and the 16 pool samples whose gate is least
    open change far less than the examples do under the paste."""
    G = face_model
    session = Rewriter(G, progress=False)
    spec = _beard({"steps": 40})
    inputs = session.prepare(spec)
    delta = session.compute(spec, inputs)
    assert delta.method == "gated" and delta.loss_kind == "pixel-L1"
    assert delta.loss < 0.75 * delta.loss_before, (delta.loss, delta.loss_before)
    examples, _, _ = _pool_roles(G, inputs, method_params(spec.solver, spec.solver_params))
    pool = list(POOL)
    with torch.no_grad():
        opening = torch.cat([
            delta.gate.open(G.split(G.latents(pool[s:s + 128]), spec.layer).keys).amax((1, 2, 3))
            for s in range(0, len(pool), 128)])
    shut = [pool[i] for i in torch.argsort(opening, stable=True)[:16].tolist()]
    assert not set(shut) & set(examples)
    with torch.no_grad():
        before = G(G.latents(examples + shut))
    session.apply(delta)
    try:
        with torch.no_grad():
            after = G(G.latents(examples + shut))
    finally:
        session.undo()
    assert G.value_wraps() == []
    change = (after - before).abs().mean(1) / 2                           # [N, R, R]
    _, alpha, (top, left) = inputs.pixel_paste
    h, w = alpha.shape
    under_paste = change[:len(examples), top:top + h, left:left + w].mean()
    shut_change = change[len(examples):].mean()
    assert shut_change < 0.01 * under_paste, (float(shut_change), float(under_paste))
    # The gate's ranking matters: 16 samples taken in pool order change far more.
    rand = pool[:16]
    with torch.no_grad():
        x0 = G(G.latents(rand))
        session.apply(delta)
        try:
            x1 = G(G.latents(rand))
        finally:
            session.undo()
    rand_change = (x1 - x0).abs().mean() / 2
    assert shut_change < 0.25 * rand_change, (float(shut_change), float(rand_change))


def test_a_deep_copy_of_a_gated_model_is_frozen_and_separate(tiny_dcgan):
    """The app renders from deep copies (snapshots) while the live model goes on: a copy of a
    model with a gated edit renders as the model did when copied, whatever later happens to
    the live model's weights; undoing the live edit leaves the copy's wrap."""
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    session.apply(_gated_delta(G))
    with torch.no_grad():
        edited = _images(G)
        C = copy.deepcopy(G)
        assert torch.equal(_images(C), edited)
        dict(G.named_parameters())["main.9.weight"].mul_(2)   # after the gated layer
        assert not torch.equal(_images(G), edited)
        assert torch.equal(_images(C), edited)
    session.undo()
    assert G.value_wraps() == [] and len(C.value_wraps()) == 1
