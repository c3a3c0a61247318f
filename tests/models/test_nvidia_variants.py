"""StyleGAN2-ADA's 'orig' and 'resnet' architectures and class-conditional StyleGAN2-ADA /
StyleGAN3-T against NVIDIA's own outputs (``tests/fixtures/nvlabs``, made by
``tools/make_nvlabs_variant_fixtures.py``; see the README there): mapping, truncation,
every synthesis layer, the images; split/resume on these layouts; classes render apart."""

from pathlib import Path

import numpy as np
import pytest
import torch

from rewrite.models import load_model

from .nvidia_checks import relative_error

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs"
NAMES = ["stylegan2ada_orig_tiny32", "stylegan2ada_resnet_tiny32", "stylegan2ada_cond_tiny32",
         "stylegan3t_cond_tiny32"]
CONDITIONAL = [n for n in NAMES if "_cond_" in n]
TOLERANCE = 1e-4        # of each tensor's max |ref| (the shared README's tolerance)


def _load(name: str):
    return load_model(str(FIXTURES / f"{name}.pkl")), np.load(FIXTURES / f"{name}_reference.npz")


def _ours(G, key: str, taps: dict, hooked: dict) -> torch.Tensor:
    """Our output for the reference's hook ``key`` (``feat.`` / ``rgb.`` / ``skip.`` +
    NVIDIA's module path), first 2 samples."""
    path = key.split(".", 1)[1]
    out = hooked[path] if key.startswith("skip.") else taps[path.removeprefix("synthesis.")]
    return out[:2]


def nvidia_errors(G, ref) -> dict[str, float]:
    """Relative error of every reference tensor: ws, ws_trunc07, image, image_trunc07
    (whole batch, each sample with its own label c), ``forward*`` (``G(z)``, one class per
    call through ``set_sampling``) and every hooked layer (cut to its stored window)."""
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    classes = [int(k) for k in ref["classes"]]
    # The resnet skips are not editable layers, so not in ``taps``: hooked by module path.
    hooked, handles = {}, []
    for key in ref.files:
        if key.startswith("skip."):
            path = key.split(".", 1)[1]
            handles.append(G.get_submodule(path).register_forward_hook(
                lambda _m, _i, out, path=path: hooked.__setitem__(path, out)))
    errors = {}
    try:
        with torch.no_grad():
            G.set_sampling(truncation=1.0)
            ws = G.broadcast_latents(z, c)
            errors["ws"] = relative_error(ws, ref["ws"])
            taps = {}
            errors["image"] = relative_error(G.synthesize(ws, taps), ref["image"])
            for key in ref.files:
                if key.split(".", 1)[0] in ("feat", "rgb", "skip"):
                    r0, c0, side = (int(v) for v in ref[f"window.{key}"])
                    got = _ours(G, key, taps, hooked)[..., r0:r0 + side, c0:c0 + side]
                    errors[key] = relative_error(got, ref[key])
            G.set_sampling(truncation=0.7)
            ws07 = G.broadcast_latents(z, c)
            errors["ws_trunc07"] = relative_error(ws07, ref["ws_trunc07"])
            errors["image_trunc07"] = relative_error(G.synthesize(ws07), ref["image_trunc07"])
            for psi, key in ((1.0, "image"), (0.7, "image_trunc07")):
                G.set_sampling(truncation=psi)
                for k in sorted(set(classes)) or [None]:
                    rows = [i for i, ki in enumerate(classes) if ki == k] or list(range(len(z)))
                    if k is not None:
                        G.set_sampling(class_index=k)
                    errors[f"forward.{key}" + (f".class{k}" if k is not None else "")] = \
                        relative_error(G(z[rows]), ref[key][rows])
    finally:
        for h in handles:
            h.remove()
        G.set_sampling(truncation=1.0)
        if G.num_classes:
            G.set_sampling(class_index=0)
    return errors


