"""Shared pieces of the erase probe (one-off experiment; tuning erases and samples only).

Loads a tuning erase spec, picks the judged faces among the TUNING samples 2000-2255, and
measures a value wrap ``fn(keys, values) -> values`` (or a project Delta) the way the project
does: silent change (rewrite.metrics.evaluate: whole-image mean |Δpixel| on the tuning
samples where the rule never fires), erase removal on the matched faces, and before/after
grids of the 12 best-matched and 12 random tuning faces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from rewrite.edit import EditSpec, Rewriter  # noqa: E402
from rewrite.edit.masks import layer_window, window_coverage  # noqa: E402
from rewrite.metrics.before_after import before_after_grid  # noqa: E402
from rewrite.metrics.evaluate import variant  # noqa: E402
from rewrite.metrics.firing import firing_mask, key_response, quantile_threshold  # noqa: E402
from rewrite.metrics.pixels import mean_change  # noqa: E402
from rewrite.metrics.transfer import erase_removal, removed  # noqa: E402
from rewrite.models import load_model  # noqa: E402
from rewrite.utils.images import save_png, to_uint8  # noqa: E402

TUNE = ROOT / "benchmarks" / "edits" / "tune"
SPECS = {"remove-headwear": TUNE / "remove-headwear.json", "remove-glasses": TUNE / "remove-glasses.json"}
SEEDS = list(range(2000, 2256))
OUT = ROOT / "outputs" / "erase-probe"
EYE = {"remove-headwear": [2004, 2006, 2013, 2020, 2041, 2043, 2048, 2058, 2066, 2076, 2087, 2241]}


class Probe:
    def __init__(self, name: str):
        self.name = name
        self.G = load_model("dcgan-digiface64")
        self.spec = variant(EditSpec.load(SPECS[name]), "gated")
        self.session = Rewriter(self.G, progress=False)
        self.inputs = self.session.prepare(self.spec)
        self.layer = self.spec.layer
        G = self.G
        self.response = key_response(G, self.layer, self.inputs.D, SEEDS)  # [256, h, w]
        self.fire = firing_mask(
            self.response, quantile_threshold(self.response), G.resolution
        ).numpy()
        self.silent = ~self.fire.any((1, 2))
        peak = self.response.flatten(1).amax(1)
        order = torch.argsort(peak, descending=True, stable=True)[:12].tolist()
        self.top_idx = order
        gen = torch.Generator().manual_seed(12345)
        self.rand_idx = sorted(torch.randperm(len(SEEDS), generator=gen)[:12].tolist())
        # by-eye hat-wearers among the tuning samples (picked from the contact sheet), since
        # the rule's response picks mostly bare heads for remove-headwear
        self.eye_idx = [s - 2000 for s in EYE.get(name, [])]
        with torch.no_grad():
            self.before = self.render()

    def render(self) -> np.ndarray:
        with torch.no_grad():
            out = [to_uint8(self.G(self.G.latents(SEEDS[s : s + 64]))) for s in range(0, 256, 64)]
        return np.concatenate(out)

    def measure(self, tag: str, wrap=None, delta=None, extra: dict | None = None) -> dict:
        """Render the 256 tuning samples with the edit on; figures and grids."""
        G = self.G
        if wrap is not None:
            remove = G.wrap_values(self.layer, wrap, f"probe:{tag}")
        else:
            self.session.apply(delta)
            remove = self.session.undo
        try:
            after = self.render()
        finally:
            remove()
        b, a = self.before.astype(np.float64) / 255, after.astype(np.float64) / 255
        s = self.silent
        silent = mean_change(b[s], a[s], ~self.fire[s])
        top = self.top_idx
        rem = erase_removal(b[top], a[top], self.fire[top])
        firing = ~s
        rem_all = erase_removal(b[firing], a[firing], self.fire[firing])
        res = {
            "edit": self.name,
            "tag": tag,
            "silent change (tuning, project def)": silent,
            "erase removal, 12 matched (mean)": float(np.nanmean(rem)),
            "removed rate, 12 matched": removed(rem),
            "erase removal, all firing (mean)": float(np.nanmean(rem_all)),
            "change on 12 matched": float(np.abs(a[top] - b[top]).mean()),
            "change on 12 random": float(np.abs(a[self.rand_idx] - b[self.rand_idx]).mean()),
            **(extra or {}),
        }
        if self.eye_idx:
            e = self.eye_idx
            region = np.zeros((len(e), 64, 64), bool)
            region[:, :24, :] = True  # the spec's hat rect [0, 0, 64, 24]
            rem_e = erase_removal(b[e], a[e], region)
            res["erase removal, 12 by-eye hats (hat rect)"] = float(np.nanmean(rem_e))
            res["change on 12 by-eye hats"] = float(np.abs(a[e] - b[e]).mean())
        for which, idx in (("matched", top), ("random", self.rand_idx), ("eye", self.eye_idx)):
            if not idx:
                continue
            path = OUT / f"{self.name}_{tag}_{which}.png"
            save_png(
                before_after_grid(self.before[idx], after[idx], [SEEDS[i] for i in idx], cols=12),
                path,
            )
            res[f"png {which}"] = str(path.relative_to(ROOT))
        with open(OUT / "results.jsonl", "a") as fh:
            fh.write(json.dumps(res) + "\n")
        print(json.dumps(res), flush=True)
        return res

    # -- helpers for the mechanisms ------------------------------------------
    def band_key_cells(self) -> torch.Tensor:
        inside = window_coverage(
            self.inputs.band.float().cpu().numpy(), layer_window(self.inputs.info, "key")
        ) > 0.5
        return torch.as_tensor(inside)

    def own_diff(self):
        """The user's examples: (keys [6,Ci,h,w], values [6,Co,H,W], donor goal - values,
        value region bool [6,H,W])."""
        inp = self.inputs
        n = len(inp.context_samples)
        keys = inp.split.keys[:n]
        values = inp.split.values[:n]
        diff = inp.goal[:n] - values
        region = inp.mask[:n, 0] > 0
        return keys, values, diff, region


#: Every hat-wearer among the tuning samples 2000-2255 (picked by eye from the contact sheet).
HATS_ALL = [2004, 2006, 2013, 2016, 2019, 2020, 2039, 2040, 2041, 2043, 2047, 2048, 2058, 2059,
            2066, 2068, 2076, 2078, 2087, 2093, 2108, 2126, 2175, 2177, 2241, 2245]


def tuning_keys(p: "Probe") -> torch.Tensor:
    """The keys of ``p``'s layer for the tuning samples 2000-2255, [256, C, h, w]."""
    with torch.no_grad():
        return torch.cat([p.G.split(p.G.latents(SEEDS[s:s + 64]), p.layer).keys
                          for s in range(0, 256, 64)])
