"""The edit on its best-matched held-out faces, for counting by eye.

For each spec: the ``--top`` samples of ``--seeds`` where the rule responds most (the
response of its directions to the layer's keys, as ``rewrite match`` and the evaluation's
"matched" figures rank them), before and after the edit solved with the spec's method (or
``--method`` with ``--params``), written as one PNG per spec under ``--out``.

Usage (from the project root; the judging samples are for reporting only)::

    python benchmarks/experiments/matched_faces.py benchmarks/edits/test/*.json \\
        --seeds 3000-3255 --top 12 --out outputs/matched-test
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.metrics.before_after import before_after_grid  # noqa: E402
from rewrite.metrics.evaluate import variant  # noqa: E402
from rewrite.metrics.firing import key_response  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402
from rewrite.utils.images import save_png, to_uint8  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+", type=Path)
    ap.add_argument("--seeds", default="3000-3255")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--method", default=None, help="default: the spec's own (or the model's)")
    ap.add_argument("--params", type=json.loads, default=None,
                    help="the method's parameters as JSON (with --method)")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "matched")
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    args.out.mkdir(parents=True, exist_ok=True)
    G, loaded = None, None
    for path in args.specs:
        spec = EditSpec.load(path)
        if args.method:
            spec = variant(spec, args.method, params=args.params)
        if loaded != spec.model:
            G, loaded = load_model(spec.model), spec.model
        session = Rewriter(G, progress=False)
        inputs = session.prepare(spec)
        peak = key_response(G, spec.layer, inputs.D, seeds).flatten(1).amax(1)
        top = [seeds[i] for i in torch.argsort(peak, descending=True, stable=True)[: args.top]]
        delta = session.compute(spec, inputs)
        with torch.no_grad():
            before = to_uint8(G(G.latents(top)))
            session.apply(delta)
            after = to_uint8(G(G.latents(top)))
            session.undo()
        out = args.out / f"{spec.name or path.stem}.png"
        save_png(before_after_grid(before, after, top, cols=args.top), out)
        print(f"wrote {out} ({delta.method}, {len(top)} best-matched of {len(seeds)})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
