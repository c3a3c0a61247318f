"""Blind rating sheets: before/after grids relabelled so that a rater cannot tell which is which.

The by-eye counts the edit targets ask for ("the object on 8 of 12 matched faces") are taken
by a rater shown the pictures and nothing else. This writes, for grids of the same faces
made by different methods or settings (``rewrite compare`` or
``benchmarks/experiments/matched_faces.py`` output: an upper row of faces before, a lower row
after), one letter per grid in a shuffled order, each grid cut into ``--parts`` pieces of
equal width and enlarged ``--zoom`` times (nearest neighbour, so no detail is invented) for a
viewer that shrinks wide images: ``OUT/<letter>_<k>.png``. Which letter is which grid goes to
``--key`` only (kept away from the rater's folder). Nothing is measured here.

Usage (from the project root)::

    python benchmarks/experiments/blind_sheet.py outputs/a.png outputs/b.png \\
        --out /tmp/rate --key /tmp/rate-key.json --seed 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import string
import sys
from pathlib import Path

from PIL import Image


def cut(image: Image.Image, parts: int, zoom: int) -> list[Image.Image]:
    """``image`` cut into ``parts`` vertical strips of equal width (the last takes the
    remainder), each enlarged ``zoom`` times by nearest neighbour."""
    w, h = image.size
    if parts < 1 or parts > w:
        raise ValueError(f"cannot cut an image {w} px wide into {parts} parts")
    edges = [round(i * w / parts) for i in range(parts + 1)]
    return [
        image.crop((a, 0, b, h)).resize(((b - a) * zoom, h * zoom), Image.NEAREST)
        for a, b in itertools.pairwise(edges)
    ]


def letters_for(grids: list[Path], seed: int) -> dict[str, Path]:
    """One capital letter per grid, assigned in an order shuffled by ``seed``:
    {letter: grid}, letters from A in order."""
    if len(grids) > 26:
        raise ValueError("at most 26 grids per sheet")
    order = list(grids)
    random.Random(seed).shuffle(order)
    return dict(zip(string.ascii_uppercase, order, strict=False))


def write_sheet(grids: list[Path], out: Path, key: Path, seed: int, parts: int, zoom: int) -> dict:
    """Write the pieces of each grid under ``out`` as ``<letter>_<k>.png`` (k from 1) and the
    letters' grids to ``key`` (JSON); returns that mapping {letter: grid path}."""
    if out.resolve() in key.resolve().parents:
        raise ValueError(f"the key {key} must not sit in the rater's folder {out}")
    mapping = letters_for(grids, seed)
    out.mkdir(parents=True, exist_ok=True)
    for letter, grid in mapping.items():
        with Image.open(grid) as im:
            pieces = cut(im.convert("RGB"), parts, zoom)
        for k, piece in enumerate(pieces, 1):
            tmp = out / f".{letter}_{k}.png.tmp"
            piece.save(tmp, format="PNG")
            tmp.replace(out / f"{letter}_{k}.png")
    record = {letter: str(grid) for letter, grid in mapping.items()}
    key.parent.mkdir(parents=True, exist_ok=True)
    tmp = key.with_name(key.name + ".tmp")
    tmp.write_text(json.dumps({"seed": seed, "grids": record}, indent=1))
    tmp.replace(key)
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grids", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="the rater's folder")
    ap.add_argument("--key", type=Path, required=True, help="which letter is which (JSON)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", type=int, default=2)
    ap.add_argument("--zoom", type=int, default=2)
    args = ap.parse_args(argv)
    missing = [str(g) for g in args.grids if not g.is_file()]
    if missing:
        print(f"error: no such grid: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        record = write_sheet(args.grids, args.out, args.key, args.seed, args.parts, args.zoom)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {len(record)} grids as {', '.join(record)} in {args.parts} parts each under "
        f"{args.out}; the key is {args.key}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
