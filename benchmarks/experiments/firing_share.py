"""On how many faces the rule fires: the faces an edit may change while staying silent elsewhere.

For a spec and each seed range: the samples the evaluation calls silent (no key cell's
response to the rule's directions above the 99th percentile over those samples' cells, grown
by one cell: where `silent change` is measured) and the samples whose strongest response inside
the band passes the calibration samples' firing threshold (listed for a short range). A
diagnostic: nothing is chosen.

Usage (from the project root)::

    python benchmarks/experiments/firing_share.py examples/demo-sunglasses.json \\
        --seeds 100-115 3000-3255
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.calibrate import firing_samples, silent_splits  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--seeds", nargs="+", default=["100-115", "3000-3255"])
    args = ap.parse_args(argv)
    spec = EditSpec.load(args.spec)
    G = load_model(spec.model)
    inputs = Rewriter(G, progress=False).prepare(spec)
    assert inputs.band is not None
    layer = inputs.info.name
    for text in args.seeds:
        seeds = parse_seeds(text)
        silent = sum(int(s.keys.shape[0]) for s in silent_splits(G, layer, inputs.D, seeds))
        firing = firing_samples(G, inputs, seeds)
        listed = f": {', '.join(map(str, firing))}" if len(seeds) <= 32 else ""
        print(f"{spec.name} {text}: silent by the evaluation on {silent} of {len(seeds)}; "
              f"the band's response passes the firing threshold on {len(firing)}{listed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
