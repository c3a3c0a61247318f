"""Make the NVIDIA-variant reference fixtures in ``tests/fixtures/nvlabs`` with NVIDIA's own code.

Four tiny generators with seeded random weights, built with NVIDIA's unmodified classes
(stylegan2-ada-pytorch ``training.networks``, stylegan3 ``training.networks_stylegan3``)
from checkouts given on the command line; nothing of NVIDIA's code is copied here:

* ``stylegan2ada_orig_tiny32``   architecture 'orig'   (ToRGB in the last block only)
* ``stylegan2ada_resnet_tiny32`` architecture 'resnet' (1x1 up-sampling skips, gain sqrt(1/2))
* ``stylegan2ada_cond_tiny32``   architecture 'skip', c_dim 3 (class embedding)
* ``stylegan3t_cond_tiny32``     config 'stylegan3-t', c_dim 3

For each: ``<name>.pkl`` = ``{'G_ema': G_ema}`` pickled by NVIDIA's persistence, then re-written
by rewrite's own reader/writer with every ``module_src`` (the full text of NVIDIA's
``networks*.py``) replaced by a one-line stub, so NVIDIA's source is not redistributed (rewrite
never reads it; NVIDIA's ``legacy.load_network_pkl`` cannot load the stubbed file). And
``<name>_reference.npz`` = NVIDIA's outputs, computed before stripping. See
``tests/fixtures/nvlabs/README.md``.

Usage (NVIDIA's code needs scipy and click; CPU is enough)::

    PYTHONPATH=/path/to/deps python tools/make_nvlabs_variant_fixtures.py \\
        --sg2ada /path/to/stylegan2-ada-pytorch --sg3 /path/to/stylegan3 --out tests/fixtures/nvlabs

Both checkouts define the same top-level packages (``training``, ``torch_utils``, ``dnnlib``,
``legacy``), so each family is built in its own subprocess (``--worker``).
"""

from __future__ import annotations

import argparse
import copy
import io
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

#: The commits these fixtures were made from (checked against ``git rev-parse HEAD`` when
#: the checkout is a git repository; an unpacked archive has no history to check).
COMMITS = {"sg2ada": "d72cc7d041b42ec8e806021a205ed9349f87c6a4",
           "sg3": "c233a919a6faee6e36a316ddd4eddababad1adf9"}

#: What replaces NVIDIA's source text in the written pickles.
SRC_STUB = ("# NVIDIA source text removed from this test fixture; rewrite never reads it "
            "(see tests/fixtures/nvlabs/README.md)\n")

#: Labels of the 4 reference samples of the class-conditional fixtures.
CLASSES = [0, 1, 2, 1]


def sg2ada_specs() -> list[dict]:
    common = {"z_dim": 32, "w_dim": 32, "img_resolution": 32, "img_channels": 3,
              "num_layers": 2, "channel_base": 128, "channel_max": 32}
    return [{**common, "name": "stylegan2ada_orig_tiny32", "seed": 101, "architecture": "orig",
             "c_dim": 0},
            {**common, "name": "stylegan2ada_resnet_tiny32", "seed": 102,
             "architecture": "resnet", "c_dim": 0},
            {**common, "name": "stylegan2ada_cond_tiny32", "seed": 103, "architecture": "skip",
             "c_dim": 3}]


def sg3_specs() -> list[dict]:
    return [{"name": "stylegan3t_cond_tiny32", "seed": 106, "z_dim": 32, "w_dim": 32,
             "img_resolution": 32, "img_channels": 3, "num_layers": 2, "channel_base": 64,
             "channel_max": 4, "c_dim": 3}]


# -- randomisation ------------------------------------------------------------------------


def _noisy(t: torch.Tensor, gen: torch.Generator, rel: float = 0.3) -> torch.Tensor:
    """``t`` moved away from its init by ``rel`` x its own standard deviation of noise."""
    scale = float(t.std()) if t.numel() > 1 and float(t.std()) > 0 else 1.0
    return t + rel * scale * torch.randn(t.shape, generator=gen)


def _signed_uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    v = lo + (hi - lo) * float(torch.rand([], generator=gen))
    return v if float(torch.rand([], generator=gen)) < 0.5 else -v


