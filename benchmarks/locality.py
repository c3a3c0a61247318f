"""Locality: how much each method changes held-out images inside and outside the
regions where the edit's rule fires.

    python benchmarks/locality.py [--spec examples/add-sunglasses.json] [--seeds 1000-1031]

The firing region is where the context direction's response to the layer's
keys exceeds its 99th percentile over the held-out samples (grown by one cell,
see rewrite.metrics.firing). Changes are mean absolute pixel differences on a
0-1 scale between the original and the edited model.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, timed  # noqa: E402

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.metrics.firing import firing_mask, key_response, quantile_threshold  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling import generate  # noqa: E402
from rewrite.seeds import parse_seeds  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spec", default=str(Path(__file__).resolve().parents[1] / "examples" /
                                          "add-sunglasses.json"))
    ap.add_argument("--seeds", default="1000-1031")
    ap.add_argument("--methods", nargs="+",
                    default=["closed-form+refine", "adam", "finetune-layer", "finetune-all"])
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    spec = EditSpec.load(args.spec)
    G = load_model(spec.model)
    session = Rewriter(G, progress=False)
    D = session.prepare(spec).D
    before = generate(G, seeds).astype(np.float64) / 255
    resp = key_response(G, spec.layer, D, seeds)
    fire = firing_mask(resp, quantile_threshold(resp), G.resolution).numpy()
    rows = []
    for method in args.methods:
        s = copy.deepcopy(spec)
        s.solver, s.solver_params = method, {}
        secs, d = timed(lambda: session.apply(s))
        after = generate(G, seeds).astype(np.float64) / 255
        session.undo()
        diff = np.abs(after - before).mean(-1)
        rows.append({"method": method, "change outside": diff[~fire].mean(),
                     "change inside": diff[fire].mean(),
                     "inside / outside": diff[fire].mean() / diff[~fire].mean(),
                     "seconds": secs})
    base = rows[0]["change outside"]
    for r in rows:
        r[f"outside / {rows[0]['method']}"] = r["change outside"] / base
    print(f"{spec.name or args.spec}: {len(seeds)} held-out samples ({args.seeds}); the rule fires "
          f"on {int(fire.any((1, 2)).sum())} of them, {fire.mean():.1%} of all pixels\n")
    print(table(rows, ["method", "change outside", "change inside", "inside / outside",
                       f"outside / {rows[0]['method']}", "seconds"]))


if __name__ == "__main__":
    main()
