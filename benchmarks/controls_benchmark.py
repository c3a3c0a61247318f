"""The controls benchmark: do "not here" regions remove an edit's false positives, and do
edits solved together keep each other's effect? On the face model, held-out samples.

    python benchmarks/controls_benchmark.py                  # both parts
    python benchmarks/controls_benchmark.py --part preserve --edits red-hair add-cap

**preserve** emulates a user fixing an edit that fires where it should not. The rule
of an edit should act in the rows of its paste box (plus one key row); firing
anywhere else is a false positive. Among samples 0-999 (where a user browses; the
held-out samples never enter), the twelve whose rule responds most outside those
rows get "not here" rectangles over every key cell there responding above half the
firing threshold, grown by one cell (clipped to outside the rows), as a user would
paint over the false positives they see in the gallery. The edit
is measured without these regions and with them at "not here" weights 4 and 16
(the default), on held-out samples 2000-2255, with the firing regions of the
unfixed edit for all:

* *false-positive change*: mean absolute pixel change (0-1) where the unfixed rule
  fires outside the intended rows: the damage the regions should remove;
* *intended change*: the same inside the intended rows (what the edit is for);
* efficacy, matched efficacy, goal reproduction and silent change as in ``rewrite eval``.

Each edit is measured at the default collateral budget and at budget 0.1 (a strong
edit, where false positives are clearly visible). ``preserve-<edit>.png`` shows
the held-out samples with the largest false-positive response: before, the unfixed
edit, the fixed edit (budget 0.1, weight 16).

**joint** measures interference: for pairs of edits on the same layer, each edit's
goal reproduction (0 = the request exactly, 1 = no closer than unedited) alone,
after applying the pair one after the other (the second solved on the model the
first left), and solved together (``rewrite edit A B``).

Writes ``table.md`` and ``metrics.json`` to ``--out`` (default outputs/controls-benchmark).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import table  # noqa: E402

from rewrite import load_model  # noqa: E402
from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.masks import render_mask  # noqa: E402
from rewrite.metrics.evaluate import compare_methods, variant  # noqa: E402
from rewrite.metrics.firing import key_response  # noqa: E402
from rewrite.metrics.pixels import mean_change  # noqa: E402
from rewrite.metrics.transfer import goal_reproduction  # noqa: E402
from rewrite.sampling.seeds import parse_seeds  # noqa: E402
from rewrite.utils.images import make_grid, save_png, to_unit  # noqa: E402

EDITS = {p.stem: p for p in sorted((ROOT / "examples").glob("add-*.json"))
         + sorted((ROOT / "benchmarks" / "edits").rglob("*.json"))}
PRESERVE_EDITS = ["red-hair", "add-cap", "close-mouth", "add-beard"]
PAIRS = [("add-sunglasses", "add-glasses"), ("add-beard", "close-mouth"),
         ("red-hair", "add-cap"), ("add-sunglasses", "add-cap"),
         ("close-mouth", "add-sunglasses")]
BROWSE = range(0, 1000)
MARKED = 12
#: "Not here" weights compared (the last one is the default, shown in the picture).
WEIGHTS = (4.0, 16.0)
GROW_AT = 0.5
PRESERVE_COLUMNS = ["edit", "budget", "not here", "false-positive change", "intended change",
                    "efficacy", "matched efficacy", "goal reproduction", "silent change",
                    "predicted collateral"]
JOINT_COLUMNS = ["edits", "A alone", "B alone", "A in sequence", "B in sequence",
                 "A together", "B together", "worse in sequence", "worse together"]


def intended_rows(spec: EditSpec, size: int, grid: int) -> np.ndarray:
    """Key rows [grid] the edit is meant for: the paste box's rows, one more on each side."""
    m = render_mask(spec.paste.mask, size) > 0
    rows = np.nonzero(m.any(1))[0]
    cell = size // grid
    r0, r1 = rows.min() // cell, rows.max() // cell
    out = np.zeros(grid, dtype=bool)
    out[max(0, r0 - 1):min(grid, r1 + 2)] = True
    return out


def not_here_regions(G, spec: EditSpec, band: np.ndarray, threshold: float) -> list[dict]:
    """"Not here" rectangles on the ``MARKED`` samples of ``BROWSE`` whose rule responds
    most outside ``band``: every key cell outside the band responding above half of
    ``threshold``, grown by one cell (clipped to outside the band), one rectangle per
    row run, as a user paints over a false positive."""
    D = Rewriter(G, progress=False).prepare(spec).D
    resp = key_response(G, spec.layer, D, list(BROWSE)).numpy()              # [N, h, w]
    outside = resp * ~band[None, :, None]
    peak = outside.reshape(len(resp), -1).max(1)
    own = {s.sample for _, s in spec.selections()}
    order = [i for i in np.argsort(-peak, kind="stable") if BROWSE[i] not in own]
    cell = G.resolution // resp.shape[-1]
    h, w = resp.shape[-2:]
    regions = []
    for i in order[:MARKED]:
        if peak[i] <= threshold:
            break
        hot = outside[i] > GROW_AT * threshold
        grown = np.zeros_like(hot)
        for r, c in zip(*np.nonzero(hot)):
            grown[max(0, r - 1):r + 2, max(0, c - 1):c + 2] = True
        grown &= ~band[:, None]
        for r in range(h):
            cols = np.nonzero(grown[r])[0]
            if len(cols):
                regions.append({"sample": int(BROWSE[i]), "mask": {"rect": [
                    int(cols.min() * cell), int(r * cell), int((cols.max() + 1) * cell),
                    int((r + 1) * cell)]}})
    return regions


