"""Crafted or misnamed files: a PNG bomb as a mask, a binary legacy edit, files named
after the wrong format (in-process)."""

import base64
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

from rewrite.cli import main
from rewrite.edit.masks import decode_png, mask_problems
from rewrite.models import load_model
from rewrite.models.checkpoint_file import load_checkpoint_file
from rewrite.utils.errors import EditError

from ..conftest import make_tiny_dcgan

ROOT = Path(__file__).resolve().parents[2]


def _png_url(width, height) -> str:
    buf = io.BytesIO()
    Image.new("L", (width, height)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("side, message", [
    (12000, "declares 12000x12000 pixels"),          # below Pillow's own limit: ours
    (20000, "more pixels than can be decoded safely"),  # above it: Pillow's, reworded
])
def test_a_png_bomb_mask_is_refused_before_decoding(side, message):
    bomb = _png_url(side, side)                # a small file declaring 144-400 megapixels
    assert len(bomb) < 2_000_000
    with pytest.raises(EditError, match=message):
        decode_png(bomb)
    assert "declares" in mask_problems({"png": bomb}, 64)[0]


@pytest.mark.slow          # the spec is checked against the real model
def test_a_png_bomb_in_a_spec_is_a_clear_cli_error(tmp_path):
    spec = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
    spec["copy"]["mask"] = {"png": _png_url(20000, 20000)}
    path = tmp_path / "bomb.json"
    path.write_text(json.dumps(spec))
    res = CliRunner().invoke(main, ["edit", str(path), "--out", str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "declares more pixels than can be decoded" in res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)


def test_a_binary_legacy_edit_is_a_clear_error(tmp_path):
    old = tmp_path / "old.json"
    old.write_bytes(bytes(range(256)) * 4)
    res = CliRunner().invoke(main, ["import-edit", str(old), "--layer", "main.6",
                                    "--out", str(tmp_path / "new.json")])
    assert res.exit_code == 2 and "cannot read" in res.output
    assert not (tmp_path / "new.json").exists()


def test_files_load_by_content_whatever_their_name(tmp_path):
    G = make_tiny_dcgan()
    state = {k: v.contiguous() for k, v in G.state_dict().items()}
    save_file(state, tmp_path / "weights.safetensors")
    shutil.copy(tmp_path / "weights.safetensors", tmp_path / "renamed.pt")
    loaded = load_checkpoint_file(tmp_path / "renamed.pt")     # not refused as a pickle
    assert set(loaded) == set(state) and torch.equal(loaded["main.0.weight"], state["main.0.weight"])
    # A PyTorch checkpoint named .safetensors (what `rewrite edit --out x.safetensors`
    # writes) loads as the model it is.
    G.save(tmp_path / "edited.safetensors")
    z = G.latents([0, 1])
    assert torch.equal(load_model(str(tmp_path / "edited.safetensors"))(z), G(z))