@pytest.mark.parametrize("name", NAMES)
def test_reproduces_nvidias_outputs(name):
    G, ref = _load(name)
    family = "stylegan3" if name.startswith("stylegan3") else "stylegan2-ada"
    assert G.family == family and G.resolution == int(ref["img_resolution"])
    assert G.num_ws == int(ref["num_ws"]) and G.config.c_dim == int(ref["c_dim"])
    assert torch.equal(G.mapping.w_avg, torch.from_numpy(ref["w_avg"]))
    if family == "stylegan2-ada":
        assert G.config.architecture == str(ref["architecture"])
        assert G.config.channels == tuple(int(c) for c in ref["channels"])
    else:
        assert [L.name for L in G.layers()] == [str(n) for n in ref["layer_names"]]
    errors = nvidia_errors(G, ref)
    hooks = [k for k in ref.files if k.split(".", 1)[0] in ("feat", "rgb", "skip")]
    assert hooks and set(hooks) <= set(errors)
    assert max(errors.values()) <= TOLERANCE, errors


def test_the_variants_have_their_layouts():
    """What the fixtures exercise: 'orig' has ToRGB in the last block only (the image is
    that ToRGB's output), 'resnet' has 1x1 up-sampling skips in every block after b4."""
    orig, _ = _load("stylegan2ada_orig_tiny32")
    resnet, _ = _load("stylegan2ada_resnet_tiny32")
    for G in (orig, resnet):
        assert [b.has_torgb for b in G.synthesis.blocks()] == [False, False, False, True]
    assert [hasattr(b, "skip") for b in resnet.synthesis.blocks()] == [False, True, True, True]
    assert not any(hasattr(b, "skip") for b in orig.synthesis.blocks())
    assert [resnet.synthesis.b16.conv_gain(j) for j in (0, 1)] == [1.0, 0.5 ** 0.5]


@pytest.mark.parametrize("name", NAMES)
def test_split_resume_equals_forward(name):
    """Resuming after any layer, also inside a resnet block (whose skip branch is carried
    in the split) and under a class label, renders the forward pass bit for bit."""
    G, _ = _load(name)
    if G.config.c_dim:
        G.set_sampling(class_index=2)
    z = G.latents(range(3))
    with torch.no_grad():
        plain = G(z)
        for info in G.layers():
            s = G.split(z, info.name)
            assert torch.equal(G.resume(s), plain), info.name
            f = G.layer_function(s)
            assert torch.allclose(f.forward(s.keys), s.values, atol=1e-5), info.name


@pytest.mark.parametrize("name", NAMES)
def test_written_back_as_pkl(name, tmp_path):
    """An edited model saved as NVIDIA's .pkl (a G_ema-only snapshot; the resnet skips'
    ``bias`` None, the class embedding) loads back rendering the edit bit for bit."""
    G, _ = _load(name)
    layer = G.layers()[-2].name
    with torch.no_grad():
        G.get_submodule(f"synthesis.{layer}").weight.mul_(-0.5)
    if G.config.c_dim:
        G.set_sampling(class_index=2)
    z = G.latents(range(3))
    with torch.no_grad():
        want = G(z)
    G.save(tmp_path / "edited.pkl")
    again = load_model(str(tmp_path / "edited.pkl"))
    again.set_sampling(**G.sampling.changes_from(again.sampling))
    with torch.no_grad():
        assert torch.equal(again(z), want)


@pytest.mark.parametrize("name", CONDITIONAL)
def test_classes_render_different_images(name):
    """The same z under classes 0, 1, 2: different ws, and every sample's images differ
    by more than a fifth of their mean |value|."""
    G, ref = _load(name)
    z = torch.from_numpy(ref["z"])
    images, ws = [], []
    with torch.no_grad():
        for k in range(G.config.c_dim):
            G.set_sampling(class_index=k)
            ws.append(G.broadcast_latents(z))
            images.append(G(z))
    for a in range(len(images)):
        for b in range(a + 1, len(images)):
            assert not torch.allclose(ws[a], ws[b])
            diff = (images[a] - images[b]).abs().mean(dim=(1, 2, 3))
            scale = (images[a].abs() + images[b].abs()).mean(dim=(1, 2, 3)) / 2
            assert bool((diff > 0.2 * scale).all()), (name, a, b, diff / scale)
