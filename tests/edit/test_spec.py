"""Edit specifications: parsing, validation against a model, the schema, legacy import."""

import base64
import copy
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image

from rewrite.edit.legacy import import_legacy
from rewrite.edit.masks import coverage, encode_png, render_mask
from rewrite.edit.spec import SCHEMA_PATH, EditSpec
from rewrite.utils.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]
#: The examples and the edit benchmark's specs: all must follow the schema and validate.
EXAMPLES = sorted((ROOT / "examples").glob("*.json")) + sorted((ROOT / "benchmarks" / "edits").rglob("*.json"))


@pytest.fixture
def sunglasses():
    return json.loads((Path(__file__).resolve().parents[2] / "examples" /
                       "add-sunglasses.json").read_text())


def test_examples_exist_and_follow_the_schema():
    assert len(EXAMPLES) >= 8
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in EXAMPLES:
        obj = json.loads(path.read_text())
        jsonschema.validate(obj, schema)
        spec = EditSpec.from_json(obj)
        # Round trip: what we write is what we read, and it follows the schema too.
        again = EditSpec.from_json(json.loads(spec.dumps()))
        assert again == spec
        jsonschema.validate(spec.to_json(), schema)


def test_the_shipped_schema_is_generated_from_the_rules():
    """One place per rule: the schema file is what ``rewrite.edit.schema`` derives from the
    spec module's constants (``python -m rewrite.edit.schema`` rewrites it)."""
    from rewrite.edit.schema import spec_schema
    assert json.loads(SCHEMA_PATH.read_text()) == spec_schema()


def test_examples_validate_against_the_face_model(face_model):
    kinds = set()
    for path in EXAMPLES:
        spec = EditSpec.load(path)
        spec.validate_for(face_model)
        kinds.add(spec.kind)
    assert kinds == {"copy-paste", "erase"}


def test_every_problem_is_reported_at_once(sunglasses, face_model):
    bad = copy.deepcopy(sunglasses)
    bad["layer"] = "main.7"
    bad["copy"]["sample"] = -3
    bad["paste"]["mask"] = {"rect": [0, 0, 99, 10]}
    bad["context"][0]["mask"] = {"png": encode_png(np.ones((32, 32)))}
    bad["context"][1]["sample"] = 10 ** 9
    spec = EditSpec.from_json(bad)
    with pytest.raises(SpecError) as err:
        spec.validate_for(face_model)
    msg = str(err.value)
    for needle in ["unknown layer 'main.7'", "copy: sample -3 is out of range",
                   "paste: rect [0, 0, 99, 10]", "PNG mask is 32x32 but the model's images are 64x64",
                   "context[1]: sample 1000000000 is out of range"]:
        assert needle in msg, msg
    assert len(err.value.problems) == 5


def test_structural_problems_are_reported_at_once(sunglasses):
    bad = copy.deepcopy(sunglasses)
    bad["rank"] = 0
    bad["direction"] = "pca"
    bad["solver"] = {"name": "closed-form", "params": {"ridge": "big", "stepz": 3}}
    bad["colour"] = "red"
    del bad["paste"]
    with pytest.raises(SpecError) as err:
        EditSpec.from_json(bad)
    msg = str(err.value)
    for needle in ["unknown field 'colour'", "'rank' must be a positive integer",
                   "'direction' must be one of", "no parameter 'stepz'",
                   "'ridge' must be a float", "needs both 'copy' and 'paste'"]:
        assert needle in msg, msg


def test_unknown_version_is_refused(sunglasses):
    with pytest.raises(SpecError, match="unknown spec version 2"):
        EditSpec.from_json(dict(sunglasses, version=2))
    # A missing or mistyped version is a typo to fix, not a reason to upgrade.
    for version in (None, "1", 1.0, True):
        with pytest.raises(SpecError, match="'version' must be the integer 1"):
            EditSpec.from_json(dict(sunglasses, version=version))


