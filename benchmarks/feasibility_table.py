"""Feasibility before solving, per layer, for the tuning edits (never the held-out test set).

Prints, for each spec and layer, the held-out AUC of the layer's keys at the rule's place
against the rest, the coverage at the rest's 1 % level, the energy shares a rank-r update
reaches, the verdict and the seconds it took (statistics from the cache; the first call
includes torch's warm-up). ``--pool`` repeats the figures with another pool of outside
samples, to show how much they move.

Usage::

    python benchmarks/feasibility_table.py --layers main.3,main.6,main.9 --stats-samples 2000
"""

from __future__ import annotations

import argparse
import copy
import glob
import time
from pathlib import Path

from rewrite.edit.layer_stats import layer_stats
from rewrite.edit.spec import EditSpec
from rewrite.metrics.feasibility import FEASIBILITY_POOL, feasibility
from rewrite.models import load_model

TUNE = Path(__file__).resolve().parent / "edits" / "tune"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default=str(TUNE / "*.json"))
    ap.add_argument("--layers", default="main.3,main.6,main.9")
    ap.add_argument("--stats-samples", type=int, default=2000)
    ap.add_argument("--pool", type=int, default=FEASIBILITY_POOL.start,
                    help="first sample of the 64-sample outside pool")
    args = ap.parse_args()
    if "/test/" in args.specs:
        raise SystemExit("benchmarks/edits/test/ is held out: nothing may be chosen on it")
    G = load_model("dcgan-digiface64")
    pool = range(args.pool, args.pool + 64)
    print("| spec | layer | AUC | coverage@1% | context / outside energy in rank-r room "
          "| keys (context / outside) | verdict | s |")
    print("|---|---|---|---|---|---|---|---|")
    for path in sorted(glob.glob(args.specs)):
        base = EditSpec.load(path)
        for layer in args.layers.split(","):
            spec = copy.deepcopy(base)
            spec.layer, spec.stats_samples = layer, args.stats_samples
            stats = layer_stats(G, layer, n=args.stats_samples, seed=spec.stats_seed,
                                progress=False)
            t = time.perf_counter()
            f = feasibility(G, spec, stats, pool=pool)
            dt = time.perf_counter() - t
            print(f"| {Path(path).stem} | {layer} | {f.auc:.2f} | {f.coverage:.2f} | "
                  f"{f.context_share:.2f} / {f.outside_share:.2f} | "
                  f"{f.context_keys} / {f.outside_keys} | {f.verdict} | {dt:.1f} |", flush=True)


if __name__ == "__main__":
    main()
