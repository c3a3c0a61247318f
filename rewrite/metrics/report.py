"""Tables, a plot and a self-contained HTML report of edit evaluations.

Usage::

    results = compare_methods(G, spec, range(1000, 1512))
    paths = write_outputs(results, "eval-out/", "add sunglasses")
    # eval-out/: metrics.csv, metrics.md, metrics.json, tradeoff.png (more than one
    # method), figure-0.png ..., report.html; paths maps "csv", "md", "json", "plot",
    # each figure's title and "html" to those files
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..utils.fileio import atomic_path
from ..utils.images import heat_overlay, make_grid, png_data_url, save_png
from .before_after import before_after_grid
from .evaluate import Evaluation

#: Columns of the metrics table, in order.
COLUMNS = [
    "method",
    "goal reproduction",
    "efficacy",
    "matched efficacy",
    "object transfer",
    "structure transfer",
    "matched structure transfer",
    "erase removal",
    "clean removal",
    "matched clean removal",
    "clean removal judged",
    "silent change",
    "change outside",
    "PSNR outside",
    "change inside",
    "changed fraction",
    "colour gain",
    "erased-unit drop",
    "predicted collateral",
    "|ΔW|/|W0|",
    "goal loss before",
    "goal loss",
    "seconds",
    "firing samples",
    "FID",
    "KID",
    "LPIPS outside",
    "LPIPS, silent samples",
]


def rows(results: Sequence[Evaluation]) -> list[dict]:
    """One row per evaluation with the table's columns (absent figures left out)."""
    out = []
    for r in results:
        row = {"method": r.label}
        row.update({k: v for k, v in r.metrics.items() if k in COLUMNS})
        out.append(row)
    return out


def _columns(table: list[dict]) -> list[str]:
    return [c for c in COLUMNS if any(c in r for r in table)]


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.4g}")
    return str(v)


def markdown(table: list[dict]) -> str:
    """The table as Markdown."""
    cols = _columns(table)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, float("nan"))) for c in cols) + " |" for r in table]
    return "\n".join(lines) + "\n"


def write_csv(table: list[dict], path: Path) -> Path:
    """Write the table as CSV atomically."""
    cols = _columns(table)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in table:
            w.writerow({c: r.get(c, "") for c in cols})
    return path


