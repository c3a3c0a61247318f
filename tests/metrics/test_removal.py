"""``clean_removal``: is an erased object replaced by what object-free faces hold there? On
images whose right answers are known (the face without the object, a half removal) and on
the removals that must not pass (a flat fill of the surroundings' colour, grey, a heavy
blur, the object half blended with grey, noise), on synthetic faces and on the face model's
own faces with its own glasses and caps pasted in."""

import numpy as np
import pytest
import torch

from rewrite.metrics.removal import (
    RING,
    bank_reference,
    clean_removal,
    reference_bank,
    region_features,
    similarity,
)
from rewrite.metrics.structure import _box_blur
from rewrite.metrics.transfer import _dilate
from rewrite.utils.images import to_unit

EYES = (10, 17)  # rows of the synthetic faces' eye band (32 x 32 images)


def synthetic_faces(rng, n, size=32):
    """``n`` roughly aligned cartoon faces [n, size, size, 3]: skin of varying tone and
    light, two dark eyes under brows and a mouth, each a pixel or two off, fine texture."""
    rows, cols = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        skin = np.array([0.85, 0.65, 0.55]) * rng.uniform(0.5, 1.1) + rng.normal(0, 0.03, 3)
        face = np.broadcast_to(skin, (size, size, 3)).copy()
        face += rng.normal(0, 0.02, face.shape)
        dr, dc, gap = rng.integers(-1, 2), rng.integers(-1, 2), rng.integers(6, 9)
        for side in (-1, 1):
            r, c = 13 + dr, 16 + dc + side * gap
            eye = ((rows - r) / 1.6) ** 2 + ((cols - c) / 2.4) ** 2 <= 1
            face[eye] = face[eye] * 0.25 + np.array([0.1, 0.07, 0.06])
            brow = (rows == r - 3) & (np.abs(cols - c) <= 3)
            face[brow] *= 0.45
        mouth = (rows == 24 + dr) & (np.abs(cols - 16 - dc) <= 4)
        face[mouth] = face[mouth] * 0.5 + np.array([0.2, 0.0, 0.0])
        out.append(np.clip(face, 0, 1))
    return np.stack(out)


def glasses_on(faces, rng):
    """The faces with dark-framed, tinted glasses over the eye band (a different frame
    colour per face)."""
    out = faces.copy()
    size = faces.shape[1]
    band = np.zeros((size, size), bool)
    band[EYES[0] : EYES[1], 3:29] = True
    frame = band.copy()
    frame[EYES[0] + 1 : EYES[1] - 1, 4:15] = False
    frame[EYES[0] + 1 : EYES[1] - 1, 17:28] = False
    for x in out:
        x[frame] = np.array([0.1, 0.1, 0.12]) + rng.uniform(0, 0.15, 3)
        lens = band & ~frame
        x[lens] = 0.6 * x[lens] + 0.4 * np.array([0.2, 0.25, 0.3])
    return out, np.broadcast_to(band, faces.shape[:3]).copy()


def fill(images, region, colours):
    """``images`` with ``region`` [N, H, W] filled by ``colours(i)`` ([3] or [P, 3])."""
    out = images.copy()
    for i in range(len(out)):
        out[i][region[i]] = colours(i)
    return out


def smears(before, clean, region):
    """The removals that must not pass, and the half removal, by name."""
    ring = _dilate(region, RING) & ~region
    rng = np.random.default_rng(7)
    surround = fill(before, region, lambda i: before[i][ring[i]].mean(0))
    return {
        "surroundings' colour": surround,
        "grey": fill(before, region, lambda i: 0.5),
        "heavy blur": fill(before, region, lambda i: _box_blur(before[i], 8)[region[i]]),
        "half grey": fill(before, region, lambda i: 0.5 * before[i][region[i]] + 0.25),
        "surroundings' colour and noise": np.clip(
            surround + region[..., None] * rng.normal(0, 0.05, before.shape), 0, 1
        ),
    }


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    bank = synthetic_faces(rng, 64)
    clean = synthetic_faces(rng, 24)
    before, region = glasses_on(clean, rng)
    return bank, clean, before, region


