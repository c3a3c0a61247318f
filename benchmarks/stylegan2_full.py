"""A full-size StyleGAN2 on the CPU: time per sample and time per edit.

    python benchmarks/stylegan2_full.py [--size 256] [--stats-samples 50]

Random weights, rosinality's standard configuration (size 256, style_dim 512,
n_mlp 8, channel multiplier 2: 30 M parameters). Prints the time per sample
at batch 1 and 4, the statistics time per sample at each edited layer, and
the time of one copy-paste edit (goal, directions and the default solver,
statistics already cached) at a 16x16 and a 32x32 layer.
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
from rewrite.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--stats-samples", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    cfg = StyleGAN2Config.standard(size=args.size)
    G = StyleGAN2Generator.random(cfg, seed=0).to(args.device)
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
    for layer in ("convs.3", "convs.5"):
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
                     "seconds": secs / args.stats_samples, "note": "per sample"})
        session = Rewriter(G, progress=False)
        secs, d = timed(lambda: session.compute(spec))
        rows.append({"measure": f"edit at {layer} ({info.value_resolution}x{info.value_resolution},"
                                f" {spec.solver})", "seconds": secs,
                     "note": f"loss {d.loss_before:.3f} -> {d.loss:.3f}"})
    print(f"StyleGAN2 {args.size}px, standard config, random weights, {n_params / 1e6:.1f} M "
          f"parameters, {args.device}, {torch.get_num_threads()} threads\n")
    print(table(rows, ["measure", "seconds", "note"]))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as cache:           # statistics of a throwaway model
        import os
        os.environ["REWRITE_CACHE"] = cache
        main()
