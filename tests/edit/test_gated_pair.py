"""``gated-pair``: the partner layer, a gated edit with a companion in a session (both layers
wrapped, one strength, all or nothing), in delta files, and the method on the face model."""

import copy
from pathlib import Path

import pytest
import torch

from rewrite.edit import Delta, EditSpec, Rewriter
from rewrite.edit.calibrate import silent_splits
from rewrite.edit.gated_pair import partner_layer
from rewrite.memory.gate import Gate
from rewrite.metrics.evaluate import variant
from rewrite.utils.errors import DeltaFileError, EditError

from ..conftest import make_tiny_dcgan, rewrite_delta_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = list(range(12))


def _part(G, layer: str, seed: int, strength: float = 1.0) -> Delta:
    """A gated change of ``layer``: a random weight change behind a gate half open on the
    test samples."""
    g = torch.Generator().manual_seed(seed)
    name = G.weight_name(layer)
    W = G.state_dict()[name]
    u = torch.randn(W.shape[0], generator=g)
    u = u / u.norm()
    with torch.no_grad():
        keys = G.split(G.latents(SAMPLES), layer).keys
    reads = torch.einsum("c,nchw->nhw", u, keys)
    change = torch.randn(W.shape, generator=g) * float(W.std())
    gate = Gate(u, float(reads.median()), 0.25 * float(reads.std()), "keys")
    return Delta(layer, "gated-pair", dense={name: change}, loss_kind="pixel-L1", gate=gate,
                 strength=strength)


def _pair(G, strength: float = 1.0, scale: float = 1.0) -> Delta:
    """A gated edit of main.6 with a companion on main.3 (both changes times ``scale``)."""
    main, other = _part(G, "main.6", 0, strength), _part(G, "main.3", 1)
    for d in (main, other):
        d.dense = {n: t * scale for n, t in d.dense.items()}
    main.companion = other
    return main


@torch.no_grad()
def _images(G, samples=SAMPLES) -> torch.Tensor:
    return G(G.latents(samples))


def test_the_partner_is_the_layer_before_unless_its_keys_are_not_a_grid(tiny_dcgan):
    G = tiny_dcgan                       # main.0 reads the latent: one key cell
    assert partner_layer(G, "main.6") == "main.3"
    assert partner_layer(G, "main.9") == "main.6"
    assert partner_layer(G, "main.3") is None


def test_a_pair_wraps_both_layers_and_undo_restores_everything(tiny_dcgan):
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    x0, fp = _images(G), G.fingerprint()
    alone = _pair(G)
    alone.companion = None
    session.apply(alone)
    x_main = _images(G)
    session.undo()
    delta = session.apply(_pair(G))
    x_pair = _images(G)
    assert [layer for layer, _ in G.value_wraps()] == ["main.6", "main.3"]
    assert float((x_pair - x_main).abs().mean()) > 1e-3     # the companion draws too
    assert session.undo() is delta
    assert G.value_wraps() == [] and torch.equal(_images(G), x0) and G.fingerprint() == fp


def test_strength_scales_both_layers(tiny_dcgan):
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    x0 = _images(G)
    session.apply(_pair(G))
    session.set_strength(0, 0)
    assert G.value_wraps() == [] and torch.equal(_images(G), x0)
    session.set_strength(0, 0.5)
    x_half = _images(G)
    assert len(G.value_wraps()) == 2
    session.reset()
    session.apply(_pair(G, scale=0.5))      # both changes halved, at strength 1
    assert torch.equal(_images(G), x_half)


def test_a_pair_delta_file_re_applies_bit_for_bit(tiny_dcgan, tmp_path):
    G = tiny_dcgan
    session = Rewriter(G, progress=False)
    session.apply(_pair(G, strength=0.7))
    x1, fp1 = _images(G), G.fingerprint()
    path = session.export_deltas(tmp_path / "pair.safetensors")
    fresh = make_tiny_dcgan()
    (loaded,) = Rewriter(fresh, progress=False).apply_delta_file(path)
    assert torch.equal(_images(fresh), x1) and fresh.fingerprint() == fp1
    mine = session.deltas[0]
    assert loaded.companion.layer == "main.3" and loaded.strength == 0.7
    assert torch.equal(loaded.companion.gate.u, mine.companion.gate.u)
    assert torch.equal(loaded.companion.dense["main.3.weight"],
                       mine.companion.dense["main.3.weight"])
    assert loaded.figures()["companion_layer"] == "main.3"


def _tampered(tmp_path, change) -> Path:
    good = tmp_path / "good.safetensors"
    session = Rewriter(make_tiny_dcgan(), progress=False)
    session.apply(_pair(session.model))
    session.export_deltas(good)
    return rewrite_delta_file(good, lambda entries, tensors: change(entries[0], tensors),
                              tmp_path / "damaged.safetensors")


def _drop_gate(entry, tensors):
    del entry["companion"]["gate"]


def _same_layer(entry, tensors):
    entry["companion"]["figures"]["layer"] = "main.6"
    entry["companion"]["dense"] = ["main.6.weight"]
    tensors["edit.0.companion.dense.main.6.weight"] = tensors.pop(
        "edit.0.companion.dense.main.3.weight")[:8, :4].contiguous()
    tensors["edit.0.companion.gate.u"] = tensors["edit.0.companion.gate.u"][:8].contiguous()


