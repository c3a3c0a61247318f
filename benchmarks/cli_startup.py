"""CLI start-up: how long `rewrite --help` and `rewrite edit --help` take, beside an empty
interpreter.

    python benchmarks/cli_startup.py [--rounds 5] [--before DIR]

Each command runs ``rounds`` times in a fresh interpreter (``python -m rewrite ...`` with
the working directory at the checkout measured, so that checkout's ``rewrite`` is the one
imported); the table shows the median wall time and its ratio to ``python -c pass``.
``--before DIR`` measures another checkout (say a ``git worktree`` of an older commit) in
the same rounds, interleaved, and adds its column: before and after side by side on the
same machine and load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    ("python -c pass", ["-c", "pass"]),
    ("rewrite --help", ["-m", "rewrite", "--help"]),
    ("rewrite edit --help", ["-m", "rewrite", "edit", "--help"]),
]


def once(args: list[str], cwd: Path) -> float:
    """Wall time of one ``python ARGS`` in a fresh process; fails loudly on a non-zero exit."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"`python {' '.join(args)}` in {cwd} failed:\n{proc.stderr}")
    return took


def measure(checkouts: dict[str, Path], rounds: int) -> dict[tuple[str, str], float]:
    """Median seconds per (checkout, command), the runs interleaved round by round."""
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for label, args in COMMANDS:
            for name, cwd in checkouts.items():
                times.setdefault((name, label), []).append(once(args, cwd))
    return {key: statistics.median(v) for key, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="Runs of each command (median).")
    ap.add_argument("--before", type=Path, default=None,
                    help="Another checkout to measure side by side (e.g. a git worktree).")
    args = ap.parse_args()
    checkouts = {"this checkout": ROOT}
    if args.before is not None:
        checkouts = {"before": args.before.resolve(), "after": ROOT}
    med = measure(checkouts, args.rounds)
    base = {name: med[(name, COMMANDS[0][0])] for name in checkouts}
    head = f"{'command':<22}" + "".join(f"{name + ' (s)':>16}{'x pass':>9}" for name in checkouts)
    if args.before is not None:
        head += f"{'after/before':>14}"
    print(f"median of {args.rounds} runs, {sys.executable}")
    print(head)
    print("-" * len(head))
    for label, _ in COMMANDS:
        line = f"{label:<22}"
        for name in checkouts:
            t = med[(name, label)]
            line += f"{t:>16.3f}{t / base[name]:>9.1f}"
        if args.before is not None:
            line += f"{med[('after', label)] / med[('before', label)]:>14.2f}"
        print(line)


if __name__ == "__main__":
    main()
