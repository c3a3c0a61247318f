"""Predicted collateral against measured silent change: does ``Delta.collateral`` say in
advance how much the images where the rule never fires will change?

Every edit of ``examples/`` and ``benchmarks/edits/`` (``tune/`` and ``test/``) on the face
model is solved by the methods that report a predicted collateral
``tr(ΔW C ΔWᵀ) / tr(W0 C W0ᵀ)`` (times the strength s²): ``least-collateral`` r4 at a
spread of budgets, ``closed-form+refine`` r1, ``adam`` r1 and ``finetune-layer`` (the dense
change's collateral). ``finetune-all`` and ``dissect-erase`` have no prediction and are
left out. Each is judged on held-out samples
(:func:`rewrite.metrics.evaluate.compare_methods`); the ``silent change`` is the mean
absolute pixel change (0-1 scale) of the samples where the rule does not fire at all.

The fit is a least-squares line of log10(silent change) on log10(predicted collateral)
over the distinct points (a budget that does not bind gives the same edit twice; it is
counted once), with the Spearman rank correlation. The predicted collateral at which the
line crosses the ``--visible`` silent change is what ``COLLATERAL_WARN`` in
``rewrite/metrics/before_after.py`` is set to (rounded).

Writes to ``--out`` (default ``outputs/collateral-benchmark``):

* ``metrics.json`` / ``table.md``: one row per edit and method (predicted collateral,
  silent change, efficacy, goal reproduction, ...), then the fit;
* ``scatter.png``: silent change against predicted collateral (log-log), coloured by
  method family, with the fitted line and the visible level (copied to
  ``docs/collateral-scatter.png`` unless ``--no-docs``);
* ``silent-<edit>.png``: the variant of each edit whose silent change is nearest the
  visible level, on 8 silent samples: before, after, and |after - before| x 5.

Usage::

    python benchmarks/collateral_benchmark.py                        # all edits (44 min on 2 busy cores)
    python benchmarks/collateral_benchmark.py --edits add-cap --seeds 2000-2063
    python benchmarks/collateral_benchmark.py --replot               # fit and plot metrics.json again
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import table  # noqa: E402

#: Least-collateral budgets compared (the default is 0.01).
BUDGETS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
#: Silent change (mean absolute change, 0-1 scale) taken as "visibly changed": 0.02 is
#: about 5 grey levels of 255 on every pixel of an image where the rule never fires.
VISIBLE = 0.02
COLUMNS = ["edit", "method", "predicted collateral", "silent change", "efficacy",
           "matched efficacy", "goal reproduction", "firing samples", "seconds"]
FAMILIES = {"least-collateral": (31, 119, 180), "closed-form+refine": (255, 127, 14),
            "adam": (44, 160, 44), "finetune-layer": (214, 39, 40)}


def spec_paths(names: list[str] | None) -> list[Path]:
    paths = (sorted((ROOT / "examples").glob("*.json"))
             + sorted((ROOT / "benchmarks" / "edits").rglob("*.json")))
    if names:
        paths = [p for p in paths if p.stem in names]
    return paths


def variants(spec, budgets) -> list:
    """The methods with a predicted collateral (see the module docstring)."""
    from rewrite.metrics.evaluate import variant
    return ([variant(spec, "least-collateral", 4, {"budget": b}) for b in budgets]
            + [variant(spec, "closed-form+refine", 1), variant(spec, "adam", 1),
               variant(spec, "finetune-layer")])


# ---------------------------------------------------------------------------- the fit

def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their mean rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = ranks(np.asarray(x, float)), ranks(np.asarray(y, float))
    return float(np.corrcoef(rx, ry)[0, 1])


def distinct(rows: list[dict]) -> list[dict]:
    """Rows with a usable prediction and measurement, one per edit and distinct edit
    (same edit, same predicted collateral and silent change to 6 digits: counted once)."""
    seen, out = set(), []
    for r in rows:
        p, s = r.get("predicted collateral"), r.get("silent change")
        if not (isinstance(p, float) and isinstance(s, float) and p > 0 and s > 0
                and math.isfinite(p) and math.isfinite(s)):
            continue
        key = (r["edit"], f"{p:.6g}", f"{s:.6g}")
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def fit(rows: list[dict], visible: float) -> dict:
    """log10(silent) = intercept + slope * log10(predicted); Spearman; the crossing."""
    pts = distinct(rows)
    x = np.log10([r["predicted collateral"] for r in pts])
    y = np.log10([r["silent change"] for r in pts])
    if len(pts) < 3:
        return {"points": len(pts)}
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    crossing = 10 ** ((math.log10(visible) - intercept) / slope)
    return {"points": len(pts), "slope": float(slope), "intercept": float(intercept),
            "residual sd (log10)": float(resid.std(ddof=2)) if len(pts) > 2 else float("nan"),
            "pearson r (log-log)": float(np.corrcoef(x, y)[0, 1]),
            "spearman": spearman(x, y), "visible silent change": visible,
            "predicted collateral at visible": float(crossing)}


def warn_check(rows: list[dict], threshold: float, visible: float) -> dict:
    """How a warning at ``threshold`` sorts the distinct variants by their measured change."""
    pts = distinct(rows)
    warned = np.array([r["predicted collateral"] > threshold for r in pts])
    seen = np.array([r["silent change"] > visible for r in pts])
    return {"threshold": threshold, "visible and warned": int((warned & seen).sum()),
            "visible, not warned": int((~warned & seen).sum()),
            "warned, not visible": int((warned & ~seen).sum()),
            "neither": int((~warned & ~seen).sum())}


# ---------------------------------------------------------------------------- the plot

def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                      # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _dashed(draw, a, b, fill, dash=6, width=1):
    (x0, y0), (x1, y1) = a, b
    n = max(1, int(math.hypot(x1 - x0, y1 - y0) // dash))
    for i in range(0, n, 2):
        t0, t1 = i / n, min(1.0, (i + 1) / n)
        draw.line([(x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0),
                   (x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1)], fill=fill, width=width)


def scatter(rows: list[dict], result: dict, threshold: float | None, path: Path) -> None:
    """Silent change against predicted collateral, log-log, with Pillow only."""
    W, H = 760, 520
    left, right, top, bottom = 78, 200, 34, 62
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f, fs = _font(13), _font(11)
    pts = [r for r in rows if isinstance(r.get("predicted collateral"), float)
           and isinstance(r.get("silent change"), float)
           and r["predicted collateral"] > 0 and r["silent change"] > 0]
    xs = np.log10([r["predicted collateral"] for r in pts])
    ys = np.log10([r["silent change"] for r in pts])
    xlo, xhi = math.floor(min(xs.min(), -3) * 2) / 2, math.ceil(max(xs.max(), 0) * 2) / 2
    ylo, yhi = math.floor(min(ys.min(), -2.5) * 2) / 2, math.ceil(max(ys.max(), -1) * 2) / 2
    pw, ph = W - left - right, H - top - bottom

    def px(lx):
        return left + (lx - xlo) / (xhi - xlo) * pw

    def py(ly):
        return top + (yhi - ly) / (yhi - ylo) * ph

    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    for lx in np.arange(math.ceil(xlo), math.floor(xhi) + 1):
        for m in (1, 3):
            v = math.log10(m) + lx
            if xlo <= v <= xhi:
                x = px(v)
                d.line([(x, top), (x, top + ph)], fill=(225, 225, 225) if m == 3 else (200, 200, 200))
                d.line([(x, top + ph), (x, top + ph + 4)], fill=(0, 0, 0))
                t = f"{m * 10.0 ** lx:g}"
                d.text((x - d.textlength(t, font=fs) / 2, top + ph + 6), t, fill=(0, 0, 0), font=fs)
    for ly in np.arange(math.ceil(ylo), math.floor(yhi) + 1):
        for m in (1, 3):
            v = math.log10(m) + ly
            if ylo <= v <= yhi:
                y = py(v)
                d.line([(left, y), (left + pw, y)], fill=(225, 225, 225) if m == 3 else (200, 200, 200))
                d.line([(left - 4, y), (left, y)], fill=(0, 0, 0))
                t = f"{m * 10.0 ** ly:g}"
                d.text((left - 7 - d.textlength(t, font=fs), y - 7), t, fill=(0, 0, 0), font=fs)
    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    xl = "predicted collateral  s^2 tr(dW C dW^T) / tr(W0 C W0^T)  (log)"
    d.text((left + pw / 2 - d.textlength(xl, font=f) / 2, H - 26), xl, fill=(0, 0, 0), font=f)
    yl = "measured silent change (mean |pixel change|, 0-1, log)"
    lab = Image.new("RGB", (int(d.textlength(yl, font=f)) + 4, 18), "white")
    ImageDraw.Draw(lab).text((2, 1), yl, fill=(0, 0, 0), font=f)
    lab = lab.rotate(90, expand=True)
    img.paste(lab, (4, int(top + ph / 2 - lab.height / 2)))
    n_edits = len({r["edit"] for r in pts})
    title = (f"{result.get('points', 0)} distinct solves of {n_edits} edits; fit: silent = "
             f"{10 ** result.get('intercept', float('nan')):.3f} x collateral^"
             f"{result.get('slope', float('nan')):.2f}, "
             f"Spearman {result.get('spearman', float('nan')):.2f}")
    d.text((left, 10), title, fill=(0, 0, 0), font=f)

    vis = result.get("visible silent change")
    if vis:
        y = py(math.log10(vis))
        _dashed(d, (left, y), (left + pw, y), (120, 120, 120), width=2)
        d.text((left + 4, y - 15), f"visible: {vis:g}", fill=(90, 90, 90), font=fs)
    if threshold:
        x = px(math.log10(threshold))
        _dashed(d, (x, top), (x, top + ph), (150, 0, 150), width=2)
        d.text((x + 4, top + 3), f"COLLATERAL_WARN {threshold:g}", fill=(150, 0, 150), font=fs)
    if "slope" in result and result["slope"] != 0:
        a, b = result["intercept"], result["slope"]
        # The line clipped to the plot: x where it leaves [ylo, yhi], within [xlo, xhi].
        ends = sorted(((ylo - a) / b, (yhi - a) / b))
        x0, x1 = max(xlo, ends[0]), min(xhi, ends[1])
        if x0 < x1:
            d.line([(px(x0), py(a + b * x0)), (px(x1), py(a + b * x1))], fill=(0, 0, 0), width=2)

    for r, lx, ly in zip(pts, xs, ys):
        family = next((k for k in FAMILIES if r["method"].startswith(k)), None)
        c = FAMILIES.get(family, (0, 0, 0))
        x, y = px(lx), py(ly)
        if r.get("kind") == "erase":
            d.rectangle([x - 4, y - 4, x + 4, y + 4], fill=c, outline=(0, 0, 0))
        else:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=c, outline=(0, 0, 0))

    lx0, ly0 = left + pw + 14, top + 6
    for i, (name, c) in enumerate(FAMILIES.items()):
        y = ly0 + i * 20
        d.ellipse([lx0, y + 2, lx0 + 9, y + 11], fill=c, outline=(0, 0, 0))
        d.text((lx0 + 15, y), name, fill=(0, 0, 0), font=fs)
    y = ly0 + len(FAMILIES) * 20 + 8
    d.ellipse([lx0, y + 2, lx0 + 9, y + 11], fill="white", outline=(0, 0, 0))
    d.text((lx0 + 15, y), "copy-paste (main.6)", fill=(0, 0, 0), font=fs)
    d.rectangle([lx0, y + 22, lx0 + 9, y + 31], fill="white", outline=(0, 0, 0))
    d.text((lx0 + 15, y + 20), "erase (main.3)", fill=(0, 0, 0), font=fs)
    d.line([(lx0, y + 50), (lx0 + 10, y + 50)], fill=(0, 0, 0), width=2)
    d.text((lx0 + 15, y + 43), "least-squares fit", fill=(0, 0, 0), font=fs)
    _dashed(d, (lx0, y + 70), (lx0 + 10, y + 70), (120, 120, 120), dash=3, width=2)
    d.text((lx0 + 15, y + 63), "visible change", fill=(0, 0, 0), font=fs)
    img = img.quantize(colors=64)
    img.save(path, format="PNG", optimize=True)


# ---------------------------------------------------------------------------- running

def silent_grid(ev, seeds: list[int]):
    """8 silent samples of ``ev``: before, after, and |after - before| x 5."""
    from rewrite.utils.images import make_grid
    silent = np.nonzero(~ev.fire.any((1, 2)))[0][:8]
    b, a = ev.before[silent], ev.after[silent]
    diff = np.clip(np.abs(a.astype(np.int16) - b.astype(np.int16)) * 5, 0, 255).astype(np.uint8)
    labels = ([f"#{seeds[i]}" for i in silent] + [f"#{seeds[i]} edited" for i in silent]
              + ["|diff| x5"] * len(silent))
    return make_grid(np.concatenate([b, a, diff]), cols=len(silent), labels=labels, scale=2)


def run(args, out: Path) -> list[dict]:
    from rewrite import load_model
    from rewrite.edit import EditSpec
    from rewrite.metrics.evaluate import compare_methods
    from rewrite.sampling.seeds import parse_seeds
    from rewrite.utils.images import save_png

    seeds = parse_seeds(args.seeds)
    G = load_model("dcgan-digiface64")
    rows, t0 = [], time.perf_counter()
    for path in spec_paths(args.edits):
        spec = EditSpec.load(path)
        asked = variants(spec, args.budgets)
        results = compare_methods(G, spec, seeds, asked, progress=False)
        for v, r in zip(asked, results):
            m = r.metrics
            rows.append({"edit": spec.name, "kind": spec.kind, "layer": spec.layer,
                         "method": r.label, "strength": v.strength,
                         "predicted collateral": m["predicted collateral"] * v.strength ** 2,
                         **{k: m[k] for k in COLUMNS[3:] if k in m}})
        near = min(results, key=lambda r: abs(math.log(max(r.metrics["silent change"], 1e-9)
                                                        / args.visible)))
        save_png(silent_grid(near, seeds), out / f"silent-{spec.name}.png")
        print(table([r for r in rows if r["edit"] == spec.name], COLUMNS), flush=True)
        print(f"{spec.name}: {time.perf_counter() - t0:.0f} s so far; silent-{spec.name}.png "
              f"shows {near.label} (silent change {near.metrics['silent change']:.4f})",
              file=sys.stderr, flush=True)
    return rows


def report(rows: list[dict], args, out: Path) -> dict:
    from rewrite.metrics.before_after import COLLATERAL_WARN
    result = fit(rows, args.visible)
    by_layer = {}
    for kind in sorted({r["kind"] for r in rows}):
        by_layer[kind] = fit([r for r in rows if r["kind"] == kind], args.visible)
    checks = [warn_check(rows, COLLATERAL_WARN, args.visible)]
    if "predicted collateral at visible" in result:
        crossing = result["predicted collateral at visible"]
        if not math.isclose(crossing, COLLATERAL_WARN, rel_tol=0.05):
            checks.append(warn_check(rows, crossing, args.visible))
    default = [r for r in rows if r["method"] == "least-collateral r4 budget=0.01"]
    largest = max((r["predicted collateral"] for r in default), default=float("nan"))
    above = sum(r["predicted collateral"] > COLLATERAL_WARN for r in default)
    wrong = [{"edit": r["edit"], "method": r["method"],
              "predicted collateral": r["predicted collateral"],
              "silent change": r["silent change"],
              "at COLLATERAL_WARN": ("warned, not visible" if r["predicted collateral"] > COLLATERAL_WARN
                                     else "visible, not warned")}
             for r in distinct(rows)
             if (r["predicted collateral"] > COLLATERAL_WARN) != (r["silent change"] > args.visible)]
    lines = [table(rows, COLUMNS), "",
             "Fit of log10(silent change) on log10(predicted collateral), distinct edits:", "",
             table([{"edits": "all", **result}] + [{"edits": k, **v} for k, v in by_layer.items()],
                   ["edits", "points", "slope", "intercept", "residual sd (log10)",
                    "pearson r (log-log)", "spearman", "predicted collateral at visible"]),
             "", (f"Warning checks (visible = silent change > {args.visible:g}; "
                  f"COLLATERAL_WARN now {COLLATERAL_WARN:g}):"), "",
             table(checks, ["threshold", "visible and warned", "visible, not warned",
                            "warned, not visible", "neither"]), "",
             table(wrong, ["edit", "method", "predicted collateral", "silent change",
                           "at COLLATERAL_WARN"]) if wrong else "No variant is misjudged.", "",
             (f"Default edits (budget 0.01) above COLLATERAL_WARN: {above} of {len(default)} "
              f"(largest predicted {largest:.4g})")]
    text = "\n".join(lines)
    (out / "table.md").write_text(text + "\n")
    (out / "metrics.json").write_text(json.dumps(
        {"seeds": args.seeds, "visible": args.visible, "rows": rows, "fit": result,
         "fit by kind": by_layer, "warning checks": checks}, indent=1,
        default=lambda v: None) + "\n")
    scatter(rows, result, COLLATERAL_WARN, out / "scatter.png")
    if not args.no_docs:
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(out / "scatter.png", ROOT / "docs" / "collateral-scatter.png")
    print(text)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="2000-2255", help="held-out samples (default 2000-2255)")
    ap.add_argument("--edits", nargs="*", help="edit names (default: all)")
    ap.add_argument("--budgets", type=float, nargs="*", default=list(BUDGETS),
                    help=f"least-collateral budgets (default {' '.join(map(str, BUDGETS))})")
    ap.add_argument("--visible", type=float, default=VISIBLE,
                    help=f"silent change taken as visible (default {VISIBLE})")
    ap.add_argument("--out", default=str(ROOT / "outputs" / "collateral-benchmark"))
    ap.add_argument("--replot", action="store_true",
                    help="no solving: fit and plot --out/metrics.json again")
    ap.add_argument("--no-docs", action="store_true", help="do not copy the plot to docs/")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.replot:
        saved = json.loads((out / "metrics.json").read_text())
        rows = [{k: (float("nan") if v is None and k != "edit" else v) for k, v in r.items()}
                for r in saved["rows"]]
        args.seeds = saved["seeds"]
    else:
        rows = run(args, out)
    report(rows, args, out)
    print(f"\n{len(rows)} rows in {time.perf_counter() - t0:.0f} s; wrote {out}/table.md, "
          f"metrics.json, scatter.png and silent-<edit>.png")


if __name__ == "__main__":
    main()
