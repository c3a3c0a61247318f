"""The outside instrument's measures on the TUNING samples 2000-2255, for choosing settings.

``../shared/tools/edit_quality.py`` always judges on the held-out samples 3000-3255, which
must never be used to choose anything. This script loads the instrument unchanged, points
its sample list at 2000-2255, and measures one spec with a method, solver parameters and a
strength of your choice, so settings are chosen with the instrument's own definitions
(silent, goal_gap, toward_object, toward_structure) without touching the judging samples.

Usage (from the project root)::

    python benchmarks/instrument_on_tuning.py benchmarks/edits/tune/add-cap.json \\
        --method example-fit --params '{"collateral_weight": 20}' --strength 0.75

Writes the instrument's files (grid PNG, JSON) under ``--out`` (default
``outputs/instrument-tuning``) and prints one line of figures. Refuses specs of
``benchmarks/edits/test/`` (the held-out test edits are never used for choosing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTRUMENT = ROOT.parent / "shared" / "tools" / "edit_quality.py"
TUNING_SAMPLES = list(range(2000, 2256))
FIGURES = ("silent", "outside", "inside_top", "goal_gap", "toward_object", "toward_structure",
           "seconds")


def load_instrument(path: Path = INSTRUMENT):
    """The instrument's module, loaded unchanged from ``path``, with its sample list pointed
    at the tuning samples 2000-2255 (``run_spec(spec_path, out_dir, "api")`` measures one
    spec there)."""
    loader = importlib.util.spec_from_file_location("edit_quality", path)
    eq = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(eq)
    eq.HELD_OUT = TUNING_SAMPLES
    return eq


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--method", help="solver/method name (default: the spec's own)")
    ap.add_argument("--params", default="{}", help="solver parameters as JSON")
    ap.add_argument("--strength", type=float, default=None)
    ap.add_argument("--tag", default=None, help="suffix of the output names")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "instrument-tuning")
    ap.add_argument("--instrument", type=Path, default=INSTRUMENT)
    a = ap.parse_args(argv)
    if "test" in a.spec.resolve().parts and "edits" in a.spec.resolve().parts:
        ap.error(f"{a.spec} is a held-out test edit; choose settings on benchmarks/edits/tune/")
    if not a.instrument.is_file():
        ap.error(f"the instrument is not at {a.instrument}; pass --instrument PATH")
    eq = load_instrument(a.instrument)
    spec = json.loads(a.spec.read_text())
    if a.method:
        spec["solver"] = {"name": a.method, "params": json.loads(a.params)}
    if a.strength is not None:
        spec["strength"] = a.strength
    tag = a.tag or "-".join(x for x in [a.method or "spec",
                                          None if a.strength is None else f"s{a.strength:g}"] if x)
    spec["name"] = f"{spec.get('name', a.spec.stem)}-{tag}"
    a.out.mkdir(parents=True, exist_ok=True)
    variant = a.out / "specs" / f"{spec['name']}.json"
    variant.parent.mkdir(exist_ok=True)
    variant.write_text(json.dumps(spec, indent=1))
    r = eq.run_spec(variant, a.out, "api")
    print(spec["name"], " ".join(f"{k}={r[k]:.4f}" for k in FIGURES
                                 if isinstance(r.get(k), (int, float))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
