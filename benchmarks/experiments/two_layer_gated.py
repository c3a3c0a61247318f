"""Two layers at once (MEMIT spreads an edit over consecutive layers): a gated change on the
spec's layer and one on the next (or previous) layer, fitted jointly through the generator,
against ``gated`` on the spec's layer alone. One-off experiment on the TUNING edits and samples.

Both layers get ``gated``'s gate (LDA on their own keys: the band cells of the examples
against the cells outside the band and the silent samples) and a full-capacity weight change
behind it; the two changes are fitted together by Adam on ``gated``'s losses (the same
examples, goals and preserve terms, :func:`rewrite.edit.example_fit.fit_samples`), and one
share of both is kept by the same silent-change calibration. Judged with the project's
evaluation (``rewrite.metrics.evaluate``: silent change, goal reproduction, structure
transfer or erase removal) on the tuning samples 2000-2255; writes one before/after grid per
edit and variant of the 12 tuning samples where the rule responds most.

Usage (from the project root)::

    python benchmarks/experiments/two_layer_gated.py benchmarks/edits/tune/*.json \\
        --second next prev --out outputs/two-layer
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.calibrate import CALIBRATION, calibrate_share  # noqa: E402
from rewrite.edit.delta import Delta  # noqa: E402
from rewrite.edit.example_fit import fit_samples, frozen  # noqa: E402
from rewrite.edit.gated import apply_gated  # noqa: E402
from rewrite.edit.gated_fit import GATE_AT, GatedParams, gated_fit  # noqa: E402
from rewrite.edit.masks import crop_window, layer_window, window_coverage  # noqa: E402
from rewrite.memory.gate import fit_gate, gated_change, gated_values  # noqa: E402
from rewrite.metrics.before_after import before_after_grid  # noqa: E402
from rewrite.metrics.evaluate import _measure, _shared  # noqa: E402
from rewrite.metrics.firing import firing_mask, quantile_threshold  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.models.base import Split  # noqa: E402
from rewrite.utils.distributed import DistContext  # noqa: E402

SEEDS = list(range(2000, 2256))  # tuning samples: choosing only


def band_gate(G, layer, band, keys, n_ex, n_sil, p):
    """``gated``'s gate on ``layer``'s keys [N, C, h, w] (examples, silent, keep order)."""
    inside = torch.as_tensor(
        window_coverage(band.float().cpu().numpy(), layer_window(G.layer(layer), "key")) > 0.5
    )
    cells = keys.permute(0, 2, 3, 1)
    c = keys.shape[1]
    pos = cells[:n_ex][:, inside].reshape(-1, c)
    neg = torch.cat([cells[:, ~inside].reshape(-1, c), cells[n_ex : n_ex + n_sil].reshape(-1, c)])
    gate, _, _ = fit_gate(pos, neg, p.quantile, p.softness, p.shrink, GATE_AT)
    return gate


class Wrap:
    """``(keys, values) -> values`` of the second layer under ``scale · change``."""

    def __init__(self, G, layer, change, gate):
        self.G, self.layer, self.change, self.gate, self.scale = G, layer, change, gate, 1.0

    def __call__(self, keys, values):
        f = self.G.layer_function(Split(self.layer, keys, values))
        return gated_values(f, keys, values, self.change * self.scale, self.gate)


@torch.no_grad()
def silent_ids(G, layer, D):
    """The calibration samples on which the rule is silent (as :func:`silent_splits`)."""
    samples = list(CALIBRATION)
    window = layer_window(G.layer(layer), "key")
    responses = []
    for s in range(0, len(samples), 64):
        keys = crop_window(G.split(G.latents(samples[s : s + 64]), layer).keys, window)
        proj = torch.einsum("rc,bchw->brhw", D.to(keys), keys)
        responses.append(proj[:, 0] if D.shape[0] == 1 else proj.norm(dim=1))
    response = torch.cat(responses)
    fire = firing_mask(response, quantile_threshold(response), response.shape[-1])
    return [samples[i] for i in torch.nonzero(~fire.flatten(1).any(1)).flatten().tolist()]


def two_layer_fit(G, inputs, second: str, p: GatedParams):
    """(delta of the upstream layer, delta of the later one) fitted jointly; one of the
    two is the spec's layer, ``second`` the other (see the module docstring)."""
    t0 = time.perf_counter()
    names = [i.name for i in G.layers()]
    first, later = sorted([inputs.info.name, second], key=names.index)
    fs = fit_samples(G, inputs, p)
    band = inputs.band
    with torch.no_grad():
        z = G.latents(fs.samples)
        split = G.split(z, first)
        keys_b = G.split(z, later).keys
    gate_first = band_gate(G, first, band, split.keys, fs.n_ex, fs.n_sil, p)
    gate_later = band_gate(G, later, band, keys_b, fs.n_ex, fs.n_sil, p)
    f_first = G.layer_function(split)
    w_first = f_first.weight.detach()
    w_later = dict(G.named_parameters())[G.weight_name(later)].detach()
    render_first = gated_change(f_first, split.keys, split.values, gate_first)
    d_first = torch.zeros_like(w_first, requires_grad=True)
    d_later = torch.zeros_like(w_later, requires_grad=True)
    wrap = Wrap(G, later, d_later, gate_later)
    remove = G.wrap_values(later, wrap, "two-layer-fit")
    try:
        opt = torch.optim.Adam(
            [
                {"params": [d_first], "lr": p.lr * float(w_first.std())},
                {"params": [d_later], "lr": p.lr * float(w_later.std())},
            ]
        )
        with frozen(G):
            for _ in range(p.steps):
                opt.zero_grad(set_to_none=True)
                g, k, s = fs.losses(G.resume(split.with_values(render_first(d_first))))
                (g + p.keep_weight * k + p.silent_weight * s).backward()
                opt.step()
        wrap.change = d_later.detach()
        fitted_first = d_first.detach()
        quiet = silent_ids(G, inputs.info.name, inputs.D)
        with torch.no_grad():
            splits = [
                G.split(G.latents(quiet[i : i + 64]), first) for i in range(0, len(quiet), 64)
            ]
        changes = {
            id(s): gated_change(G.layer_function(s), s.keys, s.values, gate_first) for s in splits
        }

        def values_for(s, k):
            wrap.scale = k
            return changes[id(s)](fitted_first * k)

        wrap.scale = 0.0
        cal = calibrate_share(G, splits, values_for, p.silent_budget, p.max_scale)
    finally:
        remove()
    share = cal.share
    common = dict(seconds=time.perf_counter() - t0, kept_share=share, silent_change=cal.silent)
    d1 = Delta(first, "two-layer", dense={G.weight_name(first): (fitted_first * share).cpu()},
               gate=gate_first, **common)
    d2 = Delta(later, "two-layer", dense={G.weight_name(later): (d_later.detach() * share).cpu()},
               gate=gate_later, **common)
    return d1, d2