def randomise_sg2ada(G: torch.nn.Module, gen: torch.Generator) -> None:
    """The shared README's stylegan2-ada recipe: every weight + noise, every bias non-zero,
    affine biases 1+N(0,0.2²), noise_strength ±0.1..0.4, noise_const redrawn, w_avg random,
    ToRGB conv weights (not their affines) x0.1; resample filters keep NVIDIA's values. The
    class embedding gets fresh N(0,1) columns (after 2nd-moment normalisation only their
    directions matter), so each class moves w as much as a new z does."""
    with torch.no_grad():
        for name, t in list(G.named_parameters()) + list(G.named_buffers()):
            leaf = name.rsplit(".", 1)[-1]
            owner = G.get_submodule(name.rsplit(".", 1)[0]) if "." in name else G
            if leaf == "resample_filter":
                continue
            if name == "mapping.w_avg":
                t.copy_(0.5 * torch.randn(t.shape, generator=gen))
            elif leaf == "noise_const":
                t.copy_(torch.randn(t.shape, generator=gen))
            elif leaf == "noise_strength":
                t.fill_(_signed_uniform(gen, 0.1, 0.4))
            elif name.startswith("mapping.embed.") and leaf == "weight":
                t.copy_(torch.randn(t.shape, generator=gen))
            elif leaf == "bias":
                if name.endswith("affine.bias"):
                    t.copy_(1 + 0.2 * torch.randn(t.shape, generator=gen))
                else:             # stored / bias_gain: the effective bias is N(0, 0.1²)
                    gain = float(getattr(owner, "bias_gain", 1.0))
                    t.copy_(0.1 * torch.randn(t.shape, generator=gen) / gain)
            elif leaf in ("weight", "const"):
                t.copy_(_noisy(t, gen))
                if name.endswith(".torgb.weight"):
                    t.mul_(0.1)
            else:
                raise AssertionError(f"unexpected tensor {name}")


def randomise_sg3(G: torch.nn.Module, gen: torch.Generator) -> None:
    """The shared README's stylegan3 recipe: every weight + noise, every bias non-zero,
    affine biases 1+N(0,0.2²) (the input's around NVIDIA's (1, 0, 0, 0)), input.affine.weight
    non-zero (NVIDIA inits it to 0) so the per-sample rotation/translation depends on w,
    input.transform = inverse of rotation + translation + anisotropic scale, freqs perturbed
    with the two largest pushed out of band (1.3x and 1.15x the bandwidth), phases perturbed,
    w_avg random; the designed filters keep NVIDIA's values. ``magnitude_ema`` is set
    afterwards by :func:`calibrate_magnitudes`. The SynthesisLayers' affine weights are
    scaled by 0.25 (styles about 1 ± 0.25 x |w|, more like a trained net's): at NVIDIA's
    unit scale the samples' magnitudes drift apart layer after layer in this tiny net (the
    per-sample image mean |value| of 16 samples spread 25-400x over 3 seeds; 4-19x so)."""
    syn = G.synthesis
    with torch.no_grad():
        for name, t in list(G.named_parameters()) + list(G.named_buffers()):
            leaf = name.rsplit(".", 1)[-1]
            owner = G.get_submodule(name.rsplit(".", 1)[0]) if "." in name else G
            if leaf in ("up_filter", "down_filter"):
                continue
            if name == "mapping.w_avg":
                t.copy_(0.5 * torch.randn(t.shape, generator=gen))
            elif leaf == "magnitude_ema":
                pass                                   # set by calibrate_magnitudes
            elif name == "synthesis.input.affine.weight":
                t.copy_(0.3 * torch.randn(t.shape, generator=gen))
            elif name == "synthesis.input.affine.bias":
                t.copy_(torch.tensor([1.0, 0, 0, 0]) + 0.2 * torch.randn(t.shape, generator=gen))
            elif name == "synthesis.input.transform":
                a = 0.3 + 0.2 * float(torch.rand([], generator=gen))
                rot = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0],
                                    [0, 0, 1]], dtype=torch.float64)
                tr = torch.tensor([[1, 0, 0.12], [0, 1, -0.07], [0, 0, 1]], dtype=torch.float64)
                sc = torch.diag(torch.tensor([1.06, 0.95, 1], dtype=torch.float64))
                t.copy_(torch.linalg.inv(tr @ rot @ sc).to(torch.float32))
            elif name == "synthesis.input.freqs":
                f = t * (1 + 0.1 * torch.randn(t.shape, generator=gen))
                order = f.norm(dim=1).argsort(descending=True)
                bw = float(syn.input.bandwidth)
                for i, rel in zip(order[:2].tolist(), (1.3, 1.15)):
                    f[i] *= rel * bw / f[i].norm()
                t.copy_(f)
            elif name == "synthesis.input.phases":
                t.add_(0.1 * torch.randn(t.shape, generator=gen))
            elif name.startswith("mapping.embed.") and leaf == "weight":
                t.copy_(torch.randn(t.shape, generator=gen))
            elif leaf == "bias":
                if name.endswith("affine.bias"):
                    t.copy_(1 + 0.2 * torch.randn(t.shape, generator=gen))
                else:
                    gain = float(getattr(owner, "bias_gain", 1.0))
                    t.copy_(0.1 * torch.randn(t.shape, generator=gen) / gain)
            elif name.endswith(".affine.weight"):         # SynthesisLayers' affines
                t.copy_(0.25 * _noisy(t, gen))
            elif leaf == "weight":
                t.copy_(_noisy(t, gen))
            else:
                raise AssertionError(f"unexpected tensor {name}")


