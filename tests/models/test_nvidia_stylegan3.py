"""StyleGAN3-T and -R from NVIDIA's pickles: NVIDIA's own outputs layer by layer,
split/resume, the layer function, content detection, writing back .pkl / .pt, an edit."""

import numpy as np
import pytest
import torch

from rewrite.models import load_model
from rewrite.models.nvidia_pickle import read_nvidia_pickle
from rewrite.models.stylegan2ada import StyleGAN2ADAGenerator
from rewrite.models.stylegan3 import StyleGAN3Config, StyleGAN3Generator
from rewrite.utils.errors import CheckpointError, EditError

from .nvidia_checks import (assert_edit_lowers_the_loss_and_exports,
                           assert_training_copy_moved_like_g_ema, held_out_change_by_solver,
                           relative_error, small_copy_paste)

VARIANTS = ["t", "r"]


def _paths(fixtures_dir, v):
    pkl = fixtures_dir / f"stylegan3{v}_tiny64.pkl"
    ref = fixtures_dir / f"stylegan3{v}_tiny64_reference.npz"
    if not (pkl.is_file() and ref.is_file()):
        pytest.skip(f"stylegan3-{v} fixtures not found")
    return pkl, ref


@pytest.fixture(params=VARIANTS)
def variant(request, fixtures_dir):
    return request.param, _paths(fixtures_dir, request.param)


@pytest.fixture
def G(variant):
    return load_model(str(variant[1][0]))


def test_reproduces_nvidias_outputs(G, variant):
    v, (_, ref_path) = variant
    ref = np.load(ref_path)
    assert G.family == "stylegan3" and G.resolution == 64 and G.num_ws == int(ref["num_ws"])
    assert G.config.radial == (v == "r")
    assert [L.name for L in G.layers()] == [str(n) for n in ref["layer_names"]]
    assert [L.out_size for L in G.config.layers] == list(ref["layer_sizes"][1:])
    assert torch.equal(G.mapping.w_avg, torch.from_numpy(ref["w_avg"]))
    z = torch.from_numpy(ref["z"])
    errors = {}
    with torch.no_grad():
        ws = G.broadcast_latents(z)
        errors["ws"] = relative_error(ws, ref["ws"])
        taps = {}
        errors["image"] = relative_error(G.synthesize(ws, taps), ref["image"])
        for name, out in taps.items():
            errors[name] = relative_error(out[:2], ref[f"feat.synthesis.{name}"])
        errors["forward"] = relative_error(G(z), ref["image"])
        G.set_sampling(truncation=0.7)
        errors["ws_trunc07"] = relative_error(G.broadcast_latents(z), ref["ws_trunc07"])
        errors["image_trunc07"] = relative_error(G(z), ref["image_trunc07"])
    assert len(errors) == 2 + 16 + 3          # input + 15 layers
    assert max(errors.values()) <= 3e-5, errors    # measured: T 1.3e-6, R 8.1e-6


def test_split_resume_equals_forward(G):
    z = G.latents(range(3))
    names = [i.name for i in G.layers()]
    assert len(names) == 15 and names[0].startswith("L0_") and names[-1].startswith("L14_")
    with torch.no_grad():
        plain = G(z)
        for info in G.layers():
            s = G.split(z, info.name)
            assert s.keys.shape == (3, info.in_channels, info.key_resolution, info.key_resolution)
            assert s.values.shape == (3, info.out_channels, info.value_resolution,
                                      info.value_resolution)
            assert torch.equal(G.resume(s), plain), info.name
            f = G.layer_function(s)
            assert G.weight_name(info.name) == f"synthesis.{info.name}.weight"
            assert torch.allclose(f.forward(s.keys), s.values, atol=1e-5), info.name
            # The closed form's view (non-linearity after the filters) has the values'
            # shape; it is exact for ToRGB and close for the filtered layers.
            approx = f.tail(f.linear(s.keys, f.weight))
            assert approx.shape == s.values.shape
            rel = float((approx - s.values).norm() / s.values.norm())
            assert rel < (1e-5 if info.kind.endswith("ToRGB") else 0.5), (info.name, rel)


