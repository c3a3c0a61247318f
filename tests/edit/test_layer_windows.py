"""Layer grids with a margin around the image (StyleGAN3): masks land on the image
window's cells, cells map back to image pixels, and firing / heat maps have the
image's shape; grids without a margin behave as before."""

import pytest
import torch

from rewrite.edit import EditSpec, Rewriter
from rewrite.edit.goals import build_inputs
from rewrite.edit.masks import (coverage, crop_window, layer_window, regrid, render_mask,
                                window_cell_pixels, window_coverage)
from rewrite.metrics.firing import firing_mask, heat, key_response, quantile_threshold
from rewrite.models import load_model
from rewrite.utils.errors import EditError
from tests.conftest import make_tiny_dcgan


def _sg3(fixtures_dir):
    pkl = fixtures_dir / "stylegan3t_tiny64.pkl"
    if not pkl.is_file():
        pytest.skip("stylegan3-t fixture not found")
    return pkl, load_model(str(pkl))


def test_window_coverage_maps_a_rect_to_the_windows_cells():
    window = (36, 10, 16)                       # 64-px image on the central 16 of 36 cells
    assert window_cell_pixels(window, 64) == 4
    cov = window_coverage(render_mask({"rect": [16, 8, 32, 12]}, 64), window)
    assert cov.shape == (36, 36)
    rows, cols = torch.nonzero(cov > 0, as_tuple=True)
    assert (int(rows.min()), int(rows.max())) == (10 + 2, 10 + 2)     # pixel rows 8..11
    assert (int(cols.min()), int(cols.max())) == (10 + 4, 10 + 7)     # pixel cols 16..31
    assert torch.all(cov[cov > 0] == 1)
    # The whole image fills exactly the window; the margin stays zero.
    full = window_coverage(torch.ones(64, 64).numpy(), window)
    assert float(full.sum()) == 16 * 16 and torch.all(crop_window(full, window) == 1)
    # Half-covered cells at the window's edge.
    half = window_coverage(render_mask({"rect": [0, 0, 2, 64]}, 64), window)
    assert torch.allclose(half[10:26, 10], torch.full((16,), 0.5))
    # Batched masks, and a grid's mask moved onto another window.
    both = window_coverage(torch.stack([torch.ones(64, 64), torch.zeros(64, 64)]).numpy(), window)
    assert both.shape == (2, 36, 36) and float(both[1].sum()) == 0
    moved = regrid(cov, window, (52, 10, 32))
    assert moved.shape == (52, 52)
    assert torch.equal(torch.nonzero(moved > 0).amin(0), torch.tensor([10 + 4, 10 + 8]))
    with pytest.raises(EditError, match="image window"):
        window_cell_pixels((30, 1, 28), 64)


def test_without_a_margin_the_window_is_the_grid():
    mask = render_mask({"polygon": [[3, 2], [27, 9], [11, 30]]}, 32)
    for res in (4, 8, 16, 32, 64):
        assert torch.equal(window_coverage(mask, (res, 0, res)), coverage(mask, res))
    G = make_tiny_dcgan()
    for info in G.layers():
        assert layer_window(info, "key") == (info.key_resolution, 0, info.key_resolution)
        assert layer_window(info, "value") == (info.value_resolution, 0, info.value_resolution)


def test_stylegan3_layers_carry_their_image_window(fixtures_dir):
    _, G = _sg3(fixtures_dir)
    # The image is the central sampling-rate cells of each grid.
    for info, L in zip(G.layers(), G.config.layers, strict=True):
        for part, size, rate in (("key", L.in_size, L.in_sampling_rate),
                                 ("value", L.out_size, L.out_sampling_rate)):
            assert layer_window(info, part) == (size, (size - round(rate)) // 2, round(rate))
    assert layer_window(G.layer(G.layers()[0].name), "key") == (36, 10, 16)


@pytest.mark.parametrize("layer_index", [8, 10])
def test_copy_paste_at_a_margin_layer(fixtures_dir, tmp_path, monkeypatch, layer_index):
    pkl, G = _sg3(fixtures_dir)
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    info = G.layers()[layer_index]
    assert info.value_resolution % G.resolution and info.value_margin > 0
    q = G.resolution // 4
    spec = EditSpec.from_json({
        "version": 1, "model": str(pkl), "layer": info.name, "kind": "copy-paste", "rank": 1,
        "stats": {"samples": 200},
        "copy": {"sample": 1, "mask": {"rect": [q, q, 2 * q, 2 * q]}},
        "paste": {"sample": 2, "mask": {"rect": [2 * q, 2 * q, 3 * q, 3 * q]}},
        "context": [{"sample": 3, "mask": {"rect": [q, q, 3 * q, 2 * q]}}]})
    spec.validate_for(G)
    session = Rewriter(G, progress=False)
    inputs = session.prepare(spec)
    # The loss box is the paste box, on the value grid's image window.
    _, vm, vc = layer_window(info, "value")
    cell = G.resolution // vc
    rows, cols = torch.nonzero(inputs.mask[0, 0] > 0, as_tuple=True)
    assert int(rows.min()) == vm + 2 * q // cell and int(rows.max()) == vm + 3 * q // cell - 1
    assert int(cols.min()) == vm + 2 * q // cell and int(cols.max()) == vm + 3 * q // cell - 1
    box = torch.nonzero(inputs.image_mask[0, 0] > 0)
    assert box.amin(0).tolist() == [2 * q, 2 * q] and box.amax(0).tolist() == [3 * q - 1] * 2
    d = session.apply(spec)
    assert d.loss < d.loss_before, d.figures()
    # Firing and heat maps: on the image window, at the image's resolution.
    resp = key_response(G, info.name, inputs.D, range(4))
    _, _, kc = layer_window(info, "key")
    assert resp.shape == (4, kc, kc)
    fire = firing_mask(resp, quantile_threshold(resp), G.resolution)
    assert fire.shape == (4, G.resolution, G.resolution) and fire.any()
    assert heat(resp).shape == (4, kc, kc)


def test_erase_at_a_margin_layer(fixtures_dir, tmp_path, monkeypatch):
    pkl, G = _sg3(fixtures_dir)
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    info = G.layers()[10]
    q = G.resolution // 4
    spec = EditSpec.from_json({
        "version": 1, "model": str(pkl), "layer": info.name, "kind": "erase", "rank": 1,
        "erase": {"units": 2},
        "stats": {"samples": 200},
        "context": [{"sample": 3, "mask": {"rect": [q, q, 3 * q, 2 * q]}}]})
    spec.validate_for(G)
    session = Rewriter(G, progress=False)
    inputs = build_inputs(G, spec, session.stats(spec))
    _, vm, vc = layer_window(info, "value")
    region = inputs.mask[0, 0] > 0
    assert not region[:vm].any() and not region[vm + vc:].any()
    assert int(region.sum()) == (vc // 2) * (vc // 4)
    box = torch.nonzero(inputs.image_mask[0, 0] > 0)
    assert box.amin(0).tolist() == [q, q] and box.amax(0).tolist() == [2 * q - 1, 3 * q - 1]