def calibrate_magnitudes(G: torch.nn.Module, gen: torch.Generator, c_dim: int) -> None:
    """Each layer's ``magnitude_ema`` = the mean square of its input (what training's EMA
    tracks), measured on 16 random (z, c) with the earlier layers already set, times a
    log-uniform factor in 0.5..2. (Fixed values in 0.4..3.7, as the shared 64-px fixture
    has, shrink this 32-px net's features layer after layer to about 1 % of the input's
    scale by L13, leaving an image dominated by ToRGB's bias.)"""
    syn = G.synthesis
    z = torch.randn(16, G.z_dim, generator=gen)
    c = torch.zeros(16, c_dim)
    if c_dim:
        c[torch.arange(16), torch.randint(c_dim, (16,), generator=gen)] = 1
    with torch.no_grad():
        ws = G.mapping(z, c)
        for name in syn.layer_names:
            layer, seen = getattr(syn, name), []
            handle = layer.register_forward_hook(
                lambda _m, inp, _out, seen=seen: seen.append(inp[0]))
            syn(ws)
            handle.remove()
            factor = math.exp(math.log(0.5) + math.log(4.0) * float(torch.rand([], generator=gen)))
            layer.magnitude_ema.fill_(float(seen[0].square().mean()) * factor)


# -- building and referencing (worker process, NVIDIA's code importable) ---------------------


def _labels(c_dim: int, n: int) -> tuple[torch.Tensor, list[int]]:
    if c_dim == 0:
        return torch.zeros(n, 0), []
    classes = CLASSES[:n]
    return torch.nn.functional.one_hot(torch.tensor(classes), c_dim).to(torch.float32), classes


#: Hooked maps larger than this are stored as their central WINDOW x WINDOW cells (the
#: 52-px maps of stylegan3 and the 32-px maps of the stylegan2-ada fixtures would make
#: the references several times larger); the images are stored whole.
WINDOW = 16


def _window(size: int) -> tuple[int, int, int]:
    """``(row0, col0, side)`` of the stored window of a ``size``-px map."""
    if size <= WINDOW:
        return 0, 0, size
    o = (size - WINDOW) // 2
    return o, o, WINDOW


def _hooks(G: torch.nn.Module, store: dict) -> list:
    """Forward hooks on the synthesis layers: ``feat.<path>`` (SynthesisLayer, SynthesisInput;
    stylegan3's ToRGB is a SynthesisLayer), ``rgb.<path>`` (stylegan2-ada ToRGBLayer),
    ``skip.<path>`` (resnet Conv2dLayer); first 2 samples, maps cut to :func:`_window`
    (``window.<key>`` = [row0, col0, side])."""
    prefix = {"SynthesisLayer": "feat.", "SynthesisInput": "feat.", "ToRGBLayer": "rgb.",
              "Conv2dLayer": "skip."}
    handles = []
    for path, mod in G.named_modules():
        kind = type(mod).__name__
        if not path.startswith("synthesis.") or kind not in prefix:
            continue

        def hook(_m, _inp, out, key=prefix[kind] + path):
            assert out.shape[-1] == out.shape[-2]
            r0, c0, side = _window(out.shape[-1])
            store[key] = out[:2, :, r0:r0 + side, c0:c0 + side].detach().to(torch.float32).clone()
            store[f"window.{key}"] = torch.tensor([r0, c0, side])
        handles.append(mod.register_forward_hook(hook))
    return handles