def test_image_window(G):
    def window(info):
        return {"key": (info.key_margin, info.key_cells),
                "value": (info.value_margin, info.value_cells)}

    infos = G.layers()
    assert window(infos[0]) == {"key": (10, 16), "value": (10, 16)}
    assert window(infos[4]) == {"key": (10, 16), "value": (10, 32)}
    assert window(infos[13]) == {"key": (10, 64), "value": (0, 64)}
    assert window(infos[14]) == {"key": (0, 64), "value": (0, 64)}


def test_a_sample_renders_the_same_in_any_batch(G):
    with torch.no_grad():
        both = G(G.latents([0, 1]))
        one = G(G.latents([1]))
    assert torch.allclose(both[1:], one, atol=1e-5)


def test_detected_by_content_and_bad_layouts(variant, tmp_path):
    pkl = variant[1][0]
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(pkl.read_bytes())
    assert load_model(str(renamed)).family == "stylegan3"
    snap = read_nvidia_pickle(pkl)
    assert StyleGAN3Generator.claims(snap) and not StyleGAN2ADAGenerator.claims(snap)
    with pytest.raises(CheckpointError, match="persisted Discriminator"):
        StyleGAN3Generator.from_checkpoint({"G_ema": snap["D"]})


def test_sg2ada_pickle_is_not_claimed(fixtures_dir):
    pkl = fixtures_dir / "stylegan2ada_tiny64.pkl"
    if not pkl.is_file():
        pytest.skip("stylegan2-ada fixture not found")
    assert not StyleGAN3Generator.claims(read_nvidia_pickle(pkl))


def test_written_back_as_pkl_and_pt(G, variant, tmp_path):
    pkl = variant[1][0]
    name = G.layers()[5].name
    with torch.no_grad():
        getattr(G.synthesis, name).weight.mul_(-0.5)
    z = G.latents(range(3))
    with torch.no_grad():
        want = G(z)
    G.save(tmp_path / "edited.pkl")
    G.save(tmp_path / "edited.pt")
    snap = read_nvidia_pickle(tmp_path / "edited.pkl")
    orig = read_nvidia_pickle(pkl)
    assert list(snap) == list(orig)
    assert_training_copy_moved_like_g_ema(snap, orig, f"synthesis.{name}.weight")
    assert snap["G_ema"].module_src == orig["G_ema"].module_src
    for path in ("edited.pkl", "edited.pt"):
        with torch.no_grad():
            assert torch.equal(load_model(str(tmp_path / path))(z), want), path
    assert isinstance(load_model(str(tmp_path / "edited.pt")).config, StyleGAN3Config)
    with pytest.raises(CheckpointError, match="not loaded from an NVIDIA .pkl"):
        load_model(str(tmp_path / "edited.pt")).save(tmp_path / "again.pkl")


@pytest.mark.parametrize("v, layer_index", [("t", 13), ("t", 14), ("r", 13)])
def test_an_edit_lowers_the_goal_loss(fixtures_dir, tmp_path, monkeypatch, v, layer_index):
    pkl = _paths(fixtures_dir, v)[0]
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    G = load_model(str(pkl))
    layer = G.layers()[layer_index].name          # the tiny model's last layers: 2 channels
    spec = small_copy_paste(G, str(pkl), layer, rank=1)
    assert_edit_lowers_the_loss_and_exports(G, spec, tmp_path / "edited.pkl")


@pytest.mark.parametrize("v, layer_index", [("t", 8), ("r", 13)])
def test_the_constrained_edit_is_more_local_than_finetuning_the_layer(fixtures_dir, tmp_path,
                                                                      monkeypatch, v,
                                                                      layer_index):
    """As for StyleGAN2-ADA: held-out samples change less under the default edit than under
    finetune-layer on the same request (an upsampling layer of T, a critically sampled
    one of R)."""
    pkl = _paths(fixtures_dir, v)[0]
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    G = load_model(str(pkl))
    change = held_out_change_by_solver(G, str(pkl), G.layers()[layer_index].name, rank=1)
    assert change["least-collateral"] < change["finetune-layer"], change


def test_unit_ablation_is_refused_with_the_reason(G):
    """A zeroed unit is NaN after stylegan3's per-unit weight normalisation, so the
    dissect-erase baseline is refused with the reason instead of rendering NaN."""
    with pytest.raises(EditError, match="normalised by its own RMS"):
        G.unit_ablation(G.layers()[8].name, [0, 3])
