"""Does the object gate open on held-out hat-wearers (tuning by-eye set) and stay shut elsewhere?"""
import sys
import torch
torch.set_num_threads(1)
from common import EYE, HATS_ALL, Probe, tuning_keys
from mechanisms import object_cells, object_gate
name = sys.argv[1]
p = Probe(name)
G = p.G
band = p.band_key_cells()
tk = tuning_keys(p)
eye = [s - 2000 for s in EYE.get(name, [])] or p.top_idx
others = [i for i in range(256) if i + 2000 not in HATS_ALL and i not in eye] if name == "remove-headwear" else [i for i in p.rand_idx if i not in eye]
for top in (0.3, 0.5):
    obj_k, _, _ = object_cells(p, top)
    for shrink in (0.1, 1.0, 10.0):
        for q in (0.5, 0.2):
            for pn in (False, True):
                gate, cover, leak, npos = object_gate(p, obj_k, q, pn, shrink)
                g = gate.open(tk)[:, 0]  # [256,h,w]
                ge = g[eye][:, band]
                go = g[others][:, band]
                gout = g[:, ~band]
                print(f"top {top} shrink {shrink} q {q} placeneg {pn}: eye-set band cells open>0.5 {float((ge>0.5).float().mean()):.3f} "
                      f"(samples with any {float((ge>0.5).any(1).float().mean()):.2f}); others band {float((go>0.5).float().mean()):.3f} "
                      f"(any {float((go>0.5).any(1).float().mean()):.2f}); outside band {float((gout>0.5).float().mean()):.4f}", flush=True)