def tradeoff_plot(results: Sequence[Evaluation]) -> Image.Image:
    """The plot, as an RGB image: efficacy (the fraction of firing samples that moved
    toward the request) against locality damage (change outside the firing regions),
    one point per method."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
    for r in results:
        x, y = r.metrics["change outside"], r.metrics["efficacy"]
        ax.scatter([x], [y], s=50)
        ax.annotate(r.label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlabel("locality damage: mean |Δ| outside firing regions")
    ax.set_ylabel("efficacy: firing samples moved toward the request")
    xs = [r.metrics["change outside"] for r in results]
    ys = [np.nan_to_num(r.metrics["efficacy"]) for r in results]
    ax.set_xlim(0, max(xs) * 1.3 + 1e-9)
    ax.set_ylim(0, max(ys) * 1.2 + 1e-9)
    ax.grid(alpha=0.3)
    ax.set_title("better: up and to the left", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _pick(result: Evaluation, n: int) -> list[int]:
    """Up to ``n`` sample positions, firing samples first (strongest response first)."""
    strength = result.response.reshape(len(result.seeds), -1).max(1)
    order = np.argsort(-strength, kind="stable")
    return sorted(order[:n].tolist(), key=lambda i: -strength[i])


def figures(results: Sequence[Evaluation], n: int = 16) -> dict[str, Image.Image]:
    """The report's pictures, title -> image: ``"firing regions"`` (the firing overlays of
    the first evaluation) and ``"before / after: <label>"`` per method (up to ``n``
    samples, the strongest responses first)."""
    first = results[0]
    idx = _pick(first, n)
    seeds = [first.seeds[i] for i in idx]
    pics = {
        "firing regions": make_grid(
            heat_overlay(first.before[idx], first.fire[idx].astype(np.float32)),
            cols=min(n, 8),
            labels=[f"#{s}" for s in seeds],
            scale=2,
        )
    }
    for r in results:
        pics[f"before / after: {r.label}"] = before_after_grid(
            r.before[idx], r.after[idx], seeds, cols=min(n, 8)
        )
    return pics


def report_html(
    results: Sequence[Evaluation],
    title: str,
    plot: Image.Image | None,
    pictures: dict[str, Image.Image],
) -> str:
    """One self-contained HTML page, as text: every image is embedded as a data URL."""
    first = results[0]
    table = rows(results)
    cols = _columns(table)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_fmt(r.get(c, float('nan'))))}</td>" for c in cols)
        + "</tr>"
        for r in table
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th{background:#f4f4f4}img{max-width:100%;image-rendering:pixelated}"
        "pre{background:#f8f8f8;padding:8px;overflow:auto;font-size:12px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(first.seeds)} held-out samples ({first.seeds[0]}…{first.seeds[-1]}). "
        f"The rule fires where the context direction's response to the keys of layer "
        f"<code>{html.escape(first.spec['layer'])}</code> exceeds {first.threshold:.4g} "
        f"(the 99th percentile over these unedited samples, grown by one cell): on "
        f"{first.metrics['firing samples']} samples, {first.metrics['firing pixels']:.1%} of "
        "pixels. Changes are mean |Δpixel| on a 0–1 scale. Goal reproduction: the edited "
        "goal sample's distance to the requested image inside the goal box, as a fraction "
        "of the unedited distance (lower is better). Efficacy: the fraction of firing "
        "samples that moved toward the request (object transfer of at least 0.1, erase "
        "removal of at least 0.2; a colour wash scores 0 or less). Erase removal asks "
        "whether the firing region now looks like its surroundings, which a grey or "
        "skin-coloured smear over the object also satisfies; clean removal asks whether it "
        "now looks like the same region of the faces where the rule never fires and "
        "responds least (1 = as object-free as those faces, 0 = no better than before; a "
        "flat fill of the surroundings' colour scores 0 or less, a blotch or a heavy blur "
        "little; regions that already looked object-free are not judged, and clean removal "
        "judged counts the samples that were). Silent "
        "change: whole-image change on the samples where the rule does not fire.</p>",
        f"<h2>Metrics</h2><table><tr>{head}</tr>{body}</table>",
    ]
    if plot is not None:
        parts.append(f"<h2>Efficacy against locality damage</h2><img src='{png_data_url(plot)}'>")
    for name, pic in pictures.items():
        parts.append(f"<h2>{html.escape(name)}</h2><img src='{png_data_url(pic)}'>")
    parts.append(
        "<h2>Edit specification</h2><pre>"
        + html.escape(json.dumps(first.spec, indent=2))
        + "</pre></body></html>"
    )
    return "\n".join(parts)


def write_outputs(
    results: Sequence[Evaluation], out_dir: str | Path, title: str
) -> dict[str, Path]:
    """Write ``metrics.csv``, ``metrics.md``, ``metrics.json``, ``tradeoff.png`` (with more
    than one method), the pictures (``figure-<i>.png``, in :func:`figures`' order) and
    ``report.html`` (titled ``title``) into ``out_dir``.

    Returns:
        name -> path of each file written: ``"csv"``, ``"md"``, ``"json"``, ``"plot"``
        (only with more than one method), each picture's title, ``"html"``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = rows(results)
    paths = {"csv": write_csv(table, out / "metrics.csv")}
    with atomic_path(out / "metrics.md") as tmp:
        tmp.write_text(markdown(table))
    paths["md"] = out / "metrics.md"
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(
            json.dumps({r.label: r.metrics for r in results}, indent=2, default=float) + "\n"
        )
    paths["json"] = out / "metrics.json"
    plot = tradeoff_plot(results) if len(results) > 1 else None
    if plot is not None:
        paths["plot"] = save_png(plot, out / "tradeoff.png")
    pictures = figures(results)
    for i, (name, pic) in enumerate(pictures.items()):
        paths[name] = save_png(pic, out / f"figure-{i}.png")
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(report_html(results, title, plot, pictures))
    paths["html"] = out / "report.html"
    return paths
