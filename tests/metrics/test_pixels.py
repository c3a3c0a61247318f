"""Metric functions on inputs with known answers."""

import numpy as np
import pytest

from rewrite.metrics.distributions import fid, frechet_distance, kid
from rewrite.metrics.pixels import colour_shift, efficacy, mean_change, pixel_change, psnr


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (4, 16, 16, 3))


def test_identical_images_change_nothing(images):
    everywhere = np.ones(images.shape[:3], bool)
    assert mean_change(images, images, everywhere) == 0
    assert psnr(images, images, everywhere) == float("inf")
    assert efficacy(images, images, everywhere) == 0


def test_change_confined_to_a_box(images):
    after = images.copy()
    after[1:3, 4:8, 4:8] += 0.2
    box = np.zeros(images.shape[:3], bool)
    box[1:3, 4:8, 4:8] = True
    assert mean_change(images, after, box) == pytest.approx(0.2)
    assert mean_change(images, after, ~box) == 0
    assert psnr(images, after, box) == pytest.approx(10 * np.log10(1 / 0.04))
    assert psnr(images, after, ~box) == float("inf")
    # Samples 1 and 2 changed inside their box; 0 and 3 have an empty mask and do not count.
    assert efficacy(images, after, box, threshold=0.1) == 1.0
    assert efficacy(images, after, box, threshold=0.3) == 0.0
    assert np.isnan(mean_change(images, after, np.zeros_like(box)))
    assert pixel_change(images, after).shape == (4, 16, 16)


def test_colour_shift_toward_a_target():
    before = np.zeros((2, 4, 4, 3))
    after = before.copy()
    after[0] = 0.5                              # sample 0 moves halfway to white
    mask = np.ones((2, 4, 4), bool)
    gain, closer = colour_shift(before, after, mask, np.ones(3))
    assert gain == pytest.approx(np.sqrt(3) * 0.5 / 2)
    assert closer == 0.5


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    c1, c2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T      # commuting covariances
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(want, rel=1e-9)
    assert frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0, abs=1e-9)


def test_fid_and_kid_on_samples():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 3))
    assert fid(x, x) == pytest.approx(0, abs=1e-8)
    y = rng.normal(size=(4000, 3))
    shifted = y + np.array([1.0, 0, 0])
    assert fid(x, y) < 0.01
    assert fid(x, shifted) == pytest.approx(1.0, abs=0.1)
    assert abs(kid(x, y)) < 0.01 and kid(x, shifted) > 0.1


def test_kid_of_point_masses():
    u, v = np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    x, y = np.repeat(u, 5, 0), np.repeat(v, 7, 0)
    k = lambda p, q: (p @ q / 2 + 1) ** 3                     # noqa: E731
    want = k(u[0], u[0]) + k(v[0], v[0]) - 2 * k(u[0], v[0])
    assert kid(x, y) == pytest.approx(want)