def test_empty_mask_after_resampling(sunglasses, face_model):
    bad = copy.deepcopy(sunglasses)
    bad["context"][2]["mask"] = {"rect": [10, 10, 13, 13]}     # 3x3 px: no 8-px key cell half covered
    with pytest.raises(SpecError, match=r"context\[2\]: the mask on sample 46 is empty at layer "
                                        r"main\.6 .*8x8 key grid"):
        EditSpec.from_json(bad).validate_for(face_model)


def test_rank_beyond_key_channels(sunglasses, face_model):
    bad = dict(sunglasses, rank=300, direction="zca")
    with pytest.raises(SpecError, match="rank 300 exceeds the 256 key channels"):
        EditSpec.from_json(bad).validate_for(face_model)


def test_bad_json_file(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{not json")
    with pytest.raises(SpecError, match="is not valid JSON"):
        EditSpec.load(p)
    with pytest.raises(SpecError, match="not found"):
        EditSpec.load(tmp_path / "missing.json")


def test_masks_render_and_resample():
    rect = render_mask({"rect": [8, 16, 24, 20]}, 32)
    assert rect.sum() == 16 * 4 and rect[16, 8] == 1 and rect[20, 8] == 0
    poly = render_mask({"polygon": [[0, 0], [31, 0], [0, 31]]}, 32)
    assert 400 < poly.sum() < 600
    png = render_mask({"png": encode_png(rect)}, 32)
    assert np.array_equal(png, rect)
    cov = coverage(rect, 8)                           # 4-px cells
    assert cov[4, 2] == 1 and cov[4, 6] == 0 and float(cov.sum()) == 4.0


def _png(mask, mode="RGBA"):
    img = Image.new(mode, mask.shape[::-1], 0)
    if mode == "RGBA":
        img.putalpha(Image.fromarray((mask * 255).astype(np.uint8)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_import_original_tool_edit(face_model):
    m = np.zeros((128, 128), np.float32)                 # masks drawn at another size
    m[48:64, 32:96] = 1
    old = {"object": [32, _png(m)], "paste": [9, _png(m)],
           "key": [[9, _png(m)], [13, _png(m)]]}
    spec = import_legacy(old, "dcgan-digiface64", "main.6", 64, rank=1)
    assert spec.kind == "copy-paste" and spec.copy.sample == 32 and len(spec.context) == 2
    spec.validate_for(face_model)
    assert render_mask(spec.context[0].mask, 64)[24:32, 16:48].min() == 1
    erase = import_legacy({"key": [[29, _png(m)]]}, "dcgan-digiface64", "main.6", 64, rank=2)
    assert erase.kind == "erase" and erase.direction == "zca" and erase.rank == 2
    with pytest.raises(SpecError, match=r"object must be \[sample_index"):
        import_legacy({"object": "x", "paste": [1, _png(m)], "key": []}, "m", "main.6", 64)


def test_defaults_and_the_erase_goal(sunglasses):
    obj = {k: v for k, v in sunglasses.items() if k not in ("rank", "direction", "solver")}
    spec = EditSpec.from_json(obj)
    # The face model's default method was chosen on its tuning frontier; other models keep
    # the constrained solver.
    assert (spec.rank, spec.direction, spec.solver) == (4, "zca", "gated-pair")
    other = EditSpec.from_json({**obj, "model": "stylegan2.pt"})
    assert other.solver == "least-collateral"
    erase = {"version": 1, "model": "m", "layer": "main.3", "kind": "erase",
             "context": [{"sample": 0, "mask": {"rect": [0, 0, 32, 32]}}]}
    assert EditSpec.from_json(erase).erase_goal == "inpaint"
    erase["erase"] = {"goal": "blur"}
    with pytest.raises(SpecError, match="'erase.goal' must be one of"):
        EditSpec.from_json(erase)
    erase["erase"] = {"goal": "zero-units", "units": 4}
    assert EditSpec.from_json(erase).to_json()["erase"] == {"units": 4, "goal": "zero-units"}
