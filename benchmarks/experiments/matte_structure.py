"""Why the instrument's toward_structure falls with the object matte (FRONTIER §18).

The same renders (a tuning edit by gated-pair at matte 0 and 0.3, strength 1, tuning samples
2000-2255) are measured by the instrument's own functions with the object's interior
weighted by all copied pixels (as the instrument does) or only by the object's pixels (the
matte at 0.3 against the faces' median at the paste box). A diagnostic: nothing is chosen.

Usage (from the project root)::

    python benchmarks/experiments/matte_structure.py benchmarks/edits/tune/red-hair.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from instrument_on_tuning import load_instrument  # noqa: E402

from rewrite.edit.seamless import object_matte  # noqa: E402

SIZE = 64


def toward_structure(eq, before, after, obj, weight, band) -> float:
    """The instrument's toward_structure of crops ``before``/``after`` [N, H, W, 3] of ``band``
    toward ``obj`` [h, w, 3], the object's interior weighted by ``weight`` [h, w]."""
    y0, y1, x0, x1 = band
    w = weight.copy()
    w[:2], w[-2:], w[:, :2], w[:, -2:] = 0, 0, 0, 0
    so = eq.structure(obj[None])[0]
    sb = eq.best_aligned_dist(eq.structure(before[:, y0:y1, x0:x1]), so, w[..., None])
    sa = eq.best_aligned_dist(eq.structure(after[:, y0:y1, x0:x1]), so, w[..., None])
    return float(np.mean((sb - sa) / np.maximum(sb, 1e-12)))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    eq = load_instrument()
    tmp = Path(tempfile.mkdtemp())
    for spec_path in map(Path, argv):
        spec0 = json.loads(spec_path.read_text())
        idx = sorted(set(eq.HELD_OUT) | {spec0["copy"]["sample"], spec0["paste"]["sample"]})
        index = {s: i for i, s in enumerate(idx)}
        held = np.array([index[i] for i in eq.HELD_OUT])
        for m in (0.0, 0.3):
            spec = dict(spec0, strength=1.0)
            spec["solver"] = {"name": "gated-pair", "params": {"matte": m}}
            path = tmp / f"{spec_path.stem}-matte-{m}.json"
            path.write_text(json.dumps(spec))
            b, a, _ = eq.render_before_after(path, idx)
            b, a = b.astype(np.float64) / 255, a.astype(np.float64) / 255
            res, extra = eq.measure(spec, b, a, index, SIZE)
            g = eq.paste_geometry(spec, SIZE)
            sy0, sy1, sx0, sx1 = g["src"]
            ty0, ty1, tx0, tx1 = g["dst"]
            obj = b[index[spec["copy"]["sample"]], sy0:sy1, sx0:sx1]
            typical = np.median(b[held][:, ty0:ty1, tx0:tx1], axis=0)
            matte = object_matte(
                torch.tensor(obj).permute(2, 0, 1) * 2 - 1,
                torch.tensor(typical).permute(2, 0, 1) * 2 - 1,
                0.3,
            ).numpy()
            top = extra["top_rows"]
            band = eq.target_band(spec, SIZE)
            whole = toward_structure(eq, b[held][top], a[held][top], obj, g["alpha"], band)
            own = toward_structure(eq, b[held][top], a[held][top], obj, g["alpha"] * matte, band)
            print(
                f"{spec0['name']} matte {m}: instrument toward_structure "
                f"{res['toward_structure']:.3f} (recomputed {whole:.3f}); on the object's pixels "
                f"only {own:.3f} (they are {float(matte.mean()):.2f} of the box)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
