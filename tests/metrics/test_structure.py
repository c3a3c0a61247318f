"""``structure_transfer``: the share of the copied object's structure an edit drew, on
images whose right answers are known (a paste, a half and a faint paste) and on the changes
that must not pass (a colour wash, a smooth wash of the object, a fade, a blur, noise), on
synthetic skin and on the face model's own faces and copied objects."""

import numpy as np
import pytest
import torch

from rewrite.edit import EditSpec
from rewrite.edit.masks import render_mask
from rewrite.metrics.structure import (
    ROOM,
    _box_blur,
    band_pass,
    interior,
    object_structure,
    structure_transfer,
)
from rewrite.utils.images import to_unit

from ..conftest import ROOT
from .test_transfer import skin, textured_object

BOX = (10, 22, 8, 20)  # r0, r1, c0, c1: a 12 x 12 box


def _paste(before, obj, alpha, box, opacity=1.0):
    r0, r1, c0, c1 = box
    out = before.copy()
    a = opacity * alpha[..., None]
    out[:, r0:r1, c0:c1] = (1 - a) * out[:, r0:r1, c0:c1] + a * obj
    return out


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    before = skin(rng, (32, 32, 32))                      # 32 images of 32 x 32
    obj, alpha = textured_object(rng, 12, 12)
    return before, obj, alpha, [BOX] * len(before)


def _s_before(before, obj, alpha):
    r0, r1, c0, c1 = BOX
    inside = alpha >= 0.5
    return np.array([object_structure(p, band_pass(obj, inside), interior(alpha), inside)
                     for p in before[:, r0:r1, c0:c1]])


# -- the box blur and the interior -------------------------------------------------------------
def test_box_blur_is_the_mean_over_the_reflected_square():
    x = np.random.default_rng(1).normal(size=(9, 11, 3))
    r = 2
    padded = np.pad(x, ((r, r), (r, r), (0, 0)), mode="reflect")
    want = np.stack([[padded[i:i + 2 * r + 1, j:j + 2 * r + 1].mean((0, 1))
                      for j in range(11)] for i in range(9)])
    np.testing.assert_allclose(_box_blur(x, r), want, rtol=0, atol=1e-12)


def test_a_flat_patch_has_no_structure_nor_a_silhouette():
    assert np.abs(band_pass(np.full((12, 16, 3), 0.4))).max() < 1e-12
    inside = np.zeros((12, 16), bool)
    inside[3:9, 4:12] = True
    patch = np.where(inside[..., None], 0.1, 0.9) * np.ones(3)     # a dark blob on light
    assert np.abs(band_pass(patch)).max() > 0.1                    # unmasked: its edges show
    assert np.abs(band_pass(patch, inside)).max() < 1e-12


def test_interior_leaves_out_the_rim_and_the_transparent_pixels():
    alpha = np.ones((10, 10))
    alpha[:, 7:] = 0.2
    inner = interior(alpha, rim=2)
    assert inner[2:8, 2:5].min() == 1 and inner[:2].max() == 0 and inner[:, 5:].max() == 0


# -- what must score high ------------------------------------------------------------------------
def test_the_pasted_object_scores_one(case):
    before, obj, alpha, boxes = case
    alpha = np.ones_like(alpha)                           # the copied box, as a rect mask copies
    score = structure_transfer(before, _paste(before, obj, alpha, BOX), obj, alpha, boxes)
    np.testing.assert_allclose(score, 1.0, atol=1e-9)


@pytest.mark.parametrize("opacity", [0.3, 0.5, 0.8])
def test_a_faint_object_scores_its_opacity(case, opacity):
    """s is linear in the patch: a blend at opacity t has s = t + (1 - t) s(before), so the
    score is t where the skin holds none of the object's structure, and differs from t by
    at most (1 - t) |s(before)| otherwise."""
    before, obj, alpha, boxes = case
    alpha = np.ones_like(alpha)
    score = structure_transfer(before, _paste(before, obj, alpha, BOX, opacity), obj, alpha,
                               boxes)
    sb = _s_before(before, obj, alpha)
    assert np.all(np.abs(score - opacity) <= (1 - opacity) * np.abs(sb) + 1e-9)
    assert float(np.abs(sb).max()) < 0.1                  # the skin is nearly structure-free


