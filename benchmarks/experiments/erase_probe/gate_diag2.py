"""Read-out separation of the object gate: held-out hat-wearers (tuning by-eye set) vs other tuning faces."""
import sys
import torch
torch.set_num_threads(1)
from common import EYE, HATS_ALL, Probe, tuning_keys
from mechanisms import object_cells, object_gate, quiet_donor_keys_values
name = sys.argv[1]
p = Probe(name)
G = p.G
band = p.band_key_cells()
tk = tuning_keys(p)
eye = [s - 2000 for s in EYE[name]]
others = [i for i in range(256) if i + 2000 not in HATS_ALL]
qk, _ = quiet_donor_keys_values(p)
def auc(a, b):
    return float((a[:, None] > b[None]).float().mean())
for top in (0.3, 0.5, 1.0):
    obj_k, _, _ = object_cells(p, top) if top < 1 else (None, None, None)
    if top == 1.0:
        obj_k = band[None].expand(6, -1, -1).clone()
    for shrink in (0.1, 1.0, 10.0, 100.0):
        for pn in (False, True):
            gate, cover, leak, npos = object_gate(p, obj_k, 0.5, pn, shrink)
            r = torch.einsum("c,nchw->nhw", gate.u, tk)
            rq = torch.einsum("c,nchw->nhw", gate.u, qk)[:, band].flatten()
            se = r[eye][:, band].amax(1); so = r[others][:, band].amax(1)
            t99 = torch.quantile(rq, 0.99); t95 = torch.quantile(rq, 0.95)
            print(f"top {top} shrink {shrink} placeneg {pn}: AUC(max band readout, hats vs non-hats) {auc(se, so):.2f}; "
                  f"hats over quiet-place q99 {float((se>t99).float().mean()):.2f} non-hats {float((so>t99).float().mean()):.2f}; "
                  f"q95 {float((se>t95).float().mean()):.2f} / {float((so>t95).float().mean()):.2f}", flush=True)
# the rule's response D for comparison
r = torch.einsum("rc,nchw->nrhw", p.inputs.D.to(tk), tk).norm(dim=1)
print("D response AUC", auc(r[eye][:, band].amax(1), r[others][:, band].amax(1)))
