"""Memory and time of the inpainting erase goal's donor scan on a full-size model.

    python benchmarks/inpaint_memory.py [--batch 32] [--layer b32.conv1] [--size 1024]

The donors (512 samples of ``rewrite.edit.goals.DONOR_POOL``) are rendered to the layer
``--batch`` at a time; ``--batch 512`` renders the whole pool at once, as the goal did
before it was batched. The model is shaped like NVIDIA's ffhq.pkl, with random weights
(``benchmarks/stylegan2_full.py``). Run each batch size in its own process: the peak
resident memory is the process's.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stylegan2_full import ffhq_like  # noqa: E402

from rewrite.edit.goals import DONOR_POOL, inpaint_goal  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--layer", default="b32.conv1")
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    G = ffhq_like(args.size)
    info = G.layer(args.layer)
    res = info.value_resolution
    with torch.no_grad():
        split = G.split(G.latents([5]), args.layer)
    region = torch.zeros(1, res, res, dtype=torch.bool)
    region[0, res // 3:2 * res // 3, res // 3:2 * res // 3] = True
    gen = torch.Generator().manual_seed(0)
    D = torch.nn.functional.normalize(torch.randn(2, info.in_channels, generator=gen,
                                                  dtype=torch.float64), dim=1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    inpaint_goal(G, args.layer, split, region, D, batch=args.batch)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {args.size} px | {args.layer} | {len(DONOR_POOL)} donors, batch {args.batch} | "
          f"{secs:.1f} s | peak {peak:.0f} MB (model loaded: {before:.0f} MB) |")


if __name__ == "__main__":
    main()