def _reference(G: torch.nn.Module, spec: dict, family: str) -> dict:
    gen = torch.Generator().manual_seed(spec["seed"] + 1000)
    z = torch.randn(4, spec["z_dim"], generator=gen)
    c, classes = _labels(spec["c_dim"], 4)
    kw = {"noise_mode": "const"}
    if family == "sg2ada":
        kw["force_fp32"] = True
    store: dict = {}
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=1)
        ws07 = G.mapping(z, c, truncation_psi=0.7)
        handles = _hooks(G, store)
        image = G.synthesis(ws, **kw)
        for h in handles:
            h.remove()
        forward = G(z, c, **kw)
        image07 = G(z, c, truncation_psi=0.7, **kw)
    assert torch.equal(forward, image), "G(z, c) differs from G.synthesis(G.mapping(z, c))"
    ref = {"z": z, "c": c, "classes": np.asarray(classes, np.int64), "ws": ws,
           "ws_trunc07": ws07, "image": image, "image_trunc07": image07}
    ref.update(store)
    ref = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in ref.items()}
    ref["window_cells"] = np.int64(WINDOW)
    ref.update(w_avg=G.mapping.w_avg.numpy().copy(), c_dim=np.int64(G.c_dim),
               z_dim=np.int64(G.z_dim), w_dim=np.int64(G.w_dim), num_ws=np.int64(G.num_ws),
               img_resolution=np.int64(G.img_resolution), torch_version=np.str_(torch.__version__))
    if family == "sg2ada":
        syn = G.synthesis
        ref.update(architecture=np.str_(spec["architecture"]),
                   block_resolutions=np.asarray(syn.block_resolutions, np.int64),
                   channels=np.asarray([getattr(syn, f"b{r}").conv1.weight.shape[0]
                                        for r in syn.block_resolutions], np.int64))
    else:
        syn = G.synthesis
        layers = [getattr(syn, n) for n in syn.layer_names]
        ref.update(layer_names=np.asarray(syn.layer_names),
                   layer_channels=np.asarray([syn.input.channels]
                                             + [L.out_channels for L in layers], np.int64),
                   layer_sizes=np.asarray([int(syn.input.size[0])]
                                          + [int(L.out_size[0]) for L in layers], np.int64),
                   layer_sampling_rates=np.asarray([syn.input.sampling_rate]
                                                   + [L.out_sampling_rate for L in layers],
                                                   np.float64),
                   layer_cutoffs=np.asarray([syn.input.bandwidth]
                                            + [L.out_cutoff for L in layers], np.float64))
    return ref


def _build(spec: dict, family: str) -> torch.nn.Module:
    """G_ema the way train.py / training_loop.py build and snapshot it."""
    import dnnlib
    if family == "sg2ada":
        G_kwargs = dnnlib.EasyDict(class_name="training.networks.Generator", z_dim=spec["z_dim"],
                                   w_dim=spec["w_dim"], mapping_kwargs=dnnlib.EasyDict(),
                                   synthesis_kwargs=dnnlib.EasyDict())
        G_kwargs.synthesis_kwargs.channel_base = spec["channel_base"]
        G_kwargs.synthesis_kwargs.channel_max = spec["channel_max"]
        G_kwargs.synthesis_kwargs.num_fp16_res = 0
        G_kwargs.synthesis_kwargs.conv_clamp = 256
        G_kwargs.synthesis_kwargs.architecture = spec["architecture"]
        G_kwargs.mapping_kwargs.num_layers = spec["num_layers"]
    else:
        G_kwargs = dnnlib.EasyDict(class_name="training.networks_stylegan3.Generator",
                                   z_dim=spec["z_dim"], w_dim=spec["w_dim"],
                                   mapping_kwargs=dnnlib.EasyDict())
        G_kwargs.mapping_kwargs.num_layers = spec["num_layers"]
        G_kwargs.channel_base = spec["channel_base"]
        G_kwargs.channel_max = spec["channel_max"]
        G_kwargs.magnitude_ema_beta = 0.5 ** (32 / (20 * 1e3))      # batch 32, as train.py
    common = {"c_dim": spec["c_dim"], "img_resolution": spec["img_resolution"],
              "img_channels": spec["img_channels"]}
    torch.manual_seed(spec["seed"])
    G = dnnlib.util.construct_class_by_name(**G_kwargs, **common).train().requires_grad_(False)
    gen = torch.Generator().manual_seed(spec["seed"])
    if family == "sg2ada":
        randomise_sg2ada(G, gen)
    else:
        randomise_sg3(G, gen)
        calibrate_magnitudes(G, gen, spec["c_dim"])
    G_ema = copy.deepcopy(G).eval()
    return copy.deepcopy(G_ema).eval().requires_grad_(False)   # training_loop's snapshot copy