# -- the pieces ---------------------------------------------------------------------------------
def test_similarity_is_one_only_for_the_same_vector_and_zero_for_nothing():
    a = np.random.default_rng(1).normal(size=(3, 20))
    s = similarity(a, np.concatenate([a, -a, 2 * a, np.zeros_like(a)]))
    np.testing.assert_allclose(np.diag(s[:, :3]), 1)
    np.testing.assert_allclose(np.diag(s[:, 3:6]), -1)
    np.testing.assert_allclose(np.diag(s[:, 6:9]), 0.8)          # 2 * 2 / (1 + 4)
    np.testing.assert_allclose(s[:, 9:], 0)
    assert similarity(np.zeros((1, 4)), np.zeros((1, 4)))[0, 0] == 0


def test_features_of_a_flat_fill_of_the_ring_colour_are_zero(case):
    _, _, before, region = case
    ring = _dilate(region[:1], RING)[0] & ~region[0]
    flat = fill(before[:1], region[:1], lambda i: before[0][ring].mean(0))
    assert np.abs(region_features(flat, region[0])).max() < 1e-12


def test_features_ignore_the_lighting_and_the_skin_tone(case):
    _, clean, _, region = case
    x = clean[:4]
    dimmer = 0.6 * x + np.array([0.05, 0.1, 0.0])                # a gain and a colour offset
    np.testing.assert_allclose(region_features(dimmer, region[0]),
                               region_features(x, region[0]), atol=1e-9)


def test_typical_match_is_high_among_alike_faces(case):
    bank, _, _, region = case
    _, typical = bank_reference(bank, region[0])
    assert 0.5 < typical < 1


# -- what must score high, and what must not pass -----------------------------------------------
def test_clean_removal_scores_high_and_nothing_scores_without_change(case):
    bank, clean, before, region = case
    scores = clean_removal(before, clean, region, bank)
    assert np.isfinite(scores).mean() > 0.8, scores
    assert np.nanmean(scores) > 0.5 and np.nanmin(scores) > 0, scores
    np.testing.assert_array_equal(
        clean_removal(before, before, region, bank)[np.isfinite(scores)], 0
    )


def test_half_a_removal_scores_between(case):
    bank, clean, before, region = case
    half = np.where(region[..., None], 0.5 * before + 0.5 * clean, before)
    full = np.nanmean(clean_removal(before, clean, region, bank))
    score = np.nanmean(clean_removal(before, half, region, bank))
    assert 0.1 < score < full - 0.2, (score, full)


def test_smears_score_clearly_below_a_clean_removal(case):
    bank, clean, before, region = case
    full = np.nanmean(clean_removal(before, clean, region, bank))
    for name, after in smears(before, clean, region).items():
        score = np.nanmean(clean_removal(before, after, region, bank))
        assert score < min(0.3, full - 0.4), (name, score, full)


def test_a_fill_of_the_surroundings_colour_never_scores_above_zero(case):
    bank, clean, before, region = case
    after = smears(before, clean, region)["surroundings' colour"]
    scores = clean_removal(before, after, region, bank)
    assert np.isfinite(scores).any() and np.nanmax(scores) <= 1e-9, scores


def test_a_change_of_light_over_the_whole_image_changes_nothing(case):
    bank, clean, before, region = case
    relit = np.clip(0.7 * clean + np.array([0.08, 0.03, 0.0]), 0, 1)
    np.testing.assert_allclose(clean_removal(before, relit, region, bank),
                               clean_removal(before, clean, region, bank), atol=1e-9)


# -- what cannot be judged ----------------------------------------------------------------------
def test_nan_without_a_region_a_ring_a_bank_or_an_object(case):
    bank, clean, before, region = case
    assert np.isnan(clean_removal(before, clean, np.zeros_like(region), bank)).all()
    assert np.isnan(clean_removal(before, clean, np.ones_like(region), bank)).all()
    assert np.isnan(clean_removal(before, clean, region, bank[:1])).all()
    # Faces without the object, already as object-free as the bank's own members.
    assert np.isnan(clean_removal(bank[:8], bank[:8], region[:8], bank)).all()


