"""Erase mechanisms probed against the default `gated` (tuning erases, samples 2000-2255).

  steer   (1): values += g(k) * alpha * d, d = mean (donor goal - values) over the object's
               value cells of the user's six examples; gate fitted on object key cells.
  gatedobj(2): the `gated` fit unchanged, but its gate's positives are the object key cells
               of the user's examples (largest donor difference), not the whole band.
  proj    (3): values -= g(k) * alpha * P_k (values - v_typical), P_k onto the top-k
               principal directions of the donor difference at the object cells; v_typical
               the mean values per cell over typical faces (donor-pool quiet half).
alpha (the kept share) is the largest whose silent change on the project's calibration
samples stays <= 0.008 (rewrite.edit.calibrate), as gated's share is chosen.

Usage: python mechanisms.py EDIT MECH [--top 0.3] [--k 4] [--place-neg] [--tag T]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)

from common import Probe  # noqa: E402
from rewrite.edit.calibrate import calibrate_share, silent_splits  # noqa: E402
from rewrite.edit.example_fit import _pool_roles, fit_samples, fit_weight_change, pixel_fit_delta  # noqa: E402
from rewrite.edit.gated_fit import GATE_AT, GatedParams  # noqa: E402
from rewrite.edit.goals import DONOR_POOL  # noqa: E402
from rewrite.memory.gate import fit_gate, gated_change  # noqa: E402


def object_cells(p: Probe, top: float):
    """Object key cells [6,h,w] and object value cells [6,H,W] of the user's examples: the
    ``top`` share of the marked cells with the largest |donor goal - values|."""
    keys, values, diff, region = p.own_diff()
    mag = diff.norm(dim=1) * region  # [6,H,W]
    thr_v = torch.quantile(mag[region], 1 - top)
    obj_v = (mag > thr_v) & region
    f = values.shape[-1] // keys.shape[-1]
    kmag = F.avg_pool2d(mag[:, None], f)[:, 0]  # value cells 2i, 2i+1 sit on key cell i
    band = p.band_key_cells()
    thr_k = torch.quantile(kmag[:, band].flatten(), 1 - top)
    obj_k = (kmag > thr_k) & band[None]
    return obj_k, obj_v, diff


def quiet_donor_keys_values(p: Probe, n: int = 256):
    """Keys and values of the donor pool's first ``n`` samples, the half responding least
    to the rule inside the band (typical faces without the object)."""
    G, layer = p.G, p.layer
    with torch.no_grad():
        split = G.split(G.latents(list(DONOR_POOL)[:n]), layer)
    band = p.band_key_cells()
    resp = torch.einsum("rc,nchw->nrhw", p.inputs.D.to(split.keys), split.keys).norm(dim=1)
    score = resp[:, band].amax(1)
    quiet = score <= score.median()
    return split.keys[quiet], split.values[quiet]


def object_gate(p: Probe, obj_k, quantile: float, place_neg: bool, shrink: float, softness=0.25,
                bneg: float | None = None):
    keys = p.own_diff()[0]
    c = keys.shape[1]
    cells = keys.permute(0, 2, 3, 1)
    pos = cells[obj_k].reshape(-1, c)
    _, silent, _ = _pool_roles(p.G, p.inputs, GatedParams())
    with torch.no_grad():
        sk = p.G.split(p.G.latents(silent), p.layer).keys
    negs = [cells[~obj_k].reshape(-1, c), sk.permute(0, 2, 3, 1).reshape(-1, c)]
    if place_neg:
        qk, _ = quiet_donor_keys_values(p)
        band = p.band_key_cells()
        negs.append(qk.permute(0, 2, 3, 1)[:, band].reshape(-1, c))
    neg = torch.cat(negs)
    gate, cover, leak = fit_gate(pos, neg, quantile, softness, shrink, "values")
    if bneg is not None:  # threshold from typical faces at the same place, not the positives
        qk, _ = quiet_donor_keys_values(p)
        band = p.band_key_cells()
        rq = torch.einsum("c,nchw->nhw", gate.u, qk)[:, band].flatten()
        gate.b = float(torch.quantile(rq, bneg))
        cover = float(((pos @ gate.u) > gate.b).float().mean())
        leak = float(((neg @ gate.u) > gate.b).float().mean())
    print(f"gate: {pos.shape[0]} positives, {neg.shape[0]} negatives, cover {cover:.2f} leak {leak:.3f}")
    return gate, cover, leak, pos.shape[0]


def gate_on_values(gate, keys, size):
    return F.interpolate(gate.open(keys), size=size, mode="bilinear", align_corners=False)


class Steer:
    """values -> relu(values + g * alpha * change(values))."""

    def __init__(self, gate, mode, d=None, P=None, v_typ=None, alpha=1.0):
        self.gate, self.mode, self.d, self.P, self.v_typ, self.alpha = gate, mode, d, P, v_typ, alpha

    def change(self, values):
        if self.mode == "steer":
            return self.d[None, :, None, None].to(values).expand_as(values)
        # proj: move the component along the object directions to the typical face's
        dev = self.v_typ[None].to(values) - values  # [N,C,H,W]
        return torch.einsum("cd,ndhw->nchw", self.P.to(values), dev)

    def values(self, keys, values, alpha):
        g = gate_on_values(self.gate, keys, tuple(values.shape[-2:]))
        return (values + g * alpha * self.change(values)).clamp_min(0)

    def __call__(self, keys, values):
        return self.values(keys, values, self.alpha)


def run_steer(p: Probe, a):
    t0 = time.perf_counter()
    obj_k, obj_v, diff = object_cells(p, a.top)
    gate, cover, leak, npos = object_gate(p, obj_k, a.quantile, a.place_neg, a.shrink, bneg=a.bneg)
    X = diff.permute(0, 2, 3, 1)[obj_v]  # [M, C]
    d = X.mean(0)
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    U = Vh[: a.k].T  # [C, k]
    P = U @ U.T
    _, qv = quiet_donor_keys_values(p)
    v_typ = qv.mean(0)
    fn = Steer(gate, a.mech, d=d, P=P, v_typ=v_typ)
    splits = silent_splits(p.G, p.layer, p.inputs.D)
    c = calibrate_share(p.G, splits, lambda s, k: fn.values(s.keys, s.values, k), 0.008, a.max_share)
    fn.alpha = c.share
    print(f"{a.mech}: kept share {c.share:.3f}, calibration silent {c.silent:.4f}, |d| {d.norm():.3f}, "
          f"sv energy top{a.k} {float((S[:a.k]**2).sum()/(S**2).sum()):.2f}")
    extra = dict(kept_share=c.share, cal_silent=c.silent, gate_cover=cover, gate_leak=leak,
                 positives=npos, fit_s=time.perf_counter() - t0, args=vars(a))
    p.measure(a.tag, wrap=fn, extra=extra)


def run_gatedobj(p: Probe, a):
    """gated_fit (rewrite/edit/gated_fit.py) with the gate's positives replaced."""
    t0 = time.perf_counter()
    G, inputs = p.G, p.inputs
    prm = GatedParams(quantile=a.quantile)
    fs = fit_samples(G, inputs, prm)
    split, f = fs.split, fs.f
    keys = split.keys.detach()
    obj_k, _, _ = object_cells(p, a.top)
    n_own = obj_k.shape[0]
    own_keys = p.own_diff()[0]
    assert torch.allclose(keys[:n_own], own_keys, atol=1e-4), "own examples lead fit_samples"
    inside = p.band_key_cells().to(keys.device)
    c_in = keys.shape[1]
    cells = keys.permute(0, 2, 3, 1)
    positives = cells[:n_own][obj_k].reshape(-1, c_in)
    negatives = torch.cat([
        cells[:n_own][~obj_k].reshape(-1, c_in),  # the user's non-object cells, band too
        cells[n_own:, ~inside].reshape(-1, c_in),  # (pool examples' band cells: unknown)
        cells[fs.n_ex : fs.n_ex + fs.n_sil].reshape(-1, c_in),
    ])
    if a.place_neg:
        qk, _ = quiet_donor_keys_values(p)
        negatives = torch.cat([negatives, qk.permute(0, 2, 3, 1)[:, inside.cpu()].reshape(-1, c_in).to(negatives)])
    gate, cover, leak = fit_gate(positives, negatives, prm.quantile, prm.softness, a.shrink, GATE_AT)
    if a.bneg is not None:
        qk, _ = quiet_donor_keys_values(p)
        rq = torch.einsum("c,nchw->nhw", gate.u, qk)[:, inside.cpu()].flatten()
        gate.b = float(torch.quantile(rq, a.bneg))
        cover = float(((positives @ gate.u) > gate.b).float().mean())
        leak = float(((negatives @ gate.u) > gate.b).float().mean())
    print(f"gate: {positives.shape[0]} pos, {negatives.shape[0]} neg, cover {cover:.2f}, leak {leak:.3f}")
    w0 = f.weight.detach()
    render = gated_change(f, keys, split.values.detach(), gate)

    def losses(d):
        return fs.losses(G.resume(split.with_values(render(d))))

    fitted, before = fit_weight_change(G, w0, losses, prm)
    splits = silent_splits(G, p.layer, inputs.D)
    changes = {id(s): gated_change(G.layer_function(s), s.keys, s.values, gate) for s in splits}
    c = calibrate_share(G, splits, lambda s, k: changes[id(s)](fitted * k), prm.silent_budget, prm.max_scale)
    delta = pixel_fit_delta(G, p.layer, "gated", fitted * c.share, losses, before, t0, prm.steps,
                            gate=gate, kept_share=c.share, silent_change=c.silent)
    print(f"gatedobj: kept share {c.share:.3f} cal silent {c.silent:.4f} loss {before:.3f}->{delta.loss:.3f}")
    p.measure(a.tag, delta=delta, extra=dict(kept_share=c.share, cal_silent=c.silent, gate_cover=cover,
                                             gate_leak=leak, fit_s=time.perf_counter() - t0, args=vars(a)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("edit")
    ap.add_argument("mech", choices=["steer", "proj", "gatedobj"])
    ap.add_argument("--top", type=float, default=0.3)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--quantile", type=float, default=0.5)
    ap.add_argument("--shrink", type=float, default=0.1)
    ap.add_argument("--max-share", type=float, default=None)
    ap.add_argument("--place-neg", action="store_true")
    ap.add_argument("--bneg", type=float, default=None,
                    help="gate threshold: this quantile of typical faces' read-out at the band")
    ap.add_argument("--tag", default=None)
    a = ap.parse_args()
    if a.max_share is None:
        a.max_share = {"steer": 3.0, "proj": 1.5, "gatedobj": 1.25}[a.mech]
    a.tag = a.tag or a.mech
    p = Probe(a.edit)
    (run_gatedobj if a.mech == "gatedobj" else run_steer)(p, a)


if __name__ == "__main__":
    main()
