"""Transfer and erase scores on synthetic images whose right answers are known, including
the edits that must not pass: a colour wash, a flat fill, a smear of noise."""

import numpy as np
import pytest

from rewrite.metrics.transfer import (TRANSFER_THRESHOLD, erase_removal,
                                      goal_reproduction, object_transfer, place_box, removed,
                                      transferred)

SKIN = np.array([0.85, 0.65, 0.55])


def skin(rng, shape, texture=0.04):
    """Skin-coloured images [..., 3] with fine texture."""
    return np.clip(SKIN + rng.normal(0, texture, (*shape, 3)), 0, 1)


def textured_object(rng, h, w):
    """A dark, strongly textured object (a stripy 'eye') and a round alpha mask."""
    rows, cols = np.mgrid[:h, :w]
    stripes = 0.15 * np.sin(cols / 1.5)[..., None] + rng.normal(0, 0.05, (h, w, 1))
    obj = np.clip(np.array([0.3, 0.2, 0.15]) + stripes * np.array([1.0, 0.9, 0.8]), 0, 1)
    alpha = (((rows - (h - 1) / 2) / (h / 2)) ** 2 + ((cols - (w - 1) / 2) / (w / 2)) ** 2
             <= 1).astype(float)
    return obj, alpha


# ---------------------------------------------------------------- goal_reproduction

@pytest.fixture
def goal_case():
    """An unedited skin image, and the goal: the same with a textured dark object pasted
    into a box."""
    rng = np.random.default_rng(0)
    unedited = skin(rng, (32, 32))
    obj, alpha = textured_object(rng, 12, 12)
    goal = unedited.copy()
    patch = goal[10:22, 8:20]
    goal[10:22, 8:20] = alpha[..., None] * obj + (1 - alpha[..., None]) * patch
    box = np.zeros((32, 32), bool)
    box[10:22, 8:20] = True
    return unedited, goal, box, rng


def test_goal_reproduction_exact_none_and_halfway(goal_case):
    unedited, goal, box, _ = goal_case
    assert goal_reproduction(unedited, goal, goal, box) == 0
    assert goal_reproduction(unedited, unedited, goal, box) == pytest.approx(1)
    half = goal_reproduction(unedited, 0.5 * unedited + 0.5 * goal, goal, box)
    assert 0.4 < half < 0.8
    # Changes outside the box do not count.
    elsewhere = goal.copy()
    elsewhere[~box] = 0
    assert goal_reproduction(unedited, elsewhere, goal, box) == 0
    assert np.isnan(goal_reproduction(unedited, goal, goal, np.zeros_like(box)))
    assert np.isnan(goal_reproduction(goal, goal, goal, box))


def test_goal_reproduction_penalises_a_smear_and_a_wrong_colour(goal_case):
    unedited, goal, box, rng = goal_case
    smear = unedited + rng.normal(0, 0.1, unedited.shape)
    assert goal_reproduction(unedited, smear, goal, box) > 1
    off = goal.copy()
    off[box] += 0.1
    assert 0.05 < goal_reproduction(unedited, off, goal, box) < 0.5


# ---------------------------------------------------------------- place_box

def test_place_box_inside_and_at_borders():
    assert place_box((16, 16), (8, 6), (32, 32)) == (12, 20, 13, 19)
    assert place_box((1, 2), (8, 6), (32, 32)) == (0, 8, 0, 6)             # shifted down/right
    assert place_box((31, 30), (8, 6), (32, 32)) == (24, 32, 26, 32)       # shifted up/left
    assert place_box((5.6, 20.4), (4, 4), (32, 32)) == (4, 8, 18, 22)      # rounded centre
    assert place_box((3, 30), (40, 6), (32, 32)) == (0, 32, 26, 32)        # too tall: clipped
    for centre in [(0, 0), (31, 31), (-5, 40), (16, 3)]:
        r0, r1, c0, c1 = place_box(centre, (9, 7), (20, 32))
        assert (r1 - r0, c1 - c0) == (9, 7) and r0 >= 0 and r1 <= 20 and c0 >= 0 and c1 <= 32


# ---------------------------------------------------------------- object_transfer

@pytest.fixture
def transfer_case():
    """Four skin samples (one with a rougher texture), a textured dark object, its boxes."""
    rng = np.random.default_rng(1)
    before = skin(rng, (4, 40, 40))
    before[3] = skin(rng, (40, 40), texture=0.12)
    obj, alpha = textured_object(rng, 10, 14)
    boxes = [place_box(c, (10, 14), (40, 40)) for c in [(20, 20), (3, 5), (37, 30), (15, 25)]]
    return before, obj, alpha, boxes, rng


def paste(images, boxes, patches):
    out = images.copy()
    for i, (r0, r1, c0, c1) in enumerate(boxes):
        out[i, r0:r1, c0:c1] = patches[i] if isinstance(patches, list) else patches
    return out


def test_object_transfer_of_exact_paste_and_of_no_change(transfer_case):
    before, obj, alpha, boxes, _ = transfer_case
    after = paste(before, boxes, obj)
    np.testing.assert_allclose(object_transfer(before, after, obj, alpha, boxes), 1)
    np.testing.assert_allclose(object_transfer(before, before, obj, alpha, boxes), 0)
    # Only the alpha-weighted pixels count: junk outside the mask does not matter.
    junk = np.where(alpha[..., None] > 0, obj, 1.0)
    np.testing.assert_allclose(object_transfer(before, paste(before, boxes, junk), obj, alpha,
                                               boxes), 1)
    # A box without a region gives nan and is left out of the rate.
    scores = object_transfer(before, after, obj, alpha, boxes[:3] + [None])
    assert np.isnan(scores[3]) and transferred(scores) == 1.0