# -- the face model's own faces and objects -----------------------------------------------------
#: Faces 0-255 wearing glasses, and wearing a hat, cap, band or scarf on the head (by eye);
#: the banks leave them out, as the evaluation's bank (the samples where the rule never
#: fires) leaves out the faces with the object.
GLASSES = [0, 4, 10, 18, 19, 20, 21, 22, 23, 29, 32, 40, 59, 61, 68, 69, 72, 74, 75, 80, 84, 96,
           99, 101, 104, 105, 114, 116, 119, 128, 135, 139, 150, 157, 160, 165, 167, 183, 189, 244]
HEADWEAR = [12, 17, 35, 41, 43, 45, 51, 56, 73, 75, 87, 91, 95, 119, 120, 121, 129, 130, 131,
            145, 149, 158, 171, 177, 194, 199, 203, 211, 213, 222, 224, 226, 228, 230, 236, 241,
            248, 250, 253]
#: Faces without glasses or anything on the head (by eye), to paste the objects into.
TARGETS = [257, 261, 266, 268, 269, 271, 282, 283, 287, 288, 289, 290, 296, 301, 302, 304, 307,
           311, 318, 320, 323, 330, 336, 355]
#: Objects: (the face wearing it, its rows r0:r1 and columns c0:c1, the faces to leave out).
OBJECTS = {"glasses": (59, (20, 36, 8, 60), GLASSES), "cap": (43, (0, 24, 4, 60), HEADWEAR)}


@pytest.fixture(scope="module")
def faces(face_model):
    G = face_model
    seeds = list(range(256)) + TARGETS
    with torch.no_grad():
        return dict(zip(seeds, to_unit(G(G.latents(seeds))), strict=True))


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_on_faces_the_face_without_the_object_scores_high_and_smears_do_not(faces, name):
    source, (r0, r1, c0, c1), wearing = OBJECTS[name]
    bank = np.stack([faces[i] for i in range(256) if i not in wearing])
    clean = np.stack([faces[i] for i in TARGETS])
    region = np.zeros(clean.shape[:3], bool)
    region[:, r0:r1, c0:c1] = True
    before = np.where(region[..., None], faces[source][None], clean)
    scores = clean_removal(before, clean, region, bank)
    full = np.nanmean(scores)
    assert np.isfinite(scores).mean() > 0.6 and full > 0.6, scores
    half = np.nanmean(clean_removal(before, 0.5 * before + 0.5 * clean, region, bank))
    assert 0.2 < half < full - 0.2, (half, full)
    for smear, after in smears(before, clean, region).items():
        score = np.nanmean(clean_removal(before, after, region, bank))
        assert score < min(0.4, full - 0.35), (smear, score, full)
    surround = smears(before, clean, region)["surroundings' colour"]
    assert np.nanmax(clean_removal(before, surround, region, bank)) <= 1e-9


def test_evaluate_reports_clean_removal_for_an_erase(face_model):
    """The evaluation's figures are this module's scores on its own firing samples, against
    the unedited samples where the rule never fires and responds least."""
    from rewrite.edit import EditSpec
    from rewrite.metrics.evaluate import evaluate

    from ..conftest import ROOT

    r = evaluate(face_model, EditSpec.load(ROOT / "examples" / "remove-glasses.json"),
                 list(range(1000, 1064)), progress=False)
    b, a = r.before / 255.0, r.after / 255.0
    firing = r.fire.any((1, 2))
    assert 0 < firing.sum() < len(firing)
    bank = reference_bank(r.fire, r.response.reshape(len(b), -1).max(1))
    assert bank.sum() > 1 and not (bank & firing).any()
    want = clean_removal(b[firing], a[firing], r.fire[firing], b[bank])
    np.testing.assert_allclose(r.metrics["clean removal"], np.nanmean(want))
    assert r.metrics["clean removal judged"] == np.isfinite(want).sum()
    assert "erase removal" in r.metrics and "matched clean removal" in r.metrics


def test_reference_bank_is_silent_and_below_the_median_response():
    fire = np.zeros((6, 4, 4), bool)
    fire[5, 1, 1] = True
    peak = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 1.0])
    np.testing.assert_array_equal(reference_bank(fire, peak), [1, 0, 1, 0, 1, 0])
    fire[0, 0, 0] = True                                         # fires: not in the bank
    np.testing.assert_array_equal(reference_bank(fire, peak), [0, 0, 1, 0, 1, 0])
