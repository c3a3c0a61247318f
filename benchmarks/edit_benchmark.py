"""The edit benchmark: every edit of ``examples/`` and ``benchmarks/edits/`` (the tuning
set ``tune/`` and the held-out test set ``test/``) on the face model, solved by each method
and judged on held-out samples the specs never saw.

Writes to ``--out`` (default ``outputs/edit-benchmark``):

* ``table.md`` / ``metrics.json``: one row per edit and method (goal reproduction,
  efficacy, object transfer or erase removal and clean removal, silent change, change
  outside, ...);
* ``<edit>.png``: held-out samples chosen by the tool, before (upper row) and after
  (lower row) with the spec's own settings: the 12 samples of ``--seeds`` where the
  rule responds most (``rewrite match``), then the 4 where it responds least;
* ``<edit>-goal.png``: the goal panel (copy source, paste target, the request, the
  goal rendered from this layer, the edited paste target).

With ``--candidates`` the methods are instead the candidates the default was
chosen from: the default; rank 1 and rank 8 at the same budget; rank 4 with a
fixed penalty (no budget); the ridge penalty ``|Λ|²`` at rank 4 (``closed-form``);
and, for erase edits, the zeroed-units goal of the previous release.

Usage::

    python benchmarks/edit_benchmark.py                       # all edits, all methods
    python benchmarks/edit_benchmark.py --edits add-cap --methods 2
    python benchmarks/edit_benchmark.py --candidates --out outputs/edit-candidates
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import table  # noqa: E402

from rewrite import load_model  # noqa: E402
from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.metrics.before_after import before_after_grid, goal_panel  # noqa: E402
from rewrite.metrics.evaluate import (  # noqa: E402
    add_standard_metrics,
    compare_methods,
    method_variants,
    variant,
)
from rewrite.metrics.standard import load_standard_nets  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402
from rewrite.utils.images import save_png, to_uint8  # noqa: E402

COLUMNS = ["edit", "method", "goal reproduction", "efficacy", "matched efficacy",
           "structure transfer", "object transfer", "erase removal", "clean removal",
           "silent change", "change outside", "firing samples", "seconds"]


def spec_paths(names: list[str] | None) -> list[Path]:
    paths = sorted((ROOT / "examples").glob("*.json")) + sorted((ROOT / "benchmarks" / "edits").rglob("*.json"))
    if names:
        paths = [p for p in paths if p.stem in names]
    return paths


def candidates(spec: EditSpec) -> list[EditSpec]:
    """The default and the alternatives it was chosen from (see the module docstring)."""
    out = [variant(spec, "least-collateral", 4),
           variant(spec, "least-collateral", 1),
           variant(spec, "least-collateral", 8),
           variant(spec, "least-collateral", 4, {"weight": 0.1, "budget": 1e9}),
           variant(spec, "closed-form", 4, {"ridge_search": 1})]
    if spec.kind == "erase":
        zero = variant(spec, "least-collateral", 4)
        zero.erase_goal = "zero-units"
        out.append(zero)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="2000-2255", help="held-out samples (default 2000-2255)")
    ap.add_argument("--edits", nargs="*", help="edit names (default: all)")
    ap.add_argument("--methods", type=int, default=None,
                    help="only the first N methods of the comparison (1 = the spec's own)")
    ap.add_argument("--candidates", action="store_true",
                    help="compare the candidates the default was chosen from instead")
    ap.add_argument("--out", default=str(ROOT / "outputs" / "edit-benchmark"))
    ap.add_argument("--inception-weights", default=None,
                    help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: add FID and KID "
                         "(also $REWRITE_INCEPTION_WEIGHTS)")
    ap.add_argument("--lpips-weights", default=None,
                    help="torchvision's vgg16-397923af.pth: add LPIPS outside the firing "
                         "regions and on silent samples (also $REWRITE_LPIPS_WEIGHTS)")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    G = load_model("dcgan-digiface64")
    inet, iid, lnet, notes = load_standard_nets(args.inception_weights, args.lpips_weights)
    columns = COLUMNS + [c for c, net in (("FID", inet), ("KID", inet), ("LPIPS outside", lnet),
                                          ("LPIPS, silent samples", lnet)) if net is not None]
    rows, t0 = [], time.perf_counter()
    for path in spec_paths(args.edits):
        spec = EditSpec.load(path)
        variants = (candidates(spec) if args.candidates else method_variants(spec))[:args.methods]
        results = compare_methods(G, spec, seeds, variants, progress=False)
        if inet is not None or lnet is not None:
            add_standard_metrics(results, inet, lnet, iid)
        for asked, r in zip(variants, results):
            label = r.label + (" zero-units goal" if asked.erase_goal != "inpaint"
                               and asked.kind == "erase" else "")
            rows.append({"edit": spec.name, "method": label,
                         **{k: v for k, v in r.metrics.items() if k in columns}})
        own = results[0]
        order = np.argsort(-own.response.reshape(len(seeds), -1).max(1), kind="stable")
        pick = list(order[:12]) + list(order[-4:])
        save_png(before_after_grid(own.before[pick], own.after[pick], [seeds[i] for i in pick],
                                   cols=16), out / f"{spec.name}.png")
        session = Rewriter(G, progress=False)
        inputs = session.prepare(spec)
        session.apply(own.delta)
        try:
            edited = session.model(G.latents(inputs.goal_samples[:1]))
        finally:
            session.undo()
        save_png(goal_panel(G, spec, inputs, to_uint8(edited.detach())[0]),
                 out / f"{spec.name}-goal.png")
        print(table([r for r in rows if r["edit"] == spec.name], columns), flush=True)
        print(f"{spec.name}: {time.perf_counter() - t0:.0f} s so far", file=sys.stderr, flush=True)
    text = table(rows, columns)
    (out / "table.md").write_text(text + "\n")
    (out / "metrics.json").write_text(json.dumps(rows, indent=1, default=lambda v: None) + "\n")
    print(f"\n{len(rows)} rows in {time.perf_counter() - t0:.0f} s; wrote {out}/table.md, "
          f"metrics.json and a grid and goal panel per edit")
    for line in notes:
        print(line)


if __name__ == "__main__":
    main()
