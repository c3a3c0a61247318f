"""How well a gate's read-out separates the rule's place from the rest on faces it was not
fitted on: per spec, the gate fitted as the solver fits it (the examples' band cells against
the cells outside the band and every cell of the silent samples), one direction (LDA) or the
Gaussian log-likelihood ratio (quadratic), thresholded by a quantile of the positives or by
the share of negatives let through (``leak``), then measured on ``--seeds``:

* ``top16 band``: the share of the band's key cells it opens on the 16 faces where the rule's
  directions respond most (where the edit is meant to act);
* ``faces>.25``: the share of faces on which it opens more than a quarter of the band's cells;
* ``low25%``: the mean share of band cells it opens on the quarter of faces where it opens
  least (what the silent change sees);
* ``outside``: the share of cells outside the band it opens, over all faces.

A diagnostic (hard thresholds, no fit of the weight change): nothing here is chosen.

Usage (from the project root; tuning samples)::

    python benchmarks/experiments/gate_separability.py examples/demo-sunglasses.json \\
        benchmarks/edits/tune/add-glasses.json --seeds 2000-2255
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.example_fit import fit_samples, rule_response  # noqa: E402
from rewrite.edit.gated_fit import GatedParams, band_cells  # noqa: E402
from rewrite.memory.gate import fit_gate  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402

#: (label, quadratic, quantile, leak) of the gates compared.
GATES = (
    ("LDA, shut on 0.5 of the positives (the default)", False, 0.5, 0.0),
    ("LDA, leak 0.003", False, 0.5, 0.003),
    ("quadratic, shut on 0.5 of the positives", True, 0.5, 0.0),
    ("quadratic, leak 0.003", True, 0.5, 0.003),
    ("quadratic, leak 0.01", True, 0.5, 0.01),
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+", type=Path)
    ap.add_argument("--seeds", default="2000-2255")
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    for path in args.specs:
        spec = EditSpec.load(path)
        G = load_model(spec.model)
        inputs = Rewriter(G, progress=False).prepare(spec)
        assert inputs.band is not None
        p = GatedParams()
        layer = inputs.info.name
        with torch.no_grad():
            fs = fit_samples(G, inputs, p)
            held = torch.cat([G.split(G.latents(seeds[i : i + 64]), layer).keys
                              for i in range(0, len(seeds), 64)])
            response = rule_response(G, layer, held, inputs.D, inputs.band)
        inside = band_cells(G, layer, inputs.band)
        cells = fs.split.keys.permute(0, 2, 3, 1)
        c_in = cells.shape[-1]
        pos = cells[: fs.n_ex][:, inside].reshape(-1, c_in)
        neg = torch.cat([cells[:, ~inside].reshape(-1, c_in),
                         cells[fs.n_ex : fs.n_ex + fs.n_sil].reshape(-1, c_in)])
        top = torch.argsort(response, descending=True)[:16]
        print(f"{spec.name} ({layer}, {int(inside.sum())} band cells of {inside.numel()}; "
              f"{pos.shape[0]} positive and {neg.shape[0]} negative cells; seeds {args.seeds})")
        print("| gate | fitted cover | fitted leak | top16 band | faces>.25 | low25% | outside |")
        print("|---|---|---|---|---|---|---|")
        for label, quadratic, quantile, leak in GATES:
            gate, cover, passed = fit_gate(pos, neg, quantile, p.softness, p.shrink,
                                           quadratic=quadratic, leak=leak)
            with torch.no_grad():
                opened = (gate.read(held) > gate.b).double()  # [N, h, w]
            per_face = opened[:, inside].mean(1)
            low = per_face.sort().values[: max(1, len(seeds) // 4)].mean()
            print(f"| {label} | {cover:.2f} | {passed:.4f} | "
                  f"{float(opened[top][:, inside].mean()):.2f} | "
                  f"{float((per_face > 0.25).double().mean()):.2f} | {float(low):.3f} | "
                  f"{float(opened[:, ~inside].mean()):.4f} |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
