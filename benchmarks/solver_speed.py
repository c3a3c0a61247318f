"""Solver speed: wall time and final loss of every solver on the same edit.

    python benchmarks/solver_speed.py [--spec SPEC.json ...] [--rounds 3]

Default edits: the face model's add-sunglasses example, and copy-paste edits on
the tiny StyleGAN2, ProGAN, NVIDIA StyleGAN2-ADA and StyleGAN3-T fixture models (when
../shared/fixtures is there).
For each edit, each solver runs ``rounds`` times in turn on the same problem
(statistics, directions and goal computed once); the table shows the median
time, the final loss (after the final projection for ``adam``) and the ratios
to ``adam``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fixture_spec, interleaved, table  # noqa: E402

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.memory.solvers import DEFAULT_SOLVER, SOLVERS, solve  # noqa: E402
from rewrite.models import load_model  # noqa: E402


def specs_to_run(paths: list[str] | None) -> list[EditSpec]:
    """The specs named, or the default set (face example and fixture-model edits)."""
    if paths:
        return [EditSpec.load(p) for p in paths]
    specs = [EditSpec.load(Path(__file__).resolve().parents[1] / "examples" / "add-sunglasses.json")]
    for family, layer in (("stylegan2", "convs.3"), ("proggan", "layer4"),
                          ("stylegan2-ada", "b16.conv1"), ("stylegan3", "L8_84_5")):
        obj = fixture_spec(family, layer)
        if obj is None:
            print(f"(no {family} fixture found; skipping it)")
        else:
            specs.append(EditSpec.from_json(obj))
    return specs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spec", nargs="+", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = []
    for spec in specs_to_run(args.spec):
        G = load_model(spec.model)
        problem = Rewriter(G, progress=False).prepare(spec).problem(G)
        solve(problem, "closed-form+refine", {"steps": 10})            # warm-up
        results = {}

        def runner(name):
            def run():
                results[name] = solve(problem, name)
            return run

        times = interleaved({name: runner(name) for name in SOLVERS}, args.rounds)
        ref_t, ref_loss = times["adam"], results["adam"].loss
        for name in SOLVERS:
            r = results[name]
            rows.append({"edit": spec.name, "layer": spec.layer,
                         "solver": name + (" (default)" if name == DEFAULT_SOLVER else ""),
                         "seconds": times[name], "loss before": r.loss_before,
                         "final loss": r.loss,
                         "|ΔW|/|W0|": float(r.delta.norm() / problem.layer.weight.norm()),
                         "collateral": r.collateral,
                         "speed-up vs adam": ref_t / times[name],
                         "loss / adam loss": r.loss / ref_loss})
    print(f"median of {args.rounds} interleaved rounds, {torch.get_num_threads()} threads\n")
    print(table(rows, ["edit", "layer", "solver", "seconds", "loss before", "final loss",
                       "|ΔW|/|W0|", "collateral", "speed-up vs adam", "loss / adam loss"]))


if __name__ == "__main__":
    main()
