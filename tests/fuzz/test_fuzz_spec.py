"""Fuzz of the edit-spec reader (``EditSpec.load`` = the CLI's loader, then
``validate_for``): structural mutations of valid specs and byte damage of their text give a
SpecError (or another RewriteError) or a spec that validates and round-trips; never another
exception, never a changed file."""

import base64
import io
import json
import math

from hypothesis import event, given
from PIL import Image

from rewrite.edit.spec import EditSpec
from rewrite.utils.errors import RewriteError

from ..conftest import make_tiny_dcgan
from ._contract import fuzz, _paths, mutated_bytes, mutated_json, reader_contract, write_input

G = make_tiny_dcgan()             # 32x32 images; main.3: 16 key channels, 8 units


def _png(size: int = 32) -> str:
    img = Image.new("L", (size, size))
    img.paste(255, (8, 8, 24, 20))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


#: Valid specs for the tiny model, between them using every field of the format.
BASES = [
    {"format": "rewrite.edit", "version": 1, "name": "copy", "description": "fuzz base",
     "model": "tiny", "layer": "main.3", "kind": "copy-paste", "rank": 2, "direction": "zca",
     "solver": {"name": "least-collateral", "params": {"budget": 0.02}},
     "stats": {"samples": 100, "seed": 1},
     "copy": {"sample": 3, "mask": {"rect": [4, 10, 28, 16]}},
     "paste": {"sample": 1, "mask": {"polygon": [[4, 10], [28, 10], [16, 20]]}},
     "context": [{"sample": 1, "mask": {"rect": [0, 8, 32, 24]}},
                 {"sample": 5, "mask": {"png": _png()}}],
     "preserve": [{"sample": 7, "mask": {"rect": [0, 0, 32, 8]}}], "preserve_weight": 4.0,
     "strength": 0.5},
    {"format": "rewrite.edit", "version": 1, "model": "tiny", "layer": "main.6",
     "kind": "copy-paste", "rank": 1, "direction": "mean", "solver": "adam",
     "copy": {"sample": 0, "mask": {"rect": [0, 0, 16, 16]}},
     "paste": {"sample": 2, "offset": [3, -2]}, "context": []},
    {"format": "rewrite.edit", "version": 1, "model": "tiny", "layer": "main.3",
     "kind": "erase", "rank": 3, "solver": {"name": "dissect-erase", "params": {}},
     "erase": {"units": 4, "goal": "zero-units"}, "sampling": {"truncation": 1.0},
     "context": [{"sample": 9, "mask": {"rect": [0, 8, 32, 24]}}]},
]


def test_the_bases_are_valid():
    for base in BASES:
        spec = EditSpec.from_json({k: v for k, v in base.items() if k != "sampling"})
        spec.validate_for(G)
        assert EditSpec.from_json(spec.to_json()) == spec


def _check_spec(spec: EditSpec) -> None:
    """A spec that parsed: validating it against the model is a RewriteError or passes;
    one that passes holds only finite numbers and round-trips through its JSON."""
    try:
        spec.validate_for(G)
    except RewriteError as e:
        assert str(e).strip()
        event("validate_for: refused")
        return
    event("validate_for: valid")
    for _, v in _paths(spec.to_json()):
        assert not (isinstance(v, float) and not math.isfinite(v)), (v, spec)
    assert EditSpec.from_json(json.loads(spec.dumps())) == spec


@fuzz(400)
@given(obj=mutated_json(BASES))
def test_mutated_specs(obj, tmp_path_factory):
    text = json.dumps(obj)
    path = write_input(tmp_path_factory, text.encode("utf-8", "surrogatepass"), "spec.json")
    spec = reader_contract(EditSpec.load, path)
    # The same object from Python (the app's path) gives the same outcome, and is unchanged.
    try:
        direct = EditSpec.from_json(obj)
    except RewriteError:
        direct = None
    assert json.dumps(obj) == text, "from_json changed the object it was given"
    assert (spec is None) == (direct is None)
    if spec is not None:
        _check_spec(spec)


@fuzz(200)
@given(data=mutated_bytes(json.dumps(BASES[0], indent=2).encode()))
def test_damaged_spec_text(data, tmp_path_factory):
    path = write_input(tmp_path_factory, data, "spec.json")
    spec = reader_contract(EditSpec.load, path)
    if spec is not None:
        _check_spec(spec)
