"""Sampling throughput of an edited model against the unedited one.

    python benchmarks/sampling_throughput.py [--spec examples/add-sunglasses.json] [-n 2000]

The edit is folded into the weights, so the edited model runs the same
operations; the ratio should be 1.0 within noise. Both models render the same
samples in turn ``rounds`` times; the table shows median images/s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, table  # noqa: E402

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.sampling.generate import generate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spec", default=str(Path(__file__).resolve().parents[1] / "examples" /
                                          "add-sunglasses.json"))
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    spec = EditSpec.load(args.spec)
    plain = load_model(spec.model)
    edited = load_model(spec.model)
    Rewriter(edited, progress=False).apply(spec)
    seeds = range(args.n)
    generate(plain, range(args.batch_size), args.batch_size, progress=False)   # warm-up
    t = interleaved({"unedited": lambda: generate(plain, seeds, args.batch_size, progress=False),
                     "edited": lambda: generate(edited, seeds, args.batch_size, progress=False)},
                    args.rounds)
    rows = [{"model": k, "images/s": args.n / v} for k, v in t.items()]
    rows.append({"model": "ratio edited/unedited", "images/s": t["unedited"] / t["edited"]})
    print(f"{spec.model} with {spec.name or args.spec}: {args.n} samples, batch {args.batch_size}, "
          f"median of {args.rounds} interleaved rounds, {torch.get_num_threads()} threads\n")
    print(table(rows, ["model", "images/s"]))


if __name__ == "__main__":
    main()
