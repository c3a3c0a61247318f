"""StyleGAN2 (rosinality layout): reference outputs, split/resume, export, edits, bad input."""

import pickle

import numpy as np
import pytest
import torch

from rewrite.models.checkpoint_file import load_checkpoint_file
from rewrite.utils.errors import CheckpointError
from rewrite.models import load_model
from rewrite.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

from ..conftest import invoke


@pytest.fixture(scope="module")
def paths(fixtures_dir):
    return (fixtures_dir / "stylegan2_rosinality_tiny64.pt",
            fixtures_dir / "stylegan2_rosinality_tiny64_reference.npz")


@pytest.fixture
def G(paths):
    return load_model(str(paths[0]))


def _close(got, ref, rel=1e-4):
    err = np.abs(np.asarray(got) - ref).max()
    assert err <= rel * max(1.0, np.abs(ref).max()), err


def test_reproduces_the_reference(G, paths):
    ref = np.load(paths[1])
    assert G.config == StyleGAN2Config(64, 32, 3, (64, 64, 48, 32, 32))
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        _close(G.broadcast_latents(z), ref["w"])
        _close(G(z), ref["image"])
        G.set_sampling(truncation=0.7)
        _close(G(z), ref["image_trunc07"])
        # The reference's feature maps were recorded during the truncation-0.7 pass.
        for info in G.layers():
            _close(G.split(z[:2], info.name).values, ref[f"feat.{info.name}"])


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_split_resume_equals_forward(G, noise_mode):
    G.set_sampling(noise=noise_mode)
    z = G.latents(range(3))
    with torch.no_grad():
        if noise_mode == "const":
            plain = G(z)
        for info in G.layers():
            torch.manual_seed(0)
            s = G.split(z, info.name)
            assert s.keys.shape == (3, info.in_channels, info.key_resolution, info.key_resolution)
            assert s.values.shape == (3, info.out_channels, info.value_resolution,
                                      info.value_resolution)
            out = G.resume(s)
            if noise_mode == "const":
                assert torch.equal(out, plain), info.name
            else:
                torch.manual_seed(0)
                assert torch.equal(out, G(z)), info.name
            f = G.layer_function(s)
            assert torch.allclose(f.forward(s.keys), s.values, atol=1e-5)
            # The frozen-demodulation tail is exact at the unedited weight too.
            assert torch.allclose(f.tail(f.linear(s.keys, f.weight)), s.values, atol=1e-5)


def test_statistics_are_cached_per_truncation(G, tmp_path, monkeypatch):
    from rewrite.edit.layer_stats import layer_stats
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path))
    plain = layer_stats(G, "convs.3", n=8, progress=False)
    G.set_sampling(truncation=0.5)
    truncated = layer_stats(G, "convs.3", n=8, progress=False)
    assert truncated.fingerprint.endswith("-t0.5") and plain.fingerprint != truncated.fingerprint
    assert not torch.allclose(plain.keys.moment(), truncated.keys.moment())


def test_random_noise_differs_from_stored(G):
    z = G.latents([0])
    with torch.no_grad():
        const = G(z)
        G.set_sampling(noise="random")
        assert not torch.equal(G(z), const)


def test_export_round_trip_and_bare_state_dict(G, tmp_path):
    path = tmp_path / "g.pt"
    G.save(path)
    obj = load_checkpoint_file(path)
    assert set(obj) == {"g_ema", "latent_avg"}
    fresh = load_model(str(path))
    z = G.latents(range(2))
    G.set_sampling(truncation=0.5)
    fresh.set_sampling(truncation=0.5)
    with torch.no_grad():
        assert torch.equal(fresh(z), G(z))
    torch.save(obj["g_ema"], tmp_path / "bare.pt")
    bare = load_model(str(tmp_path / "bare.pt"), arch="stylegan2")
    with torch.no_grad():
        bare.set_sampling(truncation=1.0)
        G.set_sampling(truncation=1.0)
        assert torch.equal(bare(z), G(z))
        bare.set_sampling(truncation=0.7)
        with pytest.raises(CheckpointError, match="truncation needs 'latent_avg'"):
            bare(z)


def test_bad_checkpoints(paths, tmp_path):
    obj = load_checkpoint_file(paths[0])
    broken = {"g_ema": dict(obj["g_ema"]), "latent_avg": obj["latent_avg"]}
    del broken["g_ema"]["convs.3.noise.weight"]
    broken["g_ema"]["to_rgbs.1.conv.weight"] = torch.zeros(1, 3, 40, 1, 1)
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match=r"missing keys: convs\.3\.noise\.weight.*"
                                              r"to_rgbs\.1\.conv\.weight has shape \(1, 3, 40, 1, 1\)"):
        load_model(str(tmp_path / "broken.pt"))
    torch.save({"g_ema": {"style.1.weight": torch.zeros(4, 4)}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="missing input.input"):
        load_model(str(tmp_path / "partial.pt"))


class _NvidiaLike:
    """Stands for an NVIDIA network pickle: loading it would need code execution."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_nvidia_pickle_is_refused(tmp_path):
    path = tmp_path / "network-snapshot.pkl"
    with open(path, "wb") as f:
        pickle.dump({"G_ema": _NvidiaLike()}, f)
    with pytest.raises(CheckpointError, match="needs full unpickling.*convert_weight.py"):
        load_model(str(path))


def test_cli_detects_and_forces_the_family(paths, tmp_path):
    out = tmp_path / "s.png"
    proc = invoke("sample", str(paths[0]), "--seeds", "0-3", "--out", str(out))
    assert proc.returncode == 0 and out.is_file(), proc.stderr
    proc = invoke("sample", "--weights", str(paths[0]), "--arch", "stylegan2", "--seeds", "0",
                  "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    proc = invoke("layers", str(paths[0]))
    assert "convs.7" in proc.stdout and "ModulatedConv2d-up" in proc.stdout
    proc = invoke("layers", str(paths[0]), "--arch", "dcgan")
    assert proc.returncode == 2 and "no DCGAN weights" in proc.stderr
    proc = invoke("layers", str(paths[0]), "--arch", "biggan")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--arch" in proc.stderr


def test_random_standard_config_shapes():
    cfg = StyleGAN2Config.standard(size=64, style_dim=16, n_mlp=2, channel_multiplier=1)
    assert cfg.channels == (512, 512, 512, 512, 256)
    G = StyleGAN2Generator.random(StyleGAN2Config(32, 8, 2, (16, 16, 8, 8)), seed=1)
    with torch.no_grad():
        img = G(G.latents([0, 1]))
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()
