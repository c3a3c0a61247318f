"""Validating ``structure transfer`` (rewrite.metrics.structure) both ways.

``--synthetic``: on 64 tuning faces (samples 2000-2063), each tuning edit's copied object
pasted into its own box at full and half opacity, and the changes that must not pass (a wash
of its mean colour, the object box-blurred by 4 and 8 px, the faces blurred by 2 px, noise of
sd 0.05); mean [min, max] over the faces.

``--edits SET``: real edits solved by each method and judged by ``evaluate`` on ``--seeds``
(tuning samples 2000-2255 for choosing; the judging samples 3000-3255 for reporting only):
silent change, object transfer, structure transfer (firing / matched), matched efficacy.

Usage (from the project root)::

    python benchmarks/experiments/structure_validation.py --synthetic
    python benchmarks/experiments/structure_validation.py --edits tune --seeds 2000-2255 \\
        --methods gated least-collateral
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec  # noqa: E402
from rewrite.edit.masks import render_mask  # noqa: E402
from rewrite.metrics.evaluate import evaluate, variant  # noqa: E402
from rewrite.metrics.structure import _box_blur, structure_transfer  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402
from rewrite.utils.images import to_unit  # noqa: E402

EDITS = ROOT / "benchmarks" / "edits"


def synthetic(G) -> None:
    with torch.no_grad():
        before = to_unit(G(G.latents(list(range(2000, 2064)))))
    for path in sorted((EDITS / "tune").glob("*.json")):
        spec = EditSpec.load(path)
        if spec.kind != "copy-paste":
            continue
        m = render_mask(spec.copy.mask, G.resolution) > 0.5
        rows, cols = np.nonzero(m)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        with torch.no_grad():
            src = to_unit(G(G.latents([spec.copy.sample])))[0]
        obj, alpha = src[r0:r1, c0:c1], m[r0:r1, c0:c1].astype(float)
        boxes = [(r0, r1, c0, c1)] * len(before)

        def paste(t, o=obj):
            a = before.copy()
            w = t * alpha[..., None]
            a[:, r0:r1, c0:c1] = (1 - w) * a[:, r0:r1, c0:c1] + w * o
            return a

        blurred = before.copy()
        blurred[:, r0:r1, c0:c1] = np.stack([_box_blur(p, 2) for p in before[:, r0:r1, c0:c1]])
        noisy = before + np.random.default_rng(0).normal(0, 0.05, before.shape)
        cases = {"paste": paste(1), "half": paste(0.5),
                 "wash": paste(1, obj.reshape(-1, 3).mean(0)),
                 "smooth4": paste(1, _box_blur(obj, 4)), "smooth8": paste(1, _box_blur(obj, 8)),
                 "blur": blurred, "noise": noisy}
        out = []
        for k, after in cases.items():
            v = structure_transfer(before, after, obj, alpha, boxes)
            out.append(f"{k}={np.nanmean(v):.3f}[{np.nanmin(v):.2f},{np.nanmax(v):.2f}]")
        print(f"{spec.name:12s} " + " ".join(out), flush=True)


def edits(G, setname: str, seeds: list[int], methods: list[str]) -> None:
    for path in sorted((EDITS / setname).glob("*.json")):
        spec = EditSpec.load(path)
        if spec.kind != "copy-paste":
            continue
        for method in methods:
            t = time.time()
            m = evaluate(G, variant(spec, method), seeds, progress=False).metrics
            print(f"{setname} {spec.name:20s} {method:18s} silent {m['silent change']:.4f} "
                  f"object {m['object transfer']:.3f} structure {m['structure transfer']:.3f} "
                  f"matched {m['matched structure transfer']:.3f} "
                  f"matched-efficacy {m['matched efficacy']:.3f} ({time.time() - t:.0f} s)",
                  flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--edits", choices=("tune", "test"))
    ap.add_argument("--seeds", default="2000-2255")
    ap.add_argument("--methods", nargs="+", default=["gated", "least-collateral"])
    args = ap.parse_args(argv)
    G = load_model("dcgan-digiface64")
    if args.synthetic:
        synthetic(G)
    if args.edits:
        edits(G, args.edits, parse_seeds(args.seeds), args.methods)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
