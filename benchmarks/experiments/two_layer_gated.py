"""Two layers at once (MEMIT spreads an edit over consecutive layers): a gated change on the
spec's layer and one on the next (or previous) layer, fitted jointly through the generator,
against ``gated`` on the spec's layer alone. One-off experiment on the TUNING edits and samples.

The pair is ``gated-pair``'s fit (:func:`rewrite.edit.gated_pair.gated_pair_fit`) with the
partner named, at ``gated``'s silent budget (0.008) as in the experiment that chose the
method's partner rule (benchmarks/FRONTIER.md §15). Judged with the project's
evaluation (``rewrite.metrics.evaluate``: silent change, goal reproduction, structure
transfer or erase removal) on the tuning samples 2000-2255; writes one before/after grid per
edit and variant of the 12 tuning samples where the rule responds most.

Usage (from the project root)::

    python benchmarks/experiments/two_layer_gated.py benchmarks/edits/tune/*.json \\
        --second next prev --out outputs/two-layer
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.gated_fit import GatedParams, gated_fit  # noqa: E402
from rewrite.edit.gated_pair import GatedPairParams, gated_pair_fit  # noqa: E402
from rewrite.metrics.before_after import before_after_grid  # noqa: E402
from rewrite.metrics.evaluate import _measure, _shared  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.utils.distributed import DistContext  # noqa: E402

SEEDS = list(range(2000, 2256))  # tuning samples: choosing only


def measure(G, spec, delta, seeds):
    """The project's evaluation of ``delta`` (a gated-pair delta applies its companion with
    it) on ``seeds``."""
    session = Rewriter(G, progress=False)
    dist = DistContext()
    shared = _shared(session, spec, seeds, 0.99, 32, False, False, dist)
    return _measure(session, spec, "x", shared, seeds, 32, False, False, dist, delta=delta)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+", type=Path)
    ap.add_argument("--second", nargs="+", default=["next"], choices=["next", "prev"],
                    help="the other layer: the next one, the previous one, or both in turn")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "two-layer")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    G = load_model("dcgan-digiface64")
    names = [i.name for i in G.layers()]
    p = GatedParams()
    p_pair = dataclasses.replace(GatedPairParams(), silent_budget=p.silent_budget, matte=p.matte)
    rows = []
    for path in args.specs:
        if "test" in path.parts:
            raise SystemExit("test edits are never used for choosing")
        spec = EditSpec.load(path)
        spec.solver, spec.solver_params = "gated", {}
        inputs = Rewriter(G, progress=False).prepare(spec)
        base = gated_fit(G, inputs, p)
        variants = {"gated": base}
        i = names.index(spec.layer)
        for which in args.second:
            j = i + 1 if which == "next" else i - 1
            if 0 < j < len(names):  # main.0 reads z: no key cells to gate
                variants[f"+{names[j]}"] = gated_pair_fit(G, inputs, p_pair, partner=names[j])
        for label, delta in variants.items():
            ev = measure(G, spec, delta, SEEDS)
            m = ev.metrics
            peak = ev.response.reshape(len(SEEDS), -1).max(1)
            top = np.argsort(-peak, kind="stable")[:12]
            name = f"{spec.name}-{label.lstrip('+')}.png"
            grid = before_after_grid(ev.before[top], ev.after[top], [SEEDS[t] for t in top])
            grid.save(args.out / name)
            key = "structure transfer" if spec.kind == "copy-paste" else "erase removal"
            row = dict(edit=spec.name, layer=spec.layer, variant=label,
                       silent=m["silent change"], goal=m["goal reproduction"],
                       toward=m[key], share=delta.kept_share, seconds=delta.seconds)
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
