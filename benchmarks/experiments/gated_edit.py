"""Experiment (issue 27, "gated edits"): is a full-capacity weight change confined by a gate
on the key more local at the same efficacy than example-fit's preserve terms?

Not a method of the package: the gated model (values ``v0 + g(k) (f(k, W0+ΔW) - v0)``,
``g`` a sigmoid of a linear read-out of the key) has no weight-only form, so it is rendered
here through the layer split. The gate's direction is the LDA direction separating the key
cells inside the rule's band on the examples from the cells outside it and from the silent
samples; ΔW is fitted like example-fit's (same examples, goals, preserve terms) but without
the layer-space collateral term (the gate is what keeps it local).

Judged on the TUNING samples 2000-2255 only: the change on the 128 samples where the rule
responds least (a silent proxy, mean |Δpixel| on a 0-1 scale), and a grid of the 8 samples
where it responds most, before / example-fit / gated. Usage::

    python benchmarks/experiments/gated_edit.py benchmarks/edits/tune/add-cap.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.example_fit import (ExampleFitParams, _goals, _pool_roles,  # noqa: E402
                                     rule_response)
from rewrite.edit.masks import layer_window, window_coverage  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.models.base import frozen  # noqa: E402

TUNING = list(range(2000, 2256))


def lda_gate(keys, inside, silent_n, shrink=0.1, quantile=0.2, softness=0.25):
    """(u, b, tau): gate = sigmoid((u.k - b) / tau) from key cells [N, C, h, w]; ``inside``
    bool [h, w] (band cells); positives: band cells of the first N - silent_n samples;
    negatives: cells outside the band, and every cell of the last silent_n samples."""
    n, c = keys.shape[:2]
    cells = keys.permute(0, 2, 3, 1)                                   # [N, h, w, C]
    pos = cells[: n - silent_n][:, inside].reshape(-1, c).double()
    neg = torch.cat([cells[:, ~inside].reshape(-1, c),
                     cells[n - silent_n:].reshape(-1, c)]).double()
    cov = 0.5 * (torch.cov(pos.T) + torch.cov(neg.T))
    cov = cov + shrink * torch.eye(c, dtype=cov.dtype) * cov.diagonal().mean()
    u = torch.linalg.solve(cov, pos.mean(0) - neg.mean(0))
    u = u / u.norm()
    sp, sn = pos @ u, neg @ u
    b = float(torch.quantile(sp, quantile))     # on for (1 - quantile) of the band cells
    tau = float(softness * torch.cat([sp, sn]).std())
    cover = float((sp > b).double().mean())
    leak = float((sn > b).double().mean())
    return u.float(), b, tau, cover, leak


def gate_map(keys, u, b, tau, size):
    g = torch.sigmoid((torch.einsum("c,nchw->nhw", u, keys) - b) / tau)[:, None]
    return F.interpolate(g, size=size, mode="nearest")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--quantile", type=float, default=0.2,
                    help="the gate is off on this share of the examples' band cells")
    ap.add_argument("--softness", type=float, default=0.25)
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "gated")
    args = ap.parse_args(argv)
    if "test" in args.spec.parts:
        raise SystemExit("the held-out test edits are never used for choosing")
    d = json.loads(args.spec.read_text())
    for k in ("solver", "rank", "direction"):
        d.pop(k, None)
    spec = EditSpec.from_json(d)
    G = load_model(spec.model)
    session = Rewriter(G, progress=False)
    inputs = session.prepare(spec)
    baseline = session.compute(spec, inputs)                          # example-fit, default
    p = ExampleFitParams()
    examples, silent, keep = _pool_roles(G, inputs, p)
    own = inputs.goal_samples
    examples = list(dict.fromkeys(list(own) + list(inputs.context_samples) + examples))
    samples = examples + silent + keep
    layer = spec.layer
    with torch.no_grad():
        split = G.split(G.latents(samples), layer)
        f = G.layer_function(split)
        original = G.resume(split)
    n_ex, n_sil = len(examples), len(silent)
    goal, where = _goals(G, inputs, examples, original[:n_ex])
    info = inputs.info
    inside = torch.as_tensor(window_coverage(inputs.band.float().numpy(),
                                             layer_window(info, "key")) > 0.5)
    ks = split.keys[: n_ex + n_sil]
    u, b, tau, cover, leak = lda_gate(ks, inside, n_sil, quantile=args.quantile,
                                      softness=args.softness)
    print(f"gate: covers {cover:.2f} of the examples' band cells, fires on {leak:.3f} of the "
          "outside / silent cells")
    keys, w0, v0 = split.keys, f.weight.detach(), split.values
    gate = gate_map(keys, u, b, tau, v0.shape[-2:])
    outside = (~inputs.band).float()[None, None]
    delta = torch.zeros_like(w0, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=p.lr * float(w0.std()))
    with frozen(G):
        for _ in range(args.steps):
            opt.zero_grad(set_to_none=True)
            vals = v0 + gate * (f.forward(keys, w0 + delta) - v0)
            img = G.resume(split.with_values(vals))
            err = (img[:n_ex] - goal).abs().mean(1, keepdim=True)
            g_term = (err * where).sum() / where.sum().clamp_min(1)
            change = (img - original).abs().mean(1, keepdim=True)
            kept = torch.cat([change[:n_ex], change[n_ex + n_sil:]])
            k_term = (kept * outside).sum() / (outside.sum() * kept.shape[0])
            s_term = change[n_ex:n_ex + n_sil].mean()
            (g_term + p.keep_weight * k_term + p.silent_weight * s_term).backward()
            opt.step()
    dW = delta.detach()
    # Judge on the tuning samples.
    with torch.no_grad():
        tsplit = G.split(G.latents(TUNING), layer)
        resp = rule_response(G, layer, tsplit.keys, inputs.D, inputs.band)
        order = torch.argsort(resp, descending=True).tolist()
        before = G.resume(tsplit)
        tg = gate_map(tsplit.keys, u, b, tau, tsplit.values.shape[-2:])
        gated = G.resume(tsplit.with_values(
            tsplit.values + tg * (f.forward(tsplit.keys, w0 + dW) - tsplit.values)))
        session.apply(baseline)
        fitted = G(G.latents(TUNING))
        session.undo()
    quiet, top = order[-128:], order[:8]
    for name, after in (("example-fit", fitted), ("gated", gated)):
        d_all = (after - before).abs().mean((1, 2, 3)) / 2
        print(f"{name:12s} change on the 128 least-responding: {float(d_all[quiet].mean()):.4f}"
              f"  on the 8 most-responding: {float(d_all[top].mean()):.4f}")
    tile = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).byte().permute(1, 2, 0).numpy()  # noqa
    rows = [np.concatenate([tile(t[i]) for i in top], 1) for t in (before, fitted, gated)]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{spec.name}-q{args.quantile:g}-s{args.softness:g}.png"
    grid = np.concatenate(rows, 0)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)
    print(f"wrote {path} (rows: before, example-fit, gated)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
