"""The command line as a user runs it, including the README's demo: in this process through
click's runner (``invoke``), and once as a real ``python -m rewrite`` process (``run_cli``)."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from rewrite.edit import EditSpec, Rewriter
from rewrite.edit.calibrate import firing_samples
from rewrite.utils.images import to_uint8

from .conftest import ROOT, invoke, make_tiny_dcgan, run_cli


def _user_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr


@pytest.mark.slow
def test_python_m_rewrite_runs_as_a_process():
    """The one real process: the entry point `python -m rewrite` (the other tests run the
    same click group in this process)."""
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert "sample" in proc.stdout and "edit" in proc.stdout


@pytest.mark.slow
def test_demo_command_writes_a_grid_of_real_faces(face_model, tmp_path):
    """The same invocation as `make demo` (README), into a temporary folder."""
    out = tmp_path / "demo_grid.png"
    proc = invoke("sample", "dcgan-digiface64", "--seeds", "0-31", "--out", str(out))
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


@pytest.mark.slow
def test_layers_and_models_commands(face_model):
    proc = invoke("layers", "dcgan-digiface64")
    assert proc.returncode == 0, proc.stderr
    assert "main.6" in proc.stdout and "8x8" in proc.stdout and "16x16" in proc.stdout
    proc = invoke("models")
    assert proc.returncode == 0 and "dcgan-digiface64" in proc.stdout and "MIT" in proc.stdout


def test_sample_from_a_checkpoint_file(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    make_tiny_dcgan().save(ckpt)
    out = tmp_path / "g.png"
    proc = invoke("sample", str(ckpt), "--seeds", "0,3,5-6", "--out", str(out), "--no-labels",
                  "--scale", "1", "--cols", "4", "--batch-size", "3")
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (4 * 32 + 5 * 2, 32 + 2 * 2)


def test_bad_seed_range():
    _user_error(invoke("sample", "--seeds", "5-2", "--out", "x.png"), "5-2", "did you mean 2-5")


def test_unknown_model_lists_known_ones():
    _user_error(invoke("sample", "no-such-model"), "unknown model", "dcgan-digiface64")


def test_broken_checkpoints(tmp_path):
    state = make_tiny_dcgan().checkpoint()["netG_state_dict"]
    del state["main.1.running_mean"]
    torch.save(state, tmp_path / "missing.pt")
    _user_error(invoke("layers", str(tmp_path / "missing.pt")), "missing keys: main.1.running_mean")

    full = make_tiny_dcgan().checkpoint()
    full["netG_state_dict"]["main.3.weight"] = torch.zeros(16, 5, 4, 4)
    torch.save(full, tmp_path / "shape.pt")
    _user_error(invoke("layers", str(tmp_path / "shape.pt")), "main.3.weight", "(16, 5, 4, 4)")

    make_tiny_dcgan().save(tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:len(data) // 3])
    _user_error(invoke("sample", str(tmp_path / "cut.pt"), "--out", str(tmp_path / "o.png")),
                "truncated or corrupt")
    assert not (tmp_path / "o.png").exists()


def test_weights_file_missing():
    _user_error(invoke("layers", "--weights", "/nonexistent/weights.tar"), "not found")


@pytest.mark.parametrize("args,needle", [(["--out", "grid.jpg"], "must end in .png"),
                                         (["--batch-size", "0"], "--batch-size"),
                                         (["--arch", "nope"], "--arch")])
def test_bad_options(args, needle):
    _user_error(invoke("sample", *args), needle)


EXAMPLE = str(ROOT / "examples" / "add-sunglasses.json")


def test_stats_command(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    make_tiny_dcgan().save(ckpt)
    env = {"REWRITE_CACHE": str(tmp_path / "cache")}
    first = invoke("stats", str(ckpt), "--layer", "main.6", "-n", "20", env=env)
    assert first.returncode == 0, first.stderr
    assert '"key_dim": 8' in first.stdout and "computed in" in first.stdout
    second = invoke("stats", str(ckpt), "--layer", "main.6", "-n", "20", env=env)
    assert "read from cache" in second.stdout
    _user_error(invoke("stats", str(ckpt), "--layer", "main.7", env=env), "unknown layer")


@pytest.mark.slow
def test_edit_apply_compare_commands(face_model, tmp_path):
    out, delta = tmp_path / "edited.pt", tmp_path / "edit.safetensors"
    proc = invoke("edit", EXAMPLE, "--out", str(out), "--delta", str(delta))
    assert proc.returncode == 0, proc.stderr
    assert "loss" in proc.stdout and out.is_file() and delta.is_file()
    edit_summary = re.search(r"solved with \S+ at \S+: (layer|pixel) loss", proc.stdout)
    assert edit_summary, proc.stdout                        # the summary every solve prints
    again = tmp_path / "again.pt"
    proc = invoke("apply", "dcgan-digiface64", str(delta), "--out", str(again))
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == out.read_bytes()          # same weights, same bytes
    # The exported checkpoint is an ordinary model for every command.
    grid = tmp_path / "g.png"
    assert invoke("sample", str(out), "--seeds", "0-3", "--out", str(grid)).returncode == 0
    cmp_png = tmp_path / "cmp.png"
    proc = invoke("compare", "dcgan-digiface64", EXAMPLE, "--seeds", "100-104", "--out",
                  str(cmp_png), "--scale", "1")
    assert proc.returncode == 0, proc.stderr
    assert edit_summary.group(0) in proc.stdout             # compare prints the same summary
    # ... and on which of the shown samples the rule fires, as the library finds them.
    fires = re.search(r"the rule fires at its place on (\d+) of these 5 samples(?: \(([\d, ]+)\))?",
                      proc.stdout)
    assert fires, proc.stdout
    expected = firing_samples(face_model, Rewriter(face_model, progress=False).prepare(
        EditSpec.load(EXAMPLE)), range(100, 105))
    assert int(fires.group(1)) == len(expected)
    assert (fires.group(2) or "") == ", ".join(map(str, expected))
    pic = np.asarray(Image.open(cmp_png).convert("RGB")).astype(int)
    assert pic.shape[1] == 5 * 64 + 6 * 2
    top, bottom = pic[: pic.shape[0] // 2], pic[pic.shape[0] // 2:]
    assert np.abs(top - bottom).mean() > 1                  # the edited row differs
    # --delta shows the edit `rewrite edit` saved instead of solving again: the same picture
    from_file = tmp_path / "cmp-delta.png"
    proc = invoke("compare", "dcgan-digiface64", EXAMPLE, "--seeds", "100-104", "--out",
                  str(from_file), "--scale", "1", "--delta", str(delta))
    assert proc.returncode == 0, proc.stderr
    assert f"applied {delta} (solved earlier) with " in proc.stdout and "loss" in proc.stdout
    assert "\nsolved with" not in "\n" + proc.stdout
    again_pic = np.asarray(Image.open(from_file).convert("RGB")).astype(int)
    assert again_pic.shape == pic.shape and np.abs(again_pic - pic).mean() < 0.5
    # a delta file of another layer is refused, naming both
    other = json.loads(open(EXAMPLE).read())
    other["layer"] = "main.9"
    other_spec = tmp_path / "other-layer.json"
    other_spec.write_text(json.dumps(other))
    proc = invoke("compare", str(other_spec), "--delta", str(delta), "--out",
                  str(tmp_path / "no.png"))
    assert proc.returncode != 0 and "main.9" in proc.stderr and "main.6" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "no.png").exists()


@pytest.mark.slow
def test_edit_command_bad_inputs(tmp_path):
    spec = json.loads(open(EXAMPLE).read())
    spec["layer"] = "main.8"
    spec["context"][0]["sample"] = -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(spec))
    proc = invoke("edit", str(bad), "--out", str(tmp_path / "x.pt"))
    _user_error(proc, "unknown layer 'main.8'", "context[0]: sample -1 is out of range")
    assert not (tmp_path / "x.pt").exists()
    spec["version"] = 7
    bad.write_text(json.dumps(spec))
    _user_error(invoke("edit", str(bad), "--out", str(tmp_path / "x.pt")), "unknown spec version")
    (tmp_path / "nan.safetensors").write_bytes(b"\x00" * 20)
    _user_error(invoke("apply", "dcgan-digiface64", str(tmp_path / "nan.safetensors"), "--out",
                       str(tmp_path / "y.pt")), "not a readable delta file")


@pytest.mark.slow
def test_import_edit_command(tmp_path, face_model):
    import base64
    import io
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 24, 56, 32))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"key": [[9, url], [13, url]]}))
    out = tmp_path / "spec.json"
    proc = invoke("import-edit", str(old), "--layer", "main.6", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(out.read_text())
    assert spec["kind"] == "erase" and spec["layer"] == "main.6" and len(spec["context"]) == 2


def test_import_edit_with_a_5000_digit_integer_is_a_clean_error(tmp_path):
    old = tmp_path / "old.json"
    old.write_text('{"key": [[' + "9" * 5000 + ', "data:"]]}')
    proc = invoke("import-edit", str(old), "--layer", "main.6", "--out", str(tmp_path / "s.json"))
    _user_error(proc, "'key[0][0]' is an integer of 5000 digits")
    assert not (tmp_path / "s.json").exists()


def test_weights_without_a_model_name_detect_the_family_from_the_content(tmp_path,
                                                                         fixtures_dir):
    """`--weights F.pkl` with MODEL left at its default used to load F.pkl as the default
    model's family (DCGAN: "no DCGAN weights found"); like `rewrite layers F.pkl` it now
    detects the family from the file, and --arch stays the override."""
    pkl = fixtures_dir / "stylegan2ada_tiny64.pkl"
    proc = invoke("layers", "--weights", str(pkl))
    assert proc.returncode == 0, proc.stderr
    assert "b8.conv0" in proc.stdout and "ModulatedConv2d" in proc.stdout
    assert proc.stdout == invoke("layers", str(pkl)).stdout
    out = tmp_path / "nv.png"
    proc = invoke("sample", "--weights", str(pkl), "--seeds", "0-1", "--out", str(out),
                  "--scale", "1", "--no-labels")
    assert proc.returncode == 0, proc.stderr
    assert f"2 samples of {pkl}" in proc.stdout and Image.open(out).size == (2 * 64 + 3 * 2,
                                                                              64 + 2 * 2)
    _user_error(invoke("layers", "--weights", str(pkl), "--arch", "dcgan"), "DCGAN")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch):
    """Issue 24: a bug anywhere below a command reaches the user as one line naming the
    command, with a non-zero exit; --debug lets the exception through."""
    from click.testing import CliRunner

    import rewrite.cli as cli

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero in a reader")

    monkeypatch.setattr("rewrite.models.load_model", broken)    # the commands import it late
    monkeypatch.delenv("REWRITE_DEBUG", raising=False)
    monkeypatch.setattr("sys.argv", ["rewrite", "layers", "some-model"])
    res = CliRunner().invoke(cli.main, ["layers", "some-model"])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert "ZeroDivisionError" in lines[0] and "rewrite layers some-model" in lines[0]
    assert "--debug" in lines[0]
    res = CliRunner().invoke(cli.main, ["--debug", "layers", "some-model"])
    assert isinstance(res.exception, ZeroDivisionError)
