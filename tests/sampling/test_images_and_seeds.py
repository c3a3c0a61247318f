import numpy as np
import pytest
import torch
from PIL import Image

from rewrite.utils.errors import SeedSpecError
from rewrite.utils.images import make_grid, save_png, to_uint8
from rewrite.sampling.seeds import parse_seeds


def test_to_uint8_maps_the_range():
    x = torch.tensor([-1.0, -2.0, 0.0, 1.0, 3.0]).reshape(1, 1, 1, 5).expand(1, 3, 1, 5)
    out = to_uint8(x)
    assert out.shape == (1, 1, 5, 3) and out.dtype == np.uint8
    assert out[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_grid_places_tiles_and_labels():
    imgs = np.zeros((6, 4, 5, 3), np.uint8)
    imgs[1] = 200
    grid = make_grid(imgs, cols=3, scale=2, pad=1)
    assert grid.size == (3 * 10 + 4, 2 * 8 + 3)
    arr = np.asarray(grid)
    assert (arr[1:9, 12:22] == 200).all() and (arr[1:9, 1:11] == 0).all()
    labelled = make_grid(imgs, cols=3, labels=[str(i) for i in range(6)])
    assert labelled.size[1] > make_grid(imgs, cols=3).size[1]
    with pytest.raises(ValueError, match="2 labels for 6 images"):
        make_grid(imgs, labels=["a", "b"])


def test_default_columns_fill_rows():
    assert make_grid(np.zeros((32, 2, 2, 3), np.uint8), pad=0).size == (16, 8)


def test_save_png_is_atomic(tmp_path):
    path = tmp_path / "out.png"
    save_png(Image.new("RGB", (3, 2)), path)
    assert Image.open(path).size == (3, 2)

    class Broken:
        def save(self, *a, **k):
            raise OSError("disk full")

    with pytest.raises(OSError):
        save_png(Broken(), tmp_path / "never.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.parametrize("text,want", [("0-3,10", [0, 1, 2, 3, 10]), (" 7 ", [7]),
                                       ("5-5, 1", [5, 1])])
def test_parse_seeds(text, want):
    assert parse_seeds(text) == want


@pytest.mark.parametrize("text,msg", [("5-2", "did you mean 2-5"), ("", "empty seed list"),
                                      ("a-3", "cannot read"), ("1,,2", "cannot read"),
                                      ("-3", "cannot read"), ("0-99999999", "below 1000000"), ("0-999999,0-5", "more than")])
def test_bad_seeds(text, msg):
    with pytest.raises(SeedSpecError, match=msg):
        parse_seeds(text)
