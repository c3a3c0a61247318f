"""How far a gated edit's gate opens on given faces: per face, the mean opening over the key
cells of the rule's band (and outside it), for the spec's solved gate and for gates refitted on
the same cells with other quantiles (the share of the examples' band cells left shut).

Why: a gated edit draws its object only where its gate opens; on faces as they come (the
demo's 100-115) it opens far less than on the examples it was fitted on. A diagnostic, not a
method: nothing here is chosen.

Usage (from the project root)::

    python benchmarks/experiments/gate_opening.py examples/demo-sunglasses.json \\
        --seeds 100-115 --quantiles 0.3 0.2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.example_fit import fit_samples  # noqa: E402
from rewrite.edit.gated_fit import GATE_AT, GatedParams, band_cells  # noqa: E402
from rewrite.memory.gate import fit_gate  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--seeds", default="100-115")
    ap.add_argument("--quantiles", nargs="*", type=float, default=[],
                    help="also refit the spec layer's gate with these quantiles")
    args = ap.parse_args(argv)
    spec = EditSpec.load(args.spec)
    G = load_model(spec.model)
    seeds = parse_seeds(args.seeds)
    session = Rewriter(G, progress=False)
    inputs = session.prepare(spec)
    delta = session.compute(spec, inputs)
    if delta.gate is None:
        raise SystemExit(f"{spec.name} was solved with {delta.method}, which has no gate")
    gates = [(f"{delta.layer} (solved)", delta.layer, delta.gate)]
    if delta.companion is not None:
        gates.append((f"{delta.companion.layer} (solved)", delta.companion.layer,
                      delta.companion.gate))
    assert inputs.band is not None
    if args.quantiles:  # the solved gate's cells, other thresholds
        p = GatedParams()
        with torch.no_grad():
            fs = fit_samples(G, inputs, p)
        keys = fs.split.keys
        inside = band_cells(G, delta.layer, inputs.band)
        cells = keys.permute(0, 2, 3, 1)
        c_in = cells.shape[-1]
        pos = cells[: fs.n_ex][:, inside].reshape(-1, c_in)
        neg = torch.cat([cells[:, ~inside].reshape(-1, c_in),
                         cells[fs.n_ex : fs.n_ex + fs.n_sil].reshape(-1, c_in)])
        for q in args.quantiles:
            gate, cover, leak = fit_gate(pos, neg, q, p.softness, p.shrink, GATE_AT)
            gates.append((f"{delta.layer} quantile {q:g} (cover {cover:.2f}, leak {leak:.4f})",
                          delta.layer, gate))
    for label, layer, gate in gates:
        inside = band_cells(G, layer, inputs.band)
        with torch.no_grad():
            opened = gate.open(G.split(G.latents(seeds), layer).keys)[:, 0]
        band = opened[:, inside].mean(1)
        print(f"{label}: mean opening in the band per face "
              + " ".join(f"{s}:{float(v):.2f}" for s, v in zip(seeds, band, strict=True))
              + f"; outside it {float(opened[:, ~inside].mean()):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