# -- what must not pass --------------------------------------------------------------------------
@pytest.mark.parametrize("t", [0.3, 0.7, 1.0])
def test_a_wash_toward_the_objects_colour_scores_at_most_zero(case, t):
    before, obj, alpha, boxes = case
    mean = (alpha[..., None] * obj).sum((0, 1)) / alpha.sum()
    after = _paste(before, np.broadcast_to(mean, obj.shape), alpha, BOX, t)
    assert structure_transfer(before, after, obj, alpha, boxes).max() <= 1e-9


def test_a_uniform_colour_change_scores_no_more_than_doing_nothing(case):
    before, obj, alpha, boxes = case
    after = before.copy()
    after[:, 10:22, 8:20] += np.array([-0.2, -0.1, 0.05])
    np.testing.assert_allclose(structure_transfer(before, after, obj, alpha, boxes),
                               structure_transfer(before, before, obj, alpha, boxes), atol=1e-9)
    assert structure_transfer(before, before, obj, alpha, boxes).max() <= 1e-9


def test_a_smooth_wash_of_the_object_scores_near_zero(case):
    before, obj, alpha, boxes = case
    smooth = _box_blur(obj, 8)                           # its colours, none of its parts
    after = _paste(before, smooth, alpha, BOX)
    assert structure_transfer(before, after, obj, alpha, boxes).mean() < 0.05


def test_blur_and_noise_score_near_zero(case):
    before, obj, alpha, boxes = case
    blurred = before.copy()
    blurred[:, 10:22, 8:20] = np.stack([_box_blur(p, 2) for p in before[:, 10:22, 8:20]])
    noisy = before + np.random.default_rng(5).normal(0, 0.03, before.shape)
    for after in (blurred, noisy):
        score = structure_transfer(before, after, obj, alpha, boxes)
        assert abs(score.mean()) < 0.03 and score.max() < 0.2, score


# -- what cannot be judged -----------------------------------------------------------------------
def test_nan_without_a_box_without_structure_or_without_room(case):
    before, obj, alpha, boxes = case
    after = _paste(before, obj, alpha, BOX)
    assert np.isnan(structure_transfer(before, after, obj, alpha, [None] * len(before))).all()
    flat = np.full_like(obj, 0.3)
    assert np.isnan(structure_transfer(before, after, flat, alpha, boxes)).all()
    # A patch already holding more than 1 - ROOM of the object's structure.
    full = _paste(before, obj, np.ones_like(alpha), BOX, 1 - ROOM / 2)
    assert np.isnan(structure_transfer(full, after, obj, np.ones_like(alpha), boxes)).all()


# -- the face model's own faces and objects -----------------------------------------------------
@pytest.mark.parametrize("name", ["add-glasses", "add-cap", "red-hair"])
def test_on_faces_pastes_score_one_and_washes_do_not_pass(face_model, name):
    G = face_model
    spec = EditSpec.load(ROOT / "benchmarks" / "edits" / "tune" / f"{name}.json")
    mask = render_mask(spec.copy.mask, G.resolution) > 0.5
    rows, cols = np.nonzero(mask)
    box = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
    with torch.no_grad():
        src = to_unit(G(G.latents([spec.copy.sample])))[0]
        before = to_unit(G(G.latents(list(range(2000, 2032)))))
    r0, r1, c0, c1 = box
    obj, alpha = src[r0:r1, c0:c1], mask[r0:r1, c0:c1].astype(float)
    boxes = [box] * len(before)
    paste = structure_transfer(before, _paste(before, obj, alpha, box), obj, alpha, boxes)
    half = structure_transfer(before, _paste(before, obj, alpha, box, 0.5), obj, alpha, boxes)
    mean = obj.reshape(-1, 3).mean(0)
    wash = structure_transfer(before, _paste(before, np.broadcast_to(mean, obj.shape), alpha,
                                             box), obj, alpha, boxes)
    smooth = structure_transfer(before, _paste(before, _box_blur(obj, 8), alpha, box), obj,
                                alpha, boxes)
    assert np.nanmin(paste) > 0.99
    assert 0.4 < np.nanmean(half) < 0.55
    assert np.nanmax(wash) <= 1e-9 and np.nanmean(smooth) < 0.05
