"""benchmarks/experiments/blind_sheet.py: the pieces are the grid, the key names each grid once."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "experiments" / "blind_sheet.py"
_spec = importlib.util.spec_from_file_location("blind_sheet", _PATH)
bs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bs)


def _grid(path: Path, seed: int, size=(101, 30)) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def test_the_pieces_put_back_together_are_the_grid(tmp_path):
    pixels = _grid(tmp_path / "g.png", 0)
    pieces = bs.cut(Image.open(tmp_path / "g.png"), 3, 2)
    assert len(pieces) == 3
    back = np.concatenate([np.asarray(p)[::2, ::2] for p in pieces], axis=1)
    np.testing.assert_array_equal(back, pixels)  # no column lost, none repeated


def test_each_grid_gets_one_letter_and_the_key_says_which(tmp_path):
    grids = [tmp_path / f"{n}.png" for n in ("a", "b", "c")]
    originals = {str(g): _grid(g, i) for i, g in enumerate(grids)}
    out, key = tmp_path / "rate", tmp_path / "key.json"
    record = bs.write_sheet(grids, out, key, seed=5, parts=2, zoom=1)
    assert sorted(record) == ["A", "B", "C"] and sorted(record.values()) == sorted(originals)
    assert json.loads(key.read_text())["grids"] == record
    for letter, grid in record.items():  # each letter's pieces are its grid
        left, right = (np.asarray(Image.open(out / f"{letter}_{k}.png")) for k in (1, 2))
        np.testing.assert_array_equal(np.concatenate([left, right], axis=1), originals[grid])
    assert not list(out.glob("*.json")) and not list(out.glob(".*"))  # nothing else for the rater
    orders = {tuple(bs.letters_for(grids, s).values()) for s in range(10)}
    assert len(orders) > 1  # the seed shuffles the letters


def test_the_key_may_not_sit_with_the_pictures(tmp_path):
    grid = tmp_path / "g.png"
    _grid(grid, 1)
    with pytest.raises(ValueError, match="must not sit"):
        bs.write_sheet([grid], tmp_path / "rate", tmp_path / "rate" / "key.json", 0, 2, 1)
    with pytest.raises(ValueError, match="cannot cut"):
        bs.cut(Image.open(grid), 0, 1)