def measure(G, spec, deltas, seeds):
    """The project's evaluation of ``deltas`` (applied together) on ``seeds``."""
    session = Rewriter(G, progress=False)
    dist = DistContext()
    shared = _shared(session, spec, seeds, 0.99, 32, False, False, dist)
    removes = [apply_gated(G, d) for d in deltas[1:]]
    try:
        ev = _measure(session, spec, "x", shared, seeds, 32, False, False, dist, delta=deltas[0])
    finally:
        for r in reversed(removes):
            r()
    return ev


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+", type=Path)
    ap.add_argument("--second", nargs="+", default=["next"], choices=["next", "prev"],
                    help="the other layer: the next one, the previous one, or both in turn")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "two-layer")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    G = load_model("dcgan-digiface64")
    names = [i.name for i in G.layers()]
    p = GatedParams()
    rows = []
    for path in args.specs:
        if "test" in path.parts:
            raise SystemExit("test edits are never used for choosing")
        spec = EditSpec.load(path)
        spec.solver, spec.solver_params = "gated", {}
        inputs = Rewriter(G, progress=False).prepare(spec)
        base = gated_fit(G, inputs, p)
        variants = {"gated": [base]}
        i = names.index(spec.layer)
        for which in args.second:
            j = i + 1 if which == "next" else i - 1
            if 0 < j < len(names):  # main.0 reads z: no key cells to gate
                variants[f"+{names[j]}"] = list(two_layer_fit(G, inputs, names[j], p))
        for label, deltas in variants.items():
            ev = measure(G, spec, deltas, SEEDS)
            m = ev.metrics
            peak = ev.response.reshape(len(SEEDS), -1).max(1)
            top = np.argsort(-peak, kind="stable")[:12]
            name = f"{spec.name}-{label.lstrip('+')}.png"
            grid = before_after_grid(ev.before[top], ev.after[top], [SEEDS[t] for t in top])
            grid.save(args.out / name)
            key = "structure transfer" if spec.kind == "copy-paste" else "erase removal"
            row = dict(edit=spec.name, layer=spec.layer, variant=label,
                       silent=m["silent change"], goal=m["goal reproduction"],
                       toward=m[key], share=deltas[0].kept_share,
                       seconds=sum(d.seconds for d in deltas[:1]))
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
