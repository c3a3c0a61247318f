"""FID/KID and masked LPIPS wired into evaluations and the eval / compare-methods commands
(random networks: the exactness of the networks is tested in test_inception / test_lpips)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rewrite.metrics.evaluate import Evaluation, add_standard_metrics
from rewrite.metrics.inception import FIDInception
from rewrite.metrics.lpips import VGG16Features
from rewrite.metrics.standard import load_standard_nets
from rewrite.metrics.weightfiles import ENABLE_HINT

from ..conftest import invoke

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _randomise(module: torch.nn.Module, seed: int) -> dict:
    """A state dict with He-scaled random convs and non-trivial BatchNorm statistics."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for k, t in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = t
        elif t.ndim == 4:
            state[k] = torch.randn(t.shape, generator=gen) * math.sqrt(2 / t[0].numel())
        elif k.endswith("running_var") or k.endswith("bn.weight"):
            state[k] = 1 + 0.1 * torch.rand(t.shape, generator=gen)
        else:
            state[k] = 0.05 * torch.randn(t.shape, generator=gen)
    return state


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    inception = folder / "pt_inception.pth"
    vgg = folder / "vgg16.pth"
    torch.save(_randomise(FIDInception(), 0), inception)
    torch.save({"features." + k: v for k, v in _randomise(VGG16Features(), 1).items()}, vgg)
    return inception, vgg


def _evaluation(label: str, before: np.ndarray, after: np.ndarray, fire: np.ndarray):
    return Evaluation(label, {}, list(range(len(before))), 0.0, fire,
                      np.zeros((len(before), 4, 4)), before, after, {}, None)


def test_add_standard_metrics(tmp_path, monkeypatch, weight_files):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    inet, iid, lnet, notes = load_standard_nets(*weight_files)
    assert notes == []
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    fire = np.zeros((6, 32, 32), bool)
    fire[:3, 8:24, 8:24] = True                          # samples 3-5 are silent
    edited = before.copy()
    edited[:3, 8:24, 8:24] = 255 - edited[:3, 8:24, 8:24]   # change only inside the regions
    same = _evaluation("same", before, before.copy(), fire)
    local = _evaluation("local", before, edited, fire)
    noisy = np.clip(before + rng.normal(0, 40, before.shape), 0, 255).astype(np.uint8)
    everywhere = _evaluation("everywhere", before, noisy, fire)
    add_standard_metrics([same, local, everywhere], inet, lnet, iid, batch_size=4)
    for r in (same, local, everywhere):
        assert set(r.metrics) == {"FID", "KID", "LPIPS outside", "LPIPS, silent samples"}
    # (KID's unbiased estimate of identical sets is not exactly 0: no diagonal in x-x.)
    assert abs(same.metrics["FID"]) < 1e-6 and math.isfinite(same.metrics["KID"])
    assert same.metrics["LPIPS outside"] == 0 and same.metrics["LPIPS, silent samples"] == 0
    assert local.metrics["FID"] > 0
    assert local.metrics["LPIPS, silent samples"] == 0
    assert 0 < local.metrics["LPIPS outside"] < everywhere.metrics["LPIPS outside"]
    assert everywhere.metrics["LPIPS, silent samples"] > 0
    # Features are cached by image content: the before set once, each after set once.
    cached = list((tmp_path / "cache" / "inception" / iid).glob("*.npy"))
    assert len(cached) == 3
    again = _evaluation("again", before, noisy, fire)
    add_standard_metrics([again], inet, None, iid)
    assert again.metrics["FID"] == pytest.approx(everywhere.metrics["FID"], rel=1e-12)
    assert "LPIPS outside" not in again.metrics


def test_hint_without_files(monkeypatch):
    monkeypatch.delenv("REWRITE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("REWRITE_LPIPS_WEIGHTS", raising=False)
    inet, iid, lnet, notes = load_standard_nets(None, None)
    assert inet is None and lnet is None and notes == [ENABLE_HINT]
    assert "--inception-weights" in ENABLE_HINT and "--lpips-weights" in ENABLE_HINT


@pytest.mark.slow
def test_eval_and_compare_methods_report_them(tmp_path, weight_files):
    spec = str(EXAMPLES / "add-sunglasses.json")
    env = {"REWRITE_INCEPTION_WEIGHTS": "", "REWRITE_LPIPS_WEIGHTS": ""}
    proc = invoke("eval", spec, "--seeds", "1000-1015", "--out", str(tmp_path / "a"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "FID/KID and LPIPS not computed: pass --inception-weights" in proc.stdout
    proc = invoke("eval", spec, "--seeds", "1000-1015", "--out", str(tmp_path / "b"),
                  "--inception-weights", str(weight_files[0]),
                  "--lpips-weights", str(weight_files[1]), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "| FID | KID | LPIPS outside | LPIPS, silent samples |" in proc.stdout
    assert '"LPIPS outside"' in (tmp_path / "b" / "metrics.json").read_text()
    env = {"REWRITE_INCEPTION_WEIGHTS": str(weight_files[0]), "REWRITE_LPIPS_WEIGHTS": ""}
    proc = invoke("compare-methods", spec, "--seeds", "1000-1015", "--out", str(tmp_path / "c"),
                  env=env)
    assert proc.returncode == 0, proc.stderr
    assert "| method | FID | KID |" in proc.stdout and "LPIPS not computed" in proc.stdout
    assert proc.stdout.count("finetune-layer") >= 2
    proc = invoke("eval", spec, "--inception-weights", str(tmp_path / "missing.pth"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_weights_with_nan_are_refused_on_load(tmp_path):
    """Issue 24 item 5: a metric weight file with NaN in one tensor is a clear error naming
    the tensor, before any network is built (it was an 'SVD did not converge' traceback)."""
    from rewrite.metrics.weightfiles import load_state
    from rewrite.utils.errors import CheckpointError

    good = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.zeros(4),
            "steps": torch.tensor(3)}
    path = tmp_path / "w.pth"
    torch.save(good, path)
    assert set(load_state(path)) == set(good)
    bad = dict(good)
    bad["conv.weight"] = good["conv.weight"].clone()
    bad["conv.weight"][0, 0, 0, 0] = float("nan")
    torch.save(bad, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"NaN or infinite values in 1 tensor\(s\) \(conv.weight\)"):
        load_state(path)
    assert path.read_bytes() == before
