"""The ProGAN (netdissect layout) family against its reference fixture."""

import copy

import numpy as np
import pytest
import torch

from rewrite.utils.errors import CheckpointError, LayerNotFoundError
from rewrite.models.proggan import ProGANConfig, ProGANGenerator

FIXTURE = "proggan_netdissect_tiny64.pth"
REFERENCE = "proggan_netdissect_tiny64_reference.npz"


@pytest.fixture(scope="module")
def state(fixtures_dir):
    """The fixture's state dict, as torch.load(weights_only=True) gives it."""
    return torch.load(fixtures_dir / FIXTURE, map_location="cpu", weights_only=True)


@pytest.fixture
def G(state):
    return ProGANGenerator.from_checkpoint(state)


def _rel_err(got: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.abs(got.detach().numpy() - ref).max() / max(1.0, np.abs(ref).max()))


def test_matches_reference_image_and_every_feature(G, fixtures_dir):
    ref = np.load(fixtures_dir / REFERENCE)
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        assert _rel_err(G(z), ref["image"]) < 1e-4
        assert _rel_err(G(z.reshape(4, -1, 1, 1)), ref["image"]) < 1e-4
        feats = [k for k in ref.files if k.startswith("feat.")]
        assert len(feats) == 11
        for info in G.layers():
            assert _rel_err(G.split(z[:2], info.name).values, ref[f"feat.{info.name}"]) < 1e-4
        assert _rel_err(G(z[:2]), ref["feat.output_64x64"]) < 1e-4


def test_architecture_is_read_off_the_shapes(G):
    assert G.config == ProGANConfig(z_dim=64, channels=(64, 64, 64, 64, 48, 48, 32, 32, 16, 16))
    assert G.resolution == 64 and G.z_shape == (64,)
    assert G.latents([0, 1, 2]).shape == (3, 64)
    assert [L.name for L in G.layers()] == [f"layer{n}" for n in range(1, 11)]
    L = G.layer("layer5")
    assert (L.in_channels, L.out_channels, L.key_resolution, L.value_resolution) == (64, 48, 16, 16)
    assert (L.kind, L.weight_in_axis, L.kernel_size) == ("Conv2d", 1, 3)
    L1 = G.layer("layer1")
    assert (L1.key_resolution, L1.value_resolution, L1.kernel_size) == (1, 4, 4)
    assert G.weight_name("layer7") == "layer7.conv.weight"
    with pytest.raises(LayerNotFoundError, match=r"output_64x64.*layer1, layer2"):
        G.split(G.latents([0]), "output_64x64")


def test_split_then_resume_equals_forward_at_every_layer(G):
    z = G.latents(range(3))
    with torch.no_grad():
        plain = G(z)
        previous = None
        for info in G.layers():
            s = G.split(z, info.name)
            assert s.keys.shape == (3, info.in_channels, info.key_resolution, info.key_resolution)
            assert s.values.shape == (3, info.out_channels, info.value_resolution,
                                      info.value_resolution)
            assert torch.equal(G.resume(s), plain), info.name
            if previous is not None:   # keys = PixelNorm (+ upsample) of the previous values
                assert torch.equal(getattr(G, info.name).keys(previous), s.keys)
            previous = s.values
        changed = G.resume(s.with_values(torch.zeros_like(s.values)))
        assert not torch.equal(changed, plain)


def test_layer_function_reproduces_the_values(G):
    z = G.latents(range(2))
    with torch.no_grad():
        for info in G.layers():
            s = G.split(z, info.name)
            f = G.layer_function(s)
            assert f.activation == "leaky_relu" and f.negative_slope == 0.2
            assert (f.in_axis, f.out_axis) == (1, 0)
            assert f.weight.shape == getattr(G, info.name).conv.weight.shape
            assert (f.forward(s.keys) - s.values).abs().max() < 1e-5, info.name
            # linear in the weight: an edited weight goes through the same tail
            w2 = f.weight * 0.5
            block = getattr(G, info.name)
            want = block.act(torch.nn.functional.conv2d(
                s.keys, w2, None, 1, block.conv.padding) * block.wscale.scale
                + block.wscale.b.view(1, -1, 1, 1))
            assert (f.forward(s.keys, w2) - want).abs().max() < 1e-5, info.name


