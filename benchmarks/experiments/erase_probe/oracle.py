"""Upper bound of the value-space removals: the change applied with an ORACLE gate (every cell
of the marked band open) on the by-eye object faces. Tells whether the direction part can
remove the object at all, independent of the gate."""
import sys
import numpy as np
import torch
torch.set_num_threads(1)
from PIL import Image
from common import Probe, EYE, SEEDS, OUT
from mechanisms import object_cells, quiet_donor_keys_values
from rewrite.utils.images import to_uint8
name = sys.argv[1]
p = Probe(name)
G = p.G
idx = p.eye_idx or p.top_idx
seeds = [SEEDS[i] for i in idx]
_, obj_v, diff = object_cells(p, 0.3)
X = diff.permute(0, 2, 3, 1)[obj_v]
d = X.mean(0)
_, S, Vh = torch.linalg.svd(X, full_matrices=False)
_, qv = quiet_donor_keys_values(p)
v_typ = qv.mean(0)
region = p.inputs.mask[0, 0] > 0  # value cells of the first marked region (all the same rect)
R = region.float()[None, None]
rows = [p.before[idx]]
labels = ["before"]
def render(fn):
    rm = G.wrap_values(p.layer, fn, "oracle")
    try:
        with torch.no_grad():
            return to_uint8(G(G.latents(seeds)))
    finally:
        rm()
for alpha in (1.0, 2.0, 4.0):
    rows.append(render(lambda k, v, a=alpha: (v + R * a * d[None, :, None, None]).clamp_min(0))); labels.append(f"steer a={alpha}")
for kk in (1, 4, 16, None):
    if kk is None:
        P = torch.eye(d.shape[0])
    else:
        U = Vh[:kk].T; P = U @ U.T
    rows.append(render(lambda k, v, P=P: (v + R * torch.einsum("cd,ndhw->nchw", P, v_typ[None] - v)).clamp_min(0))); labels.append(f"proj k={kk or 'all'}")
img = np.concatenate([np.concatenate(list(r), 1) for r in rows], 0)
Image.fromarray(img).save(OUT / f"{name}_oracle.png")
print(labels, seeds)
