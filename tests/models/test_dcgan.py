import numpy as np
import pytest
import torch

from rewrite.utils.errors import LayerNotFoundError
from rewrite.models import load_model


def test_real_model_matches_reference(face_model, fixtures_dir):
    ref = np.load(fixtures_dir / "dcgan_digiface64_reference.npz")
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        image = face_model(z)
        assert np.abs(image.numpy() - ref["image"]).max() < 1e-5
        # feat.main.N is the output of ReLU main.N: the keys of layer main.(N+1).
        for n in (2, 5, 8, 11):
            keys = face_model.split(z[:2], f"main.{n + 1}").keys
            assert np.abs(keys.numpy() - ref[f"feat.main.{n}"]).max() < 1e-5, n
            values = face_model.split(z[:2], f"main.{n - 2}").values
            assert np.abs(values.numpy() - ref[f"feat.main.{n}"]).max() < 1e-5, n


def test_real_model_architecture(face_model):
    cfg = face_model.config
    assert (cfg.nz, cfg.channels, cfg.kernel_size, cfg.nc) == (100, (512, 256, 128, 64, 3), 4, 3)
    assert face_model.resolution == 64
    names = [L.name for L in face_model.layers()]
    assert names == ["main.0", "main.3", "main.6", "main.9", "main.12"]
    L = face_model.layer("main.6")
    assert (L.in_channels, L.out_channels, L.key_resolution, L.value_resolution) == (256, 128, 8, 16)
    assert L.key_source == "main.5" and L.weight_in_axis == 0


@pytest.mark.parametrize("model_name", ["tiny", pytest.param("face", marks=pytest.mark.slow)])
def test_split_then_resume_equals_forward_at_every_layer(model_name, tiny_dcgan, request):
    # The real model only for "face" (the fast lane runs "tiny" without it).
    G = tiny_dcgan if model_name == "tiny" else request.getfixturevalue("face_model")
    z = G.latents(range(4))
    with torch.no_grad():
        plain = G(z)
        for info in G.layers():
            s = G.split(z, info.name)
            assert s.keys.shape == (4, info.in_channels, info.key_resolution, info.key_resolution)
            assert s.values.shape == (4, info.out_channels, info.value_resolution,
                                      info.value_resolution)
            assert torch.equal(G.resume(s), plain), info.name


def test_resume_uses_the_given_values(tiny_dcgan):
    z = tiny_dcgan.latents(range(2))
    with torch.no_grad():
        s = tiny_dcgan.split(z, "main.3")
        changed = tiny_dcgan.resume(s.with_values(torch.zeros_like(s.values)))
        assert not torch.equal(changed, tiny_dcgan(z))
    with pytest.raises(ValueError, match="shape"):
        s.with_values(torch.zeros(1))


def test_unknown_layer_lists_the_editable_ones(tiny_dcgan):
    with pytest.raises(LayerNotFoundError, match=r"main\.7.*main\.0, main\.3, main\.6, main\.9"):
        tiny_dcgan.split(tiny_dcgan.latents([0]), "main.7")


def test_export_then_load_renders_identically(tiny_dcgan, tmp_path):
    path = tmp_path / "tiny.pt"
    tiny_dcgan.save(path)
    loaded = load_model(str(path))
    z = tiny_dcgan.latents(range(3))
    with torch.no_grad():
        assert torch.equal(loaded(z), tiny_dcgan(z))
    assert loaded.fingerprint() == tiny_dcgan.fingerprint()
    assert loaded.config == tiny_dcgan.config


def test_fingerprint_changes_with_any_weight(tiny_dcgan):
    before = tiny_dcgan.fingerprint()
    with torch.no_grad():
        tiny_dcgan.main[4].running_mean[0] += 1e-3
    assert tiny_dcgan.fingerprint() != before