def test_checkpoint_roundtrip_renders_identically(G, state, tmp_path):
    ckpt = G.checkpoint()
    assert list(ckpt) == list(state)
    assert all(v.device.type == "cpu" for v in ckpt.values())
    path = tmp_path / "proggan.pth"
    G.save(path)
    loaded = ProGANGenerator.from_checkpoint(torch.load(path, weights_only=True))
    z = G.latents(range(3))
    with torch.no_grad():
        assert torch.equal(loaded(z), G(z))
    assert loaded.fingerprint() == G.fingerprint()
    assert loaded.config == G.config


def test_wrapped_and_prefixed_layouts_load(G, state):
    z = G.latents(range(2))
    for obj in ({"state_dict": state}, {f"module.{k}": v for k, v in state.items()},
                {"state_dict": {f"module.{k}": v for k, v in state.items()}}):
        with torch.no_grad():
            assert torch.equal(ProGANGenerator.from_checkpoint(obj)(z), G(z))


def test_missing_key_is_named(state):
    bad = dict(state)
    del bad["layer3.wscale.b"]
    del bad["output_64x64.conv.weight"]
    with pytest.raises(CheckpointError,
                       match=r"missing keys: layer3\.wscale\.b, output_64x64\.conv\.weight"):
        ProGANGenerator.from_checkpoint(bad)


def test_unexpected_keys_are_named_with_the_missing_ones(state):
    bad = dict(state)
    del bad["layer2.conv.weight"]
    bad["layer4.conv.bias"] = torch.zeros(64)
    with pytest.raises(CheckpointError, match=r"missing keys: layer2\.conv\.weight; "
                                              r"unexpected keys: layer4\.conv\.bias"):
        ProGANGenerator.from_checkpoint(bad)


def test_output_size_that_does_not_fit_the_depth(state):
    bad = {k.replace("output_64x64", "output_32x32"): v for k, v in state.items()}
    with pytest.raises(CheckpointError, match=r"found output_32x32, but 10 layers render 64x64"):
        ProGANGenerator.from_checkpoint(bad)


def test_wrong_shapes_are_named_all_at_once(state):
    bad = dict(state)
    bad["layer4.conv.weight"] = torch.zeros(64, 32, 3, 3)
    bad["layer9.wscale.b"] = torch.zeros(17)
    with pytest.raises(CheckpointError) as err:
        ProGANGenerator.from_checkpoint(bad)
    msg = str(err.value)
    assert r"layer4.conv.weight has shape (64, 32, 3, 3), expected (64, 64, 3, 3)" in msg
    assert r"layer9.wscale.b has shape (17,), expected (16,)" in msg
    bad = dict(state)
    bad["layer2.conv.weight"] = torch.zeros(64, 64)
    with pytest.raises(CheckpointError, match=r"layer2\.conv\.weight has shape \(64, 64\), "
                                              r"expected \[out, in, k, k\]"):
        ProGANGenerator.from_checkpoint(bad)


def test_another_family_is_refused(tmp_path):
    dcgan_like = {"main.0.weight": torch.zeros(8, 4, 4, 4), "main.1.weight": torch.zeros(4)}
    with pytest.raises(CheckpointError, match=r"no ProGAN weights found.*main\.0\.weight"):
        ProGANGenerator.from_checkpoint(dcgan_like)
    with pytest.raises(CheckpointError, match="expected a dict"):
        ProGANGenerator.from_checkpoint([1, 2])


@pytest.mark.parametrize("layer,units", [("layer1", [0, 5]), ("layer6", [3]),
                                         ("layer10", [0, 1, 15])])
def test_unit_ablation_silences_the_units(G, layer, units):
    new = G.unit_ablation(layer, units)
    assert set(new) == {f"{layer}.conv.weight", f"{layer}.wscale.b"}
    ablated = copy.deepcopy(G)
    ablated.load_state_dict({**ablated.state_dict(), **new})
    z = G.latents(range(3))
    with torch.no_grad():
        values = ablated.split(z, layer).values
        assert torch.count_nonzero(values[:, units]) == 0
        others = [u for u in range(values.shape[1]) if u not in units]
        assert torch.equal(values[:, others], G.split(z, layer).values[:, others])
    assert ablated.fingerprint() != G.fingerprint()
