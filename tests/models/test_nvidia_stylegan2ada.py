"""StyleGAN2-ADA from NVIDIA's pickle: NVIDIA's own outputs layer by layer, split/resume,
truncation cutoff, content detection, writing back .pkl / .pt, an edit on the fixture."""

import numpy as np
import pytest
import torch

from rewrite.models import load_model
from rewrite.models.nvidia_pickle import read_nvidia_pickle
from rewrite.models.stylegan2ada import StyleGAN2ADAConfig, StyleGAN2ADAGenerator
from rewrite.utils.errors import CheckpointError

from .nvidia_checks import (assert_edit_lowers_the_loss_and_exports,
                           assert_training_copy_moved_like_g_ema, held_out_change_by_solver,
                           relative_error, small_copy_paste)


@pytest.fixture(scope="module")
def paths(fixtures_dir):
    pkl = fixtures_dir / "stylegan2ada_tiny64.pkl"
    ref = fixtures_dir / "stylegan2ada_tiny64_reference.npz"
    if not (pkl.is_file() and ref.is_file()):
        pytest.skip("stylegan2-ada fixtures not found")
    return pkl, ref


@pytest.fixture
def G(paths):
    return load_model(str(paths[0]))


def test_reproduces_nvidias_outputs(G, paths):
    ref = np.load(paths[1])
    assert G.family == "stylegan2-ada" and G.resolution == 64 and G.num_ws == int(ref["num_ws"])
    assert G.config.channels == tuple(ref["channels"]) and G.config.conv_clamp == 256
    assert torch.equal(G.mapping.w_avg, torch.from_numpy(ref["w_avg"]))
    z = torch.from_numpy(ref["z"])
    errors = {}
    with torch.no_grad():
        ws = G.broadcast_latents(z)
        errors["ws"] = relative_error(ws, ref["ws"])
        taps = {}
        errors["image"] = relative_error(G.synthesize(ws, taps), ref["image"])
        for name, out in taps.items():
            key = ("rgb." if name.endswith("torgb") else "feat.") + "synthesis." + name
            errors[key] = relative_error(out[:2], ref[key])
        errors["forward"] = relative_error(G(z), ref["image"])
        G.set_sampling(truncation=0.7)
        errors["ws_trunc07"] = relative_error(G.broadcast_latents(z), ref["ws_trunc07"])
        errors["image_trunc07"] = relative_error(G(z), ref["image_trunc07"])
    assert len(errors) == 2 + 14 + 3
    assert max(errors.values()) <= 1e-5, errors


def test_truncation_cutoff(G):
    z = G.latents(range(2))
    with torch.no_grad():
        full = G.broadcast_latents(z)
        G.set_sampling(truncation=0.5)
        G.set_sampling(cutoff=4)
        cut = G.broadcast_latents(z)
    assert torch.equal(cut[:, 4:], full[:, 4:])
    assert torch.allclose(cut[:, :4], G.mapping.w_avg.lerp(full[:, :4], 0.5))
    assert G.sampling_tag() == "-t0.5c4"


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_split_resume_equals_forward(G, noise_mode):
    G.set_sampling(noise=noise_mode)
    z = G.latents(range(3))
    assert [i.name for i in G.layers()] == ["b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0",
                                            "b16.conv1", "b32.conv0", "b32.conv1",
                                            "b64.conv0", "b64.conv1"]
    with torch.no_grad():
        for info in G.layers():
            torch.manual_seed(0)
            plain = G(z)
            torch.manual_seed(0)
            s = G.split(z, info.name)
            assert s.keys.shape == (3, info.in_channels, info.key_resolution, info.key_resolution)
            assert s.values.shape == (3, info.out_channels, info.value_resolution,
                                      info.value_resolution)
            assert torch.equal(G.resume(s), plain), info.name
            f = G.layer_function(s)
            assert G.weight_name(info.name) == f"synthesis.{info.name}.weight"
            assert torch.allclose(f.forward(s.keys), s.values, atol=1e-5)
            assert torch.allclose(f.tail(f.linear(s.keys, f.weight)), s.values, atol=1e-5)


