"""`rewrite edit` with a method whose edit no checkpoint can hold (``gated``): refused before
solving when a checkpoint is asked for, written as a delta file when one is."""

import json

import pytest
import torch

from rewrite.edit import Rewriter
from rewrite.edit.delta import load_deltas
from rewrite.models import load_model

from ..conftest import ROOT, invoke

SPEC = ROOT / "benchmarks" / "edits" / "tune" / "add-beard.json"


def _gated_spec(tmp_path, **params):
    d = json.loads(SPEC.read_text())
    d["solver"] = {"name": "gated", "params": params}
    d["stats"] = {**d.get("stats", {}), "samples": 2000}
    path = tmp_path / "gated.json"
    path.write_text(json.dumps(d))
    return path


def test_edit_refuses_a_checkpoint_for_a_gated_edit_before_solving(tmp_path):
    out = tmp_path / "edited.pt"
    res = invoke("edit", str(_gated_spec(tmp_path)), "--out", str(out))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "--delta" in res.stderr and "gated" in res.stderr
    assert "Traceback" not in res.stderr and "solved with" not in res.stdout
    assert not out.exists()


def test_edit_needs_an_output(tmp_path):
    res = invoke("edit", str(SPEC))
    assert res.returncode == 2 and "--out" in res.stderr and "--delta" in res.stderr


@pytest.mark.slow
def test_edit_writes_a_gated_edit_as_a_delta_file_that_applies_again(tmp_path, face_model):
    delta = tmp_path / "edit.safetensors"
    res = invoke("edit", str(_gated_spec(tmp_path, steps=5, examples=4, silent=4, keep=2)),
                 "--delta", str(delta))
    assert res.returncode == 0, res.stderr
    assert "solved with gated at main.6, gated: pixel loss" in res.stdout
    # The share kept, and the silent change it was chosen by, read back from the file.
    (saved,), _ = load_deltas(delta)
    assert 0 < saved.kept_share <= 1.25 and 0 <= saved.silent_change <= 0.008
    assert (f"kept {saved.kept_share:.2f} of the fitted change: its silent change on "
            f"calibration faces {saved.silent_change:.4f}") in res.stdout
    G = load_model("dcgan-digiface64")
    z = G.latents(range(8))
    with torch.no_grad():
        before = G(z)
        session = Rewriter(G, progress=False)
        session.apply_delta_file(delta)
        after = G(z)
        session.reset()
        again = G(z)
    assert float((after - before).abs().amax()) > 0
    assert torch.equal(again, before)


# -- `rewrite sample --delta`: how a gated edit is seen from the command line ---------------------
def test_sample_refuses_a_damaged_delta_file_and_writes_nothing(tmp_path):
    bad = tmp_path / "edit.safetensors"
    bad.write_bytes(b"not a delta file")
    out = tmp_path / "grid.png"
    res = invoke("sample", "--delta", str(bad), "--seeds", "0-3", "--out", str(out))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "delta file" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists() and bad.read_bytes() == b"not a delta file"


def test_sample_will_not_write_over_its_delta_file(tmp_path):
    delta = tmp_path / "edit.safetensors"
    delta.write_bytes(b"kept")
    res = invoke("sample", "--delta", str(delta), "--seeds", "0-3", "--npz", str(delta))
    assert res.returncode == 2 and delta.read_bytes() == b"kept", res.stderr


@pytest.mark.slow
def test_sample_renders_the_model_with_a_gated_delta_file_applied(tmp_path, face_model):
    """The samples written with --delta are the edited model's (the same images as the edit
    applied in this process, up to a rounding level) and not the unedited model's."""
    delta = tmp_path / "edit.safetensors"
    res = invoke("edit", str(_gated_spec(tmp_path, steps=5, examples=4, silent=4, keep=2)),
                 "--delta", str(delta))
    assert res.returncode == 0, res.stderr
    edited, plain = tmp_path / "edited.npz", tmp_path / "plain.npz"
    res = invoke("sample", "--delta", str(delta), "--seeds", "0-7", "--npz", str(edited))
    assert res.returncode == 0, res.stderr
    assert "1 edit(s) from edit.safetensors" in res.stdout
    assert invoke("sample", "--seeds", "0-7", "--npz", str(plain)).returncode == 0
    import numpy as np

    from rewrite.utils.images import to_uint8

    G = load_model("dcgan-digiface64")
    session = Rewriter(G, progress=False)
    session.apply_delta_file(delta)
    with torch.no_grad():
        want = to_uint8(G(G.latents(range(8))))
    got = np.load(edited)["images"]
    # Another process may sum in another order: a pixel can round to the next level, no more.
    assert got.shape == want.shape
    assert int(np.abs(got.astype(int) - want.astype(int)).max()) <= 1
    unedited = np.load(plain)["images"]
    assert float(np.abs(got.astype(int) - unedited.astype(int)).mean()) > 0.05
