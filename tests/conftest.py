"""Shared test fixtures: the reference files, the real face model, a tiny random DCGAN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rewrite.models import load_model
from rewrite.models.dcgan import DCGANConfig, DCGANGenerator

ROOT = Path(__file__).resolve().parents[1]


def _fixture_candidates() -> list[Path]:
    """Where the shared reference fixtures may be: $REWRITE_FIXTURES, ../shared/fixtures
    next to this checkout, or next to the checkout this one was cloned from."""
    found = []
    if os.environ.get("REWRITE_FIXTURES"):
        found.append(Path(os.environ["REWRITE_FIXTURES"]))
    found.append(ROOT.parent / "shared" / "fixtures")
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "config", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        origin = ""
    if origin and Path(origin).is_dir():
        found.append(Path(origin).resolve().parent / "shared" / "fixtures")
    return found


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The folder holding the shared ``*_reference.npz`` files."""
    for cand in _fixture_candidates():
        if (cand / "dcgan_digiface64_reference.npz").is_file():
            return cand
    pytest.fail("reference fixtures not found; looked in "
                + ", ".join(map(str, _fixture_candidates()))
                + ". Set REWRITE_FIXTURES to the shared/fixtures folder.")


@pytest.fixture(scope="session")
def face_model():
    """The real pretrained dcgan-digiface64 (downloaded and cached by the project's own code)."""
    return load_model("dcgan-digiface64")


def make_tiny_dcgan(seed: int = 0, nz: int = 8, channels=(16, 8, 4, 3)) -> DCGANGenerator:
    """A small DCGAN with random weights and random BatchNorm statistics (32x32 output)."""
    gen = torch.Generator().manual_seed(seed)
    G = DCGANGenerator(DCGANConfig(nz=nz, channels=tuple(channels)))
    with torch.no_grad():
        for name, t in G.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
    return G.eval()


@pytest.fixture
def tiny_dcgan() -> DCGANGenerator:
    return make_tiny_dcgan()


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m rewrite ARGS`` in a subprocess; returns the completed process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "rewrite", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=ROOT)