def strip_sources(data: bytes) -> bytes:
    """NVIDIA's pickle re-written by rewrite's reader/writer with every ``module_src``
    replaced by :data:`SRC_STUB` (tensors, attributes and class names unchanged)."""
    from rewrite.models.nvidia_pickle import dumps_nvidia_pickle, loads_nvidia_pickle
    snap = loads_nvidia_pickle(data)
    for _, obj in snap["G_ema"].named_modules():
        obj.meta["module_src"] = SRC_STUB
        obj.module_src = SRC_STUB
    out = dumps_nvidia_pickle(snap)
    assert b"Copyright" not in out and b"import torch" not in out
    return out


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def worker(family: str, repo: Path, out: Path, commit: str) -> None:
    sys.path.insert(0, str(repo))
    sys.path.insert(1, str(ROOT))
    torch.set_num_threads(1)
    import legacy

    from rewrite.models import load_model
    from rewrite.models.nvidia_pickle import loads_nvidia_pickle
    out.mkdir(parents=True, exist_ok=True)
    for spec in (sg2ada_specs() if family == "sg2ada" else sg3_specs()):
        G_ema = _build(spec, family)
        ref = _reference(G_ema, spec, family)
        ref["nvlabs_commit"] = np.str_(commit)
        data = pickle.dumps({"G_ema": G_ema})            # NVIDIA's persistence reduce
        # NVIDIA's unpickler (what legacy.load_network_pkl runs before it asserts G and D are
        # present) rebuilds G_ema from the source text in the pickle; it reproduces every
        # reference tensor bit for bit.
        G2 = legacy._LegacyUnpickler(io.BytesIO(data)).load()["G_ema"]
        again = _reference(G2, spec, family)
        for k, v in again.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                assert np.array_equal(v, ref[k]), f"{spec['name']}: {k} not reproduced"
        stripped = strip_sources(data)
        a, b = loads_nvidia_pickle(data)["G_ema"], loads_nvidia_pickle(stripped)["G_ema"]
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
        pkl = out / f"{spec['name']}.pkl"
        pkl.write_bytes(stripped)
        np.savez_compressed(out / f"{spec['name']}_reference.npz", **ref)
        # A look at our loader (the tests check it properly).
        G = load_model(str(pkl))
        with torch.no_grad():
            img = G.synthesize(torch.from_numpy(ref["ws"])).numpy()
        print(f"{spec['name']}: pkl {pkl.stat().st_size} B, npz "
              f"{(out / (spec['name'] + '_reference.npz')).stat().st_size} B, "
              f"image range [{ref['image'].min():.2f}, {ref['image'].max():.2f}], "
              f"rewrite's image rel. error {_rel(img, ref['image']):.1e}", flush=True)


def _commit(repo: Path, expected: str) -> str:
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        print(f"note: {repo} is not a git checkout; recording commit {expected}", file=sys.stderr)
        return expected
    if head != expected:
        print(f"warning: {repo} is at {head}, the fixtures were made at {expected}",
              file=sys.stderr)
    return head


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sg2ada", type=Path, help="checkout of NVlabs/stylegan2-ada-pytorch")
    p.add_argument("--sg3", type=Path, help="checkout of NVlabs/stylegan3")
    p.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "nvlabs")
    p.add_argument("--worker", choices=["sg2ada", "sg3"], help=argparse.SUPPRESS)
    p.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--commit", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.repo, args.out, args.commit)
        return
    if not (args.sg2ada or args.sg3):
        p.error("give --sg2ada and/or --sg3")
    for family, repo in (("sg2ada", args.sg2ada), ("sg3", args.sg3)):
        if repo is None:
            continue
        commit = _commit(repo, COMMITS[family])
        subprocess.run([sys.executable, __file__, "--worker", family, "--repo", str(repo),
                        "--out", str(args.out), "--commit", commit], check=True,
                       env=dict(os.environ, PYTHONHASHSEED="0"))


if __name__ == "__main__":
    main()
