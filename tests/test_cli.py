"""The command line, run as a user runs it (subprocess), including the README's demo."""

import numpy as np
import pytest
import torch
from PIL import Image

from rewrite.images import to_uint8

from .conftest import make_tiny_dcgan, run_cli


def _user_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr


def test_demo_command_writes_a_grid_of_real_faces(face_model, tmp_path):
    """The same invocation as `make demo` (README), into a temporary folder."""
    out = tmp_path / "demo_grid.png"
    proc = run_cli("sample", "dcgan-digiface64", "--seeds", "0-31", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    grid = np.asarray(Image.open(out).convert("RGB"))
    # 8 columns x 4 rows of 128-px tiles (64 px scaled by 2), 2-px padding, a label strip.
    assert grid.shape[1] == 8 * 128 + 9 * 2
    with torch.no_grad():
        faces = to_uint8(face_model(face_model.latents([0, 9])))
    label_h = (grid.shape[0] - 5 * 2) // 4 - 128
    tile0 = grid[2 + label_h:2 + label_h + 128:2, 2:2 + 128:2]
    assert np.array_equal(tile0, faces[0])
    y = 2 + (128 + label_h + 2) + label_h
    x = 2 + 1 * (128 + 2)
    assert np.array_equal(grid[y:y + 128:2, x:x + 128:2], faces[1])


def test_layers_and_models_commands(face_model):
    proc = run_cli("layers", "dcgan-digiface64")
    assert proc.returncode == 0, proc.stderr
    assert "main.6" in proc.stdout and "8x8" in proc.stdout and "16x16" in proc.stdout
    proc = run_cli("models")
    assert proc.returncode == 0 and "dcgan-digiface64" in proc.stdout and "MIT" in proc.stdout


def test_sample_from_a_checkpoint_file(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    make_tiny_dcgan().save(ckpt)
    out = tmp_path / "g.png"
    proc = run_cli("sample", str(ckpt), "--seeds", "0,3,5-6", "--out", str(out), "--no-labels",
                   "--scale", "1", "--cols", "4", "--batch-size", "3")
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (4 * 32 + 5 * 2, 32 + 2 * 2)


def test_bad_seed_range():
    _user_error(run_cli("sample", "--seeds", "5-2", "--out", "x.png"), "5-2", "did you mean 2-5")


def test_unknown_model_lists_known_ones():
    _user_error(run_cli("sample", "no-such-model"), "unknown model", "dcgan-digiface64")


def test_broken_checkpoints(tmp_path):
    state = make_tiny_dcgan().checkpoint()["netG_state_dict"]
    del state["main.1.running_mean"]
    torch.save(state, tmp_path / "missing.pt")
    _user_error(run_cli("layers", str(tmp_path / "missing.pt")), "missing keys: main.1.running_mean")

    full = make_tiny_dcgan().checkpoint()
    full["netG_state_dict"]["main.3.weight"] = torch.zeros(16, 5, 4, 4)
    torch.save(full, tmp_path / "shape.pt")
    _user_error(run_cli("layers", str(tmp_path / "shape.pt")), "main.3.weight", "(16, 5, 4, 4)")

    make_tiny_dcgan().save(tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:len(data) // 3])
    _user_error(run_cli("sample", str(tmp_path / "cut.pt"), "--out", str(tmp_path / "o.png")),
                "truncated or corrupt")
    assert not (tmp_path / "o.png").exists()


def test_weights_file_missing():
    _user_error(run_cli("layers", "--weights", "/nonexistent/weights.tar"), "not found")


@pytest.mark.parametrize("args,needle", [(["--out", "grid.jpg"], "must end in .png"),
                                         (["--batch-size", "0"], "--batch-size"),
                                         (["--arch", "nope"], "--arch")])
def test_bad_options(args, needle):
    _user_error(run_cli("sample", *args), needle)
