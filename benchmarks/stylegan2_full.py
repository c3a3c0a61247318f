"""A full-size StyleGAN2 on the CPU: time per sample and time per edit.

    python benchmarks/stylegan2_full.py [--size 256] [--stats-samples 50]
    python benchmarks/stylegan2_full.py --family stylegan2-ada [--size 1024]

Random weights. ``stylegan2`` (default): rosinality's standard configuration
(size 256, style_dim 512, n_mlp 8, channel multiplier 2: 30 M parameters).
``stylegan2-ada``: the configuration of NVIDIA's ``ffhq.pkl`` (1024 px,
z/w 512, 8 mapping layers, channel_base 32768, channel_max 512, conv_clamp
256: 30 M parameters). Prints the time per sample at batch 1 and 4, the
statistics time per sample at each edited layer (with the minutes that the
default 10,000 samples take), and the time of one copy-paste edit (goal,
directions and the default solver, statistics already cached) at a 16x16 and
a 32x32 layer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, table, timed  # noqa: E402

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.layer_stats import layer_stats  # noqa: E402
from rewrite.edit.layer_stats import DEFAULT_STATS_SAMPLES  # noqa: E402
from rewrite.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator  # noqa: E402
from rewrite.models.stylegan2ada import StyleGAN2ADAConfig, StyleGAN2ADAGenerator  # noqa: E402


def ffhq_like(size: int, seed: int = 0) -> StyleGAN2ADAGenerator:
    """A stylegan2-ada generator shaped like NVIDIA's ffhq.pkl at ``size`` px, random weights."""
    res = [2 ** i for i in range(2, size.bit_length())]
    cfg = StyleGAN2ADAConfig(z_dim=512, c_dim=0, w_dim=512, img_resolution=size, img_channels=3,
                             channels=tuple(min(32768 // r, 512) for r in res), conv_clamp=256)
    G = StyleGAN2ADAGenerator(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in G.named_parameters():
            if name.startswith("mapping.") and name.endswith("weight"):
                t.copy_(torch.randn(t.shape, generator=gen) / cfg.mapping_lr)   # NVIDIA's init
            elif name.endswith("affine.bias"):
                t.copy_(1 + 0.2 * torch.randn(t.shape, generator=gen))
            elif name.endswith("noise_strength") or name.endswith("bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            else:
                t.copy_(torch.randn(t.shape, generator=gen))
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        for name, t in G.named_buffers():            # as NVIDIA's constructor sets them
            if name.endswith("resample_filter"):
                t.copy_(torch.outer(k, k) / torch.outer(k, k).sum())
            elif name.endswith("noise_const"):
                t.copy_(torch.randn(t.shape, generator=gen))
    return G.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--family", choices=["stylegan2", "stylegan2-ada"], default="stylegan2")
    ap.add_argument("--size", type=int, default=None,
                    help="image size (default 256 for stylegan2, 1024 for stylegan2-ada)")
    ap.add_argument("--stats-samples", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.family == "stylegan2":
        args.size = args.size or 256
        G = StyleGAN2Generator.random(StyleGAN2Config.standard(size=args.size), seed=0)
        layers, title = ("convs.3", "convs.5"), "StyleGAN2 (rosinality), standard config"
    else:
        args.size = args.size or 1024
        G = ffhq_like(args.size)
        layers, title = ("b16.conv1", "b32.conv1"), "StyleGAN2-ADA, ffhq.pkl's config"
    G = G.to(args.device)
    n_params = sum(p.numel() for p in G.parameters())
    rows = []
    with torch.no_grad():
        G(G.latents(range(4)))                                               # warm-up
        t = interleaved({b: (lambda b=b: G(G.latents(range(b)))) for b in (1, 4)}, rounds=3)
    for batch, secs in t.items():
        rows.append({"measure": f"sample, batch {batch}", "seconds": secs / batch,
                     "note": "per image, median of 3"})
    s = args.size
    # A 16x16 and a 32x32 layer: the second (non-upsampling) conv at each resolution.
    for layer in layers:
        info = G.layer(layer)
        spec = EditSpec.from_json({
            "version": 1, "model": "random", "layer": layer, "kind": "copy-paste",
            "stats": {"samples": args.stats_samples},
            "copy": {"sample": 1, "mask": {"rect": [s // 4, s // 4, s // 2, s // 2]}},
            "paste": {"sample": 2, "mask": {"rect": [s // 2, s // 2, 3 * s // 4, 3 * s // 4]}},
            "context": [{"sample": 3, "mask": {"rect": [s // 4, s // 4, 3 * s // 4, s // 2]}}]})
        secs, _ = timed(lambda: layer_stats(G, layer, n=args.stats_samples, cache=True,
                                            progress=False))
        rows.append({"measure": f"statistics at {layer} ({info.key_resolution}x"
                                f"{info.key_resolution} keys, {info.in_channels} ch)",
                     "seconds": secs / args.stats_samples,
                     "note": f"per sample; {DEFAULT_STATS_SAMPLES} samples: "
                             f"{secs / args.stats_samples * DEFAULT_STATS_SAMPLES / 60:.1f} min"})
        session = Rewriter(G, progress=False)
        secs, d = timed(lambda: session.compute(spec))
        rows.append({"measure": f"edit at {layer} ({info.value_resolution}x{info.value_resolution},"
                                f" {spec.solver})", "seconds": secs,
                     "note": f"loss {d.loss_before:.3f} -> {d.loss:.3f}"})
    print(f"{title}, {args.size}px, random weights, {n_params / 1e6:.1f} M "
          f"parameters, {args.device}, {torch.get_num_threads()} threads\n")
    print(table(rows, ["measure", "seconds", "note"]))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as cache:           # statistics of a throwaway model
        import os
        os.environ["REWRITE_CACHE"] = cache
        main()