def test_object_transfer_rejects_washes_and_smears(transfer_case):
    before, obj, alpha, boxes, rng = transfer_case
    colour = (alpha[..., None] * obj).sum((0, 1)) / alpha.sum()
    patches = [before[i, r0:r1, c0:c1] for i, (r0, r1, c0, c1) in enumerate(boxes)]
    flat = paste(before, boxes, colour)
    shifted = paste(before, boxes, [p + colour - p.mean((0, 1)) for p in patches])
    smear = paste(before, boxes, [p + rng.normal(0, obj.std(), p.shape) for p in patches])
    half = paste(before, boxes, [0.5 * p + 0.5 * obj for p in patches])
    for wash in (flat, shifted):
        scores = object_transfer(before, wash, obj, alpha, boxes)
        assert (scores < TRANSFER_THRESHOLD).all(), scores
        assert transferred(scores) == 0
    assert (object_transfer(before, smear, obj, alpha, boxes) <= 0).all()
    scores = object_transfer(before, half, obj, alpha, boxes)
    assert ((0 < scores) & (scores < 1)).all(), scores
    assert transferred(scores) > 0.5


def test_object_transfer_weighs_colour_below_structure(transfer_case):
    before, obj, alpha, boxes, _ = transfer_case
    colour = (alpha[..., None] * obj).sum((0, 1)) / alpha.sum()
    # The object's structure in the background's colour: mostly, but not fully, transferred.
    patches = [obj - colour + before[i, r0:r1, c0:c1].mean((0, 1))
               for i, (r0, r1, c0, c1) in enumerate(boxes)]
    scores = object_transfer(before, paste(before, boxes, patches), obj, alpha, boxes)
    assert ((TRANSFER_THRESHOLD < scores) & (scores < 0.95)).all(), scores


def test_transferred_rate():
    # A score at the threshold counts (>=, as the efficacy reports); nan is left out.
    assert transferred(np.array([0.5, 0.1, np.nan, 0.3])) == 1.0
    assert transferred(np.array([0.5, 0.09, np.nan, 0.3])) == pytest.approx(2 / 3)
    assert transferred(np.array([0.5, 0.1]), threshold=0.6) == 0
    assert np.isnan(transferred(np.array([np.nan])))


# ---------------------------------------------------------------- erase_removal

@pytest.fixture
def erase_case():
    """Three skin samples with a dark bar; sample 2 has no region marked."""
    rng = np.random.default_rng(2)
    background = skin(rng, (3, 32, 32))
    region = np.zeros((3, 32, 32), bool)
    region[:2, 12:16, 6:26] = True
    before = background.copy()
    before[region] = np.array([0.2, 0.12, 0.1]) + rng.normal(0, 0.03, (region.sum(), 3))
    return background, before, region


def test_erase_removal_of_an_erased_bar(erase_case):
    background, before, region = erase_case
    scores = erase_removal(before, background, region)         # the skin texture put back
    assert (scores[:2] > 0.85).all() and np.isnan(scores[2]), scores
    assert removed(scores) == 1.0
    filled = before.copy()                                     # the bar filled with its
    for i in range(2):                                         # surroundings' mean colour
        around = np.zeros((32, 32), bool)
        around[9:19, 3:29] = True
        filled[i][region[i]] = before[i][around & ~region[i]].mean(0)
    np.testing.assert_allclose(erase_removal(before, filled, region)[:2], 1, atol=1e-12)


def test_erase_removal_of_no_change_and_of_a_darker_bar(erase_case):
    _, before, region = erase_case
    np.testing.assert_allclose(erase_removal(before, before, region)[:2], 0)
    darker = before.copy()
    darker[region] *= 0.5
    scores = erase_removal(before, darker, region)
    assert (scores[:2] < 0).all(), scores
    assert removed(scores) == 0
    # A wash of the whole image moves the bar and its surroundings alike: not an erase.
    washed = np.clip(before + np.array([0.1, -0.05, 0.0]), 0, 1)
    assert (np.abs(erase_removal(before, washed, region)[:2]) < 0.1).all()


def test_erase_removal_looks_only_at_the_ring(erase_case):
    background, before, region = erase_case
    far = before.copy()
    far[:, 21:] = np.array([0.1, 0.3, 0.9])       # a blue block 5 px below the bar
    filled = far.copy()
    near = np.zeros((32, 32), bool)
    near[10:18, 4:28] = True                      # within 2 px of the bar
    for i in range(2):
        filled[i][region[i]] = far[i][near & ~region[i]].mean(0)
    np.testing.assert_allclose(erase_removal(far, filled, region, ring=2)[:2], 1, atol=1e-12)
    # With a wider ring the blue block counts as surroundings and the fill no longer matches.
    assert (erase_removal(far, filled, region, ring=10)[:2] < 0.9).all()


def test_erase_removal_empty_surroundings():
    rng = np.random.default_rng(3)
    before = skin(rng, (1, 8, 8))
    everywhere = np.ones((1, 8, 8), bool)
    assert np.isnan(erase_removal(before, before * 0.5, everywhere)[0])
    assert np.isnan(removed(erase_removal(before, before * 0.5, everywhere)))
