"""torchrun with two local gloo processes gives the single-process results.

float32 convolutions sum in an order that depends on the thread count, so every
comparison runs both sides with one thread per process (``OMP_NUM_THREADS=1``,
as ``torchrun`` sets it): then each batch is computed identically on both sides
and only the float64 reduction order differs.
"""

import contextlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rewrite.edit.layer_stats import LayerStats, accumulate_layer_stats, stats_cache_path
from rewrite.utils.cache import layer_key

from ..conftest import ROOT, invoke

EXAMPLE = str(ROOT / "examples" / "add-sunglasses.json")


ONE_THREAD = {"OMP_NUM_THREADS": "1"}

# torchrun starts two processes, and every test here loads the real model.
pytestmark = pytest.mark.slow


@contextlib.contextmanager
def one_thread():
    """Run in-process torch work on one thread (as each torchrun process does)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torchrun(*args: str, env: dict | None = None, timeout: float = 300):
    """``torchrun --standalone --nproc-per-node 2 -m rewrite ARGS`` (gloo on CPU)."""
    full = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "rewrite", *args],
                          capture_output=True, text=True, env=full, timeout=timeout, cwd=ROOT)


@pytest.fixture
def cache(tmp_path):
    return {"REWRITE_CACHE": str(tmp_path / "cache")}


def test_statistics_equal_the_single_process_ones(face_model, cache, monkeypatch):
    proc = torchrun("stats", "dcgan-digiface64", "--layer", "main.6", "-n", "450",
                    "--batch-size", "50", env=cache)
    assert proc.returncode == 0, proc.stderr
    assert "on 2 process(es)" in proc.stdout and proc.stdout.count('"layer"') == 1
    monkeypatch.setenv("REWRITE_CACHE", cache["REWRITE_CACHE"])
    two = LayerStats.load(stats_cache_path(layer_key(face_model, "main.6"), "main.6", 450, 0))
    with one_thread():
        one = accumulate_layer_stats(face_model, "main.6", range(450), batch_size=50,
                                     progress=False)
    assert two.keys.count == one.keys.count and two.n_samples == 450
    assert torch.allclose(two.keys.moment(), one.keys.moment(), rtol=1e-12, atol=0)
    assert torch.allclose(two.values.rms(), one.values.rms(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("form", ["--out-dir", "--npz"])
def test_bulk_sampling_is_byte_identical(tmp_path, form, face_model):
    name = "s.npz" if form == "--npz" else "s"
    single, double = tmp_path / "one" / name, tmp_path / "two" / name
    proc = invoke("sample", "--seeds", "0-22", "--batch-size", "4", form, str(single),
                  env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    proc = torchrun("sample", "--seeds", "0-22", "--batch-size", "4", form, str(double))
    assert proc.returncode == 0, proc.stderr
    if form == "--npz":
        assert single.read_bytes() == double.read_bytes()
        data = np.load(double)
        assert data["images"].shape == (23, 64, 64, 3) and list(data["seeds"]) == list(range(23))
        assert not Path(str(double) + ".parts").exists()
    else:
        files = sorted(p.name for p in single.iterdir())
        assert files == sorted(p.name for p in double.iterdir()) and len(files) == 24
        for f in files:
            assert (single / f).read_bytes() == (double / f).read_bytes(), f


def test_bulk_sampling_resumes(tmp_path, face_model):
    out = tmp_path / "s"
    assert invoke("sample", "--seeds", "0-7", "--batch-size", "4", "--out-dir",
                  str(out)).returncode == 0
    first = (out / "000003.png").stat().st_mtime_ns
    proc = torchrun("sample", "--seeds", "0-15", "--batch-size", "4", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "resumed: 2 batch(es)" in proc.stdout
    assert (out / "000003.png").stat().st_mtime_ns == first      # not rendered again
    assert len(list(out.glob("*.png"))) == 16
    assert json.loads((out / "manifest.json").read_text())["seeds"] == list(range(16))


def test_a_failing_rank_fails_the_run(tmp_path):
    proc = torchrun("sample", "--seeds", "0-7", "--npz", str(tmp_path / "x.npz"),
                    env={"REWRITE_TEST_FAIL_RANK": "1"}, timeout=120)
    assert proc.returncode != 0
    assert "[rank 1] error: rank 1 failed on purpose" in proc.stdout + proc.stderr
    assert not (tmp_path / "x.npz").exists()


def test_eval_equals_the_single_process_run(tmp_path, face_model, cache):
    one, two = tmp_path / "one", tmp_path / "two"
    proc = invoke("eval", EXAMPLE, "--seeds", "1000-1023", "--batch-size", "8", "--out",
                  str(one), env={**cache, **ONE_THREAD})
    assert proc.returncode == 0, proc.stderr
    proc = torchrun("eval", EXAMPLE, "--seeds", "1000-1023", "--batch-size", "8", "--out",
                    str(two), "--no-cache", env=cache)
    assert proc.returncode == 0, proc.stderr
    a = json.loads((one / "metrics.json").read_text())
    b = json.loads((two / "metrics.json").read_text())
    for m in (a, b):
        for row in m.values():
            row.pop("seconds")
    # Same batches, same thread count: the figures agree to float64 round-off (numpy's
    # vectorised sums may group terms differently with the arrays' memory alignment).
    assert a.keys() == b.keys()
    for method in a:
        assert a[method].keys() == b[method].keys()
        for key, x in a[method].items():
            y = b[method][key]
            if isinstance(x, float) and isinstance(y, float):
                assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-12), \
                    (method, key, x, y)
            else:
                assert x == y, (method, key, x, y)
    assert (one / "metrics.csv").read_text().count("\n") == (two / "metrics.csv").read_text().count("\n")
