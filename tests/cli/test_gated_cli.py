"""`rewrite edit` with a method whose edit no checkpoint can hold (``gated``): refused before
solving when a checkpoint is asked for, written as a delta file when one is."""

import json

import pytest
import torch

from rewrite.edit import Rewriter
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
