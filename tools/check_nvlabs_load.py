"""Check that an edited NVIDIA network pickle written by ``rewrite`` loads in NVIDIA's own
code and renders the edited model.

    python tools/check_nvlabs_load.py MODEL.pkl --nvlabs PATH/TO/stylegan3 [--spec SPEC.json]

``MODEL.pkl`` is a stylegan2-ada-pytorch or stylegan3 network pickle; ``--nvlabs`` a checkout
of the matching NVIDIA repository (stylegan3's also loads stylegan2-ada pickles). Without
``--spec`` the check makes a small copy-paste edit on a middle layer.

What it does:
1. loads the pickle with rewrite's restricted reader, applies the edit and writes
   ``edited.pkl`` (in ``--out``, default a temporary folder);
2. in a separate Python process that imports NVIDIA's checkout, loads the original and the
   edited pickle with ``legacy.load_network_pkl`` and renders the same latents with
   ``G_ema(z, c, noise_mode='const')`` (float32);
3. compares: NVIDIA's rendering of ``edited.pkl`` against rewrite's edited model (max |diff|
   relative to the image's scale, should be about 1e-6), and the change the edit makes
   (which must not be zero), and checks that the training copy ``G`` moved by the change of
   ``G_ema`` (to float32 rounding: 1e-6 of each tensor's scale).

Step 2 runs NVIDIA's loader, which executes the source text stored in the pickle: use it
on files you trust (rewrite itself never does). NVIDIA's code needs its own dependencies
(scipy, click, requests; stylegan3 also ``pkg_resources``); ``--python`` picks the
interpreter for it. Exit status 0 when everything agrees, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter
from rewrite.models import load_model

TOLERANCE = 1e-4      # of max |image|, as for the reference fixtures

# Run by NVIDIA's code in its own process: argv = checkout, original, edited, latents, out.
NVLABS_SIDE = r"""
import sys
import numpy as np
import torch
checkout, original, edited, latents, out = sys.argv[1:6]
sys.path.insert(0, checkout)
import legacy

def load(path):
    with open(path, 'rb') as f:
        data = legacy.load_network_pkl(f)
    assert {'G', 'D', 'G_ema'} <= set(data), sorted(data)
    return data

def render(G, z, c):
    kwargs = dict(noise_mode='const')
    if 'force_fp32' in G.synthesis.forward.__code__.co_varnames or hasattr(G.synthesis, 'b4'):
        kwargs['force_fp32'] = True
    with torch.no_grad():
        return G(z, c, **kwargs).numpy()

lat = np.load(latents)
z, c = torch.from_numpy(lat['z']), torch.from_numpy(lat['c'])
a, b = load(original), load(edited)
res = {'image_original': render(a['G_ema'], z, c), 'image_edited': render(b['G_ema'], z, c)}
worst = 0.0
old_ema = dict(a['G_ema'].state_dict()); new_ema = dict(b['G_ema'].state_dict())
old_g = dict(a['G'].state_dict()); new_g = dict(b['G'].state_dict())
for k in old_ema:
    moved_ema = new_ema[k].double() - old_ema[k].double()
    moved_g = new_g[k].double() - old_g[k].double()
    if moved_ema.numel():
        scale = max(1.0, float(old_g[k].abs().max()))
        worst = max(worst, float((moved_ema - moved_g).abs().max()) / scale)
res['g_vs_g_ema_change'] = np.array(worst)
res['class'] = np.array(type(b['G_ema']).__name__)
np.savez(out, **res)
"""


def default_spec(G, model: str) -> EditSpec:
    """A small copy-paste on the middle editable layer (as the family tests use)."""
    layers = [info.name for info in G.layers()]
    q = G.resolution // 4
    return EditSpec.from_json({
        "version": 1, "model": model, "layer": layers[len(layers) // 2], "kind": "copy-paste",
        "rank": 1, "stats": {"samples": 200},
        "copy": {"sample": 1, "mask": {"rect": [q, q, 2 * q, 2 * q]}},
        "paste": {"sample": 2, "mask": {"rect": [2 * q, 2 * q, 3 * q, 3 * q]}},
        "context": [{"sample": 3, "mask": {"rect": [q, q, 3 * q, 2 * q]}}]})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="an NVIDIA network pickle (.pkl)")
    ap.add_argument("--nvlabs", required=True,
                    help="checkout of NVlabs/stylegan3 or NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--spec", help="an edit spec for this model (default: a small copy-paste)")
    ap.add_argument("--out", help="folder for edited.pkl and the figures (default: temporary)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that runs NVIDIA's code (default: this one)")
    ap.add_argument("--samples", type=int, default=4, help="latents to render")
    args = ap.parse_args(argv)
    if not (Path(args.nvlabs) / "legacy.py").is_file():
        ap.error(f"--nvlabs {args.nvlabs}: no legacy.py there; give a checkout of "
                 "NVlabs/stylegan3 or NVlabs/stylegan2-ada-pytorch")
    out = Path(args.out or tempfile.mkdtemp(prefix="nvlabs-check-"))
    out.mkdir(parents=True, exist_ok=True)

    G = load_model(args.model)
    spec = EditSpec.load(args.spec) if args.spec else default_spec(G, args.model)
    session = Rewriter(G, progress=False)
    delta = session.apply(spec)
    edited = out / "edited.pkl"
    session.export_checkpoint(edited)
    z = G.latents(range(1000, 1000 + args.samples))
    c = G.labels(len(z))
    with torch.no_grad():
        ours = G(z).numpy()
    np.savez(out / "latents.npz", z=z.numpy(), c=c.numpy())

    run = subprocess.run([args.python, "-c", NVLABS_SIDE, str(Path(args.nvlabs).resolve()),
                          str(Path(args.model).resolve()), str(edited.resolve()),
                          str(out / "latents.npz"), str(out / "nvlabs.npz")],
                         check=False, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-4000:], file=sys.stderr)
        print("NVIDIA's code failed to load or render the pickles (see above)", file=sys.stderr)
        return 1
    nv = np.load(out / "nvlabs.npz")
    scale = float(np.abs(nv["image_edited"]).max())
    figures = {
        "model": str(args.model), "family": G.family, "layer": spec.layer,
        "goal_loss": [delta.loss_before, delta.loss],
        "nvlabs_class": str(nv["class"]),
        "edited_vs_ours": float(np.abs(nv["image_edited"] - ours).max()) / scale,
        "edit_change": float(np.abs(nv["image_edited"] - nv["image_original"]).mean()),
        "g_vs_g_ema_change": float(nv["g_vs_g_ema_change"]),
    }
    ok = (figures["edited_vs_ours"] <= TOLERANCE and figures["edit_change"] > 0
          and figures["g_vs_g_ema_change"] <= 1e-6)
    figures["ok"] = ok
    print(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