def test_detected_by_content_and_bad_layouts(paths, tmp_path):
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(paths[0].read_bytes())
    assert load_model(str(renamed)).family == "stylegan2-ada"
    snap = read_nvidia_pickle(paths[0])
    with pytest.raises(CheckpointError, match="persisted Discriminator"):
        StyleGAN2ADAGenerator.from_checkpoint({"G_ema": snap["D"]})
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(paths[0].read_bytes()[:100000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(str(truncated))


def test_written_back_as_pkl_and_pt(G, paths, tmp_path):
    with torch.no_grad():
        G.synthesis.b16.conv1.weight.mul_(0.5)
    z = G.latents(range(3))
    with torch.no_grad():
        want = G(z)
    G.save(tmp_path / "edited.pkl")
    G.save(tmp_path / "edited.pt")
    snap = read_nvidia_pickle(tmp_path / "edited.pkl")
    assert list(snap) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    orig = read_nvidia_pickle(paths[0])
    # G_ema holds the edit and G moved by the same difference; nothing else changed,
    # and the source text and attributes are the input's.
    assert_training_copy_moved_like_g_ema(snap, orig, "synthesis.b16.conv1.weight")
    assert snap["G_ema"].module_src == orig["G_ema"].module_src
    for path in ("edited.pkl", "edited.pt"):
        with torch.no_grad():
            assert torch.equal(load_model(str(tmp_path / path))(z), want), path
    assert isinstance(load_model(str(tmp_path / "edited.pt")).config, StyleGAN2ADAConfig)
    with pytest.raises(CheckpointError, match="not loaded from an NVIDIA .pkl"):
        load_model(str(tmp_path / "edited.pt")).save(tmp_path / "again.pkl")


def test_an_edit_lowers_the_goal_loss(G, paths, tmp_path, monkeypatch):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    spec = small_copy_paste(G, str(paths[0]), "b16.conv1")
    assert_edit_lowers_the_loss_and_exports(G, spec, tmp_path / "edited.pkl")


def test_the_constrained_edit_is_more_local_than_finetuning_the_layer(G, paths, tmp_path,
                                                                      monkeypatch):
    """The default edit and the unconstrained baseline (finetune-layer) on the same request:
    held-out samples the spec never saw change less under the default."""
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    change = held_out_change_by_solver(G, str(paths[0]), "b16.conv1")
    assert change["least-collateral"] < change["finetune-layer"], change


def test_class_option_samples_the_chosen_class(tmp_path, paths):
    """`--class` picks the label of a class-conditional model; out of range, or on an
    unconditional model, it is a clear error."""
    import dataclasses

    from PIL import Image

    from ..conftest import invoke

    fixture = paths[0]
    base = load_model(str(fixture))
    cfg = dataclasses.replace(base.config, c_dim=3, embed_features=base.config.w_dim)
    G = StyleGAN2ADAGenerator(cfg)
    ref = base.state_dict()
    torch.manual_seed(0)
    with torch.no_grad():                 # the fixture's weights; the label's layers at random
        for n, t in list(G.named_parameters()) + list(G.named_buffers()):
            if n in ref and ref[n].shape == t.shape:
                t.copy_(ref[n])
            elif t.is_floating_point():
                t.normal_(0, 10.0 if n.startswith("mapping.embed") else 1.0)
    path = tmp_path / "conditional.pt"
    G.save(path)
    grids = []
    for cls in ("0", "2"):
        out = tmp_path / f"c{cls}.png"
        res = invoke("sample", str(path), "--seeds", "0-1", "--class", cls, "--out", str(out))
        assert res.returncode == 0, res.stderr
        grids.append(np.asarray(Image.open(out)))
    assert not np.array_equal(grids[0], grids[1])
    res = invoke("sample", str(path), "--seeds", "0", "--class", "3",
                 "--out", str(tmp_path / "x.png"))
    assert res.returncode == 2 and "out of range: this model has 3 classes" in res.stderr
    res = invoke("sample", str(fixture), "--seeds", "0", "--class", "1",
                 "--out", str(tmp_path / "y.png"))
    assert res.returncode == 2 and "not class-conditional" in res.stderr


def test_eval_and_the_app_work_unchanged(paths, tmp_path, monkeypatch):
    """The engine's consumers take the NVIDIA model as any other: `rewrite eval` and an
    Apply in the app."""
    import json
    import time

    from fastapi.testclient import TestClient

    from rewrite.ui.server import create_app
    from rewrite.ui.state import AppState

    from ..conftest import invoke

    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    spec = small_copy_paste(load_model(str(paths[0])), str(paths[0]), "b16.conv1",
                            stats={"samples": 200, "seed": 0})
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    res = invoke("eval", str(path), "--seeds", "0-15", "--out", str(tmp_path / "eval"),
                 env={"REWRITE_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())
    client = TestClient(create_app(AppState(str(paths[0]), tmp_path / "ws", stats_samples=200)),
                        base_url="http://127.0.0.1:8000")
    assert client.post("/api/apply", json=spec).status_code == 202
    deadline = time.time() + 120
    while (job := client.get("/api/job").json())["state"] == "running":
        assert time.time() < deadline
        time.sleep(0.1)
    assert job["state"] == "done", job
    assert client.get("/api/sample/5.png").status_code == 200
    # The download is NVIDIA's format again, holding the edited G_ema.
    ckpt = client.get("/api/export/checkpoint")
    assert ckpt.status_code == 200
    assert 'filename="edited.pkl"' in ckpt.headers["content-disposition"]
    (tmp_path / "downloaded.pkl").write_bytes(ckpt.content)
    snap = read_nvidia_pickle(tmp_path / "downloaded.pkl")
    orig = read_nvidia_pickle(paths[0])
    assert list(snap) == list(orig)
    changed = [k for k, t in snap["G_ema"].state_dict().items()
               if not torch.equal(t, orig["G_ema"].state_dict()[k])]
    assert changed == ["synthesis.b16.conv1.weight"]