def preserve_part(G, names: list[str], seeds: list[int], out: Path) -> list[dict]:
    rows = []
    for name in names:
        base = EditSpec.load(EDITS[name])
        info = G.layer(base.layer)
        band = intended_rows(base, G.resolution, info.key_resolution)
        for budget in (None, 0.1):
            spec = base if budget is None else variant(base, base.solver, base.rank,
                                                        {"budget": budget})
            results = compare_methods(G, spec, seeds, [spec], progress=False)
            fire = results[0].fire                                           # [N, R, R]
            px_band = np.repeat(band, G.resolution // len(band))[None, :, None]
            regions = not_here_regions(G, spec, band, results[0].threshold)
            fixes = [EditSpec.from_json({**spec.to_json(), "preserve": regions,
                                         "preserve_weight": w}) for w in WEIGHTS]
            both = compare_methods(G, spec, seeds, [spec, *fixes], progress=False)
            labels = ["no"] + [f"{len(regions)} regions, weight {w:g}" for w in WEIGHTS]
            for label, r in zip(labels, both):
                b = r.before.astype(np.float64) / 255
                a = r.after.astype(np.float64) / 255
                m = r.metrics
                rows.append({"edit": name, "budget": budget or 0.01, "not here": label,
                             "false-positive change": mean_change(b, a, fire & ~px_band),
                             "intended change": mean_change(b, a, fire & px_band),
                             **{k: m[k] for k in PRESERVE_COLUMNS[5:]}})
            if budget == 0.1:
                resp = both[0].response * ~band[None, :, None]
                pick = list(np.argsort(-resp.reshape(len(seeds), -1).max(1), kind="stable")[:8])
                grid = np.concatenate([both[0].before[pick], both[0].after[pick],
                                       both[-1].after[pick]])
                labels = ([f"#{seeds[i]}" for i in pick] + [f"#{seeds[i]} edited" for i in pick]
                          + [f"#{seeds[i]} not here" for i in pick])
                save_png(make_grid(grid, cols=len(pick), labels=labels, scale=2),
                         out / f"preserve-{name}.png")
        print(table([r for r in rows if r["edit"] == name], PRESERVE_COLUMNS), flush=True)
    return rows


def _repro(G, inputs, before) -> float:
    with torch.no_grad():
        after = to_unit(G(G.latents(inputs.goal_samples)))
    box = inputs.image_mask[0, 0].numpy() > 0
    return goal_reproduction(before[0], after[0], to_unit(inputs.target_image)[0], box)


def joint_part(G, pairs) -> list[dict]:
    session = Rewriter(G, progress=False)
    rows = []
    for a, b in pairs:
        specs = [EditSpec.load(EDITS[a]), EditSpec.load(EDITS[b])]
        inputs = [session.prepare(s) for s in specs]
        with torch.no_grad():
            before = [to_unit(G(G.latents(i.goal_samples))) for i in inputs]

        def measure():
            return [_repro(G, i, bf) for i, bf in zip(inputs, before)]
        alone = []
        for s, i, bf in zip(specs, inputs, before):
            session.apply(s)
            alone.append(_repro(G, i, bf))
            session.reset()
        for s in specs:
            session.apply(s)
        seq = measure()
        session.reset()
        session.apply_together(copy.deepcopy(specs))
        together = measure()
        session.reset()
        rows.append({"edits": f"{a} + {b}", "A alone": alone[0], "B alone": alone[1],
                     "A in sequence": seq[0], "B in sequence": seq[1],
                     "A together": together[0], "B together": together[1],
                     "worse in sequence": max(seq), "worse together": max(together)})
        print(table(rows[-1:], JOINT_COLUMNS), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["preserve", "joint", "both"], default="both")
    ap.add_argument("--edits", nargs="*", default=PRESERVE_EDITS,
                    help=f"edits for the preserve part (default: {' '.join(PRESERVE_EDITS)})")
    ap.add_argument("--seeds", default="2000-2255", help="held-out samples")
    ap.add_argument("--out", default=str(ROOT / "outputs" / "controls-benchmark"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    G = load_model("dcgan-digiface64")
    t0 = time.perf_counter()
    result: dict = {}
    text = []
    if args.part in ("preserve", "both"):
        result["preserve"] = preserve_part(G, args.edits, parse_seeds(args.seeds), out)
        text += ["## Not here", "", table(result["preserve"], PRESERVE_COLUMNS), ""]
    if args.part in ("joint", "both"):
        result["joint"] = joint_part(G, PAIRS)
        text += ["## Solved together", "", table(result["joint"], JOINT_COLUMNS), ""]
    (out / "table.md").write_text("\n".join(text))
    (out / "metrics.json").write_text(json.dumps(result, indent=1, default=lambda v: None) + "\n")
    print(f"done in {time.perf_counter() - t0:.0f} s; wrote {out}/table.md and metrics.json")


if __name__ == "__main__":
    main()
