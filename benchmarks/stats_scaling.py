"""`rewrite stats` with 1 and 2 processes (torchrun, gloo) on this machine.

    python benchmarks/stats_scaling.py [--model dcgan-digiface64] [--layer main.6] [-n 4000]

Runs the command as a user would (``--no-cache``), alternating 1 and 2
processes ``rounds`` times, and reads the samples/s it reports (the statistics
pass itself, without start-up). One process uses the default threads; each of
two processes uses one thread (torchrun's default), so both use the machine's
2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(procs: int, args) -> float:
    cmd = ["stats", args.model, "--layer", args.layer, "-n", str(args.n), "--no-cache"]
    if procs == 1:
        full = [sys.executable, "-m", "rewrite", *cmd]
    else:
        full = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", str(procs), "-m", "rewrite", *cmd]
    out = subprocess.run(full, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ),
                         check=True).stdout
    return float(re.search(r"\(([\d.]+) samples/s", out).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="dcgan-digiface64")
    ap.add_argument("--layer", default="main.6")
    ap.add_argument("-n", type=int, default=4000)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rates: dict[int, list[float]] = {p: [] for p in args.procs}
    for _ in range(args.rounds):
        for p in args.procs:
            rates[p].append(run(p, args))
    base = statistics.median(rates[args.procs[0]])
    rows = [{"processes": p, "samples/s": statistics.median(r),
             f"ratio to {args.procs[0]}": statistics.median(r) / base} for p, r in rates.items()]
    print(f"rewrite stats {args.model} --layer {args.layer} -n {args.n}: median of "
          f"{args.rounds} alternating rounds, {os.cpu_count()} CPUs\n")
    print(table(rows, ["processes", "samples/s", f"ratio to {args.procs[0]}"]))


if __name__ == "__main__":
    main()