def _missing_tensor(entry, tensors):
    del tensors["edit.0.companion.dense.main.3.weight"]


@pytest.mark.parametrize("damage", [_drop_gate, _same_layer, _missing_tensor])
def test_a_damaged_companion_is_refused_and_nothing_is_wrapped(tiny_dcgan, tmp_path, damage):
    G = tiny_dcgan
    path = _tampered(tmp_path, damage)
    x0 = _images(G)
    session = Rewriter(G, progress=False)
    with pytest.raises((DeltaFileError, EditError)):
        session.apply_delta_file(path)
    assert G.value_wraps() == [] and session.deltas == []
    assert torch.equal(_images(G), x0)


def test_silent_splits_elsewhere_hold_the_same_samples(tiny_dcgan):
    """Split at another layer, the silent calibration samples are the same samples."""
    G = tiny_dcgan
    D = torch.randn(2, 8)
    samples = list(range(40))
    here = silent_splits(G, "main.6", D, samples, batch=16)
    there = silent_splits(G, "main.6", D, samples, batch=16, at="main.3")
    assert sum(len(s.keys) for s in here) == sum(len(s.keys) for s in there) > 0
    assert there[0].layer == "main.3"
    with torch.no_grad():
        a = torch.cat([G.resume(s) for s in here])
        b = torch.cat([G.resume(s) for s in there])
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_gated_pair_fits_both_layers_on_the_face_model(face_model, tmp_path):
    """A short fit of the beard request: both layers change, the goal loss falls, the silent
    change on the calibration samples keeps within the budget, and the delta file gives a
    fresh copy the very same images."""
    G = face_model
    spec = variant(EditSpec.load(ROOT / "benchmarks/edits/tune/add-beard.json"), "gated-pair",
                   params={"steps": 20, "examples": 4, "silent": 4, "keep": 2,
                           "projected_examples": 6})
    spec.stats_samples = 2000
    session = Rewriter(G, progress=False)
    delta = session.compute(spec)
    assert delta.layer == "main.6" and delta.companion.layer == "main.3"
    assert delta.loss < delta.loss_before
    assert 0 < delta.kept_share <= 1.25 and delta.silent_change <= 0.008 + 1e-6
    for part in (delta, delta.companion):
        assert float(next(iter(part.dense.values())).abs().max()) > 0
    samples = [9, 35, 100]
    session.apply(delta)
    try:
        x1 = _images(G, samples)
        path = session.export_deltas(tmp_path / "beard.safetensors")
    finally:
        session.reset()
    fresh = copy.deepcopy(G)
    Rewriter(fresh, progress=False).apply_delta_file(path)
    assert torch.equal(_images(fresh, samples), x1)


@pytest.mark.slow
def test_without_a_layer_before_the_edit_is_gateds_on_its_layer_alone(face_model):
    """At main.3 (the layer before reads the latent) gated-pair solves one layer, and its
    change is gated's with the gate per image (face_gate_alone) at the same parameters, bit
    for bit; face_gate_alone 0 gives gated's without one."""
    G = face_model
    # gated-pair's own defaults beyond gated's (the projected goals, FRONTIER §31) given to
    # both, with fewer projected examples to keep the test short
    small = {"steps": 10, "examples": 4, "silent": 4, "keep": 2, "project_below": 0.18,
             "projected_examples": 6}
    spec = EditSpec.load(ROOT / "benchmarks/edits/tune/add-beard-main3.json")
    spec.stats_samples = 2000
    session = Rewriter(G, progress=False)
    pair = session.compute(variant(spec, "gated-pair", params=small))
    alone = session.compute(variant(spec, "gated", params={**small, "silent_budget": 0.007,
                                                           "face_gate": 1.0}))
    assert pair.method == "gated-pair" and pair.companion is None and pair.layer == "main.3"
    assert pair.gate.face_D is not None and pair.gate.face_b == alone.gate.face_b
    assert torch.equal(pair.dense["main.3.weight"], alone.dense["main.3.weight"])
    assert float(pair.dense["main.3.weight"].abs().max()) > 0
    bare = session.compute(variant(spec, "gated-pair", params={**small, "face_gate_alone": 0}))
    plain = session.compute(variant(spec, "gated", params={**small, "silent_budget": 0.007}))
    assert bare.gate.face_D is None
    assert torch.equal(bare.dense["main.3.weight"], plain.dense["main.3.weight"])


def test_the_solve_line_names_both_layers(tiny_dcgan):
    from rewrite.metrics.before_after import solve_line
    line = solve_line(_pair(tiny_dcgan))
    assert line.startswith("solved with gated-pair at main.6 and main.3, gated: pixel loss")


def test_a_partner_must_be_another_layer(tiny_dcgan):
    from types import SimpleNamespace

    from rewrite.edit.gated_pair import GatedPairParams, gated_pair_fit
    inputs = SimpleNamespace(info=SimpleNamespace(name="main.6"))
    with pytest.raises(EditError, match="two layers"):
        gated_pair_fit(tiny_dcgan, inputs, GatedPairParams(), partner="main.6")
