"""The JSON Schema and the spec parser agree: every bound and cross-field rule that
``EditSpec.from_json`` enforces is in ``spec_schema()``, and the schema refuses nothing the
parser takes (within what the parser checks without a model: masks and sample numbers are
checked against the model by ``validate_for``, so they are left alone here).

One difference is by definition and kept out of the cases: JSON Schema counts ``2.0`` as an
integer, the parser wants an integer written ``2``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewrite.edit.methods import METHODS, PARAM_LIMITS
from rewrite.edit.schema import MAX_STATS_SEED, spec_schema
from rewrite.edit.spec import (
    MAX_PRESERVE_WEIGHT,
    MAX_SPEC_INT,
    MAX_STATS_SAMPLES,
    MAX_STRENGTH,
    EditSpec,
)
from rewrite.utils.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]
COPY_PASTE = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
ERASE = json.loads((ROOT / "examples" / "remove-glasses.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(spec_schema())


def _parser_takes(obj) -> tuple[bool, list[str]]:
    try:
        EditSpec.from_json(copy.deepcopy(obj))
    except SpecError as e:
        return False, e.problems
    return True, []


def _agree(obj) -> None:
    schema_errors = [e.message for e in VALIDATOR.iter_errors(obj)]
    takes, problems = _parser_takes(obj)
    assert takes == (not schema_errors), (
        f"schema {'refuses' if schema_errors else 'takes'} and parser "
        f"{'takes' if takes else 'refuses'}: {json.dumps(obj)[:400]}\n"
        f"schema: {schema_errors[:3]}\nparser: {problems}")


def _with(base: dict, path: str, value) -> dict:
    """``base`` with the field at dotted ``path`` set (objects on the way are created)."""
    obj = copy.deepcopy(base)
    *outer, last = path.split(".")
    node = obj
    for key in outer:
        node = node.setdefault(key, {})
    node[last] = value
    return obj


#: (field, smallest, largest, integer?) of every bounded number the parser checks.
BOUNDS = [
    ("rank", 1, MAX_SPEC_INT, True),
    ("stats.samples", 1, MAX_STATS_SAMPLES, True),
    ("stats.seed", 0, MAX_STATS_SEED, True),
    ("strength", 0, MAX_STRENGTH, False),
    ("preserve_weight", None, MAX_PRESERVE_WEIGHT, False),      # above 0
    ("sampling.truncation", 0, 1, False),
    ("sampling.class", 0, MAX_SPEC_INT, True),
]


def _around(lo, hi, integer: bool) -> list:
    step = 1 if integer else 1e-6
    values = [hi, hi + step, (lo if lo is not None else 0) + step]
    values += [lo, lo - step] if lo is not None else [0, -step]
    return values


@pytest.mark.parametrize("field,lo,hi,integer", BOUNDS, ids=[b[0] for b in BOUNDS])
def test_schema_and_parser_agree_at_every_bound(field, lo, hi, integer):
    for value in _around(lo, hi, integer):
        _agree(_with(COPY_PASTE, field, value))
    base = ERASE if field.startswith("erase") else COPY_PASTE
    _agree(_with(base, field, "1"))
    _agree(_with(base, field, True))


def test_stats_bounds_are_in_the_schema():
    """Issue 25's drift: the schema had no bound on stats.samples and no range for stats.seed."""
    stats = spec_schema()["properties"]["stats"]["properties"]
    assert stats["samples"]["maximum"] == MAX_STATS_SAMPLES and stats["samples"]["minimum"] == 1
    assert (stats["seed"]["minimum"], stats["seed"]["maximum"]) == (0, 2 ** 32 - 1)
    for seed, ok in ((2 ** 32 - 1, True), (2 ** 32, False), (-1, False)):
        obj = _with(COPY_PASTE, "stats.seed", seed)
        assert VALIDATOR.is_valid(obj) is ok and _parser_takes(obj)[0] is ok
    for samples, ok in ((MAX_STATS_SAMPLES, True), (MAX_STATS_SAMPLES + 1, False), (0, False)):
        obj = _with(COPY_PASTE, "stats.samples", samples)
        assert VALIDATOR.is_valid(obj) is ok and _parser_takes(obj)[0] is ok


def test_erase_units_and_wide_integers():
    for units in (0, 1, MAX_SPEC_INT, MAX_SPEC_INT + 1, -1):
        _agree(_with(ERASE, "erase.units", units))
    for offset in ([3, -2], [MAX_SPEC_INT, -MAX_SPEC_INT], [MAX_SPEC_INT + 1, 0], [1], [1, "2"]):
        obj = copy.deepcopy(COPY_PASTE)
        obj["paste"] = {"sample": 9, "offset": offset}
        _agree(obj)


@pytest.mark.parametrize("method", list(METHODS))
def test_schema_and_parser_agree_on_each_solvers_parameters(method):
    kind_base = COPY_PASTE if "copy-paste" in METHODS[method].kinds else ERASE
    base = {**kind_base, "solver": {"name": method, "params": {}}}
    _agree(base)
    _agree({**base, "solver": {"name": method, "params": {"no_such_param": 1}}})
    for f in dataclasses.fields(METHODS[method].params):
        limit = PARAM_LIMITS.get(f.name)
        if isinstance(f.default, bool):
            values = [True, False, 1, "yes"]
        elif isinstance(f.default, int):
            values = [0, -1, 3, 2.5, "3"] + ([limit, limit + 1] if limit else [MAX_SPEC_INT])
        else:
            values = [0, 0.5, -1e-9, "0.1", True] + ([limit, limit + 1e-6] if limit else [1e300])
        for value in values:
            _agree({**base, "solver": {"name": method, "params": {f.name: value}}})


def test_cross_field_rules_agree():
    mean = {**COPY_PASTE, "direction": "mean"}
    for rank in (1, 2, None):
        obj = {k: v for k, v in mean.items() if k != "rank"}
        if rank is not None:
            obj["rank"] = rank
        _agree(obj)
    # A method's kinds: finetune-all copies, dissect-erase erases.
    _agree({**ERASE, "solver": {"name": "finetune-all"}})
    _agree({**COPY_PASTE, "solver": {"name": "dissect-erase"}})
    _agree({**ERASE, "solver": "dissect-erase"})                 # the short form
    _agree({**COPY_PASTE, "solver": "no-such-solver"})
    # "Not here" regions: layer solvers only; a spec naming no solver gets its model's default.
    preserve = [{"sample": 112, "mask": {"rect": [0, 0, 64, 20]}}]
    for solver in ({"name": "least-collateral"}, {"name": "example-fit"}, {}, None,
                   {"params": {"budget": 0.02}}, {"params": {"steps": 5}}):
        for model in ("dcgan-digiface64", "some/other.pkl"):
            obj = {**COPY_PASTE, "model": model, "preserve": preserve}
            obj.pop("solver")
            if solver is not None:
                obj["solver"] = solver
            _agree(obj)
            _agree({**obj, "preserve": []})
    # Kinds and the selections each needs.
    _agree({**ERASE, "copy": COPY_PASTE["copy"]})
    _agree({**ERASE, "context": []})
    _agree({k: v for k, v in COPY_PASTE.items() if k != "paste"})
    _agree({**COPY_PASTE, "kind": "inpaint"})
    _agree({**COPY_PASTE, "kind": ""})                           # was taken by the parser
    _agree({**COPY_PASTE, "unknown": 1})
    _agree({**COPY_PASTE, "version": 2})
    _agree({**COPY_PASTE, "format": "other"})


# -- random edits of valid specs -----------------------------------------------------------
_FIELDS = ["rank", "direction", "strength", "preserve_weight", "stats.samples", "stats.seed",
           "stats.other", "erase.units", "erase.goal", "sampling.truncation", "sampling.class",
           "solver", "solver.name", "solver.params", "kind", "name", "description", "format",
           "version", "preserve", "context", "model"]
_SCALARS = st.one_of(
    st.sampled_from([0, 1, -1, 2, 4, 10, 2 ** 32 - 1, 2 ** 32, MAX_STATS_SAMPLES,
                     MAX_STATS_SAMPLES + 1, MAX_SPEC_INT, MAX_SPEC_INT + 1, 0.5, 1e-9, 10.5,
                     MAX_PRESERVE_WEIGHT - 0.5, 1000.5, "zca", "mean", "erase", "copy-paste",
                     "inpaint", "zero-units", "least-collateral", "example-fit", "adam",
                     "finetune-all", "dissect-erase", "rewrite.edit", "dcgan-digiface64", ""]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda x: not x.is_integer()),
    st.booleans(), st.none(), st.text(max_size=4))
_VALUES = st.one_of(
    _SCALARS,
    st.lists(st.sampled_from([{"sample": 3, "mask": {"rect": [0, 0, 64, 20]}}, 1, "x"]),
             max_size=2),
    st.dictionaries(st.sampled_from(["name", "params", "budget", "steps", "lr", "samples",
                                     "seed", "units"]), _SCALARS, max_size=2))


# No float with an integral value is drawn: JSON Schema's "integer" takes 1000.0 and the
# parser does not (a known gap; the parser refuses it with a clear 4xx). Derandomized so
# the run is the same on every machine.
@settings(max_examples=400, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from([COPY_PASTE, ERASE]),
       edits=st.lists(st.tuples(st.sampled_from(_FIELDS), _VALUES), min_size=1, max_size=3),
       drop=st.lists(st.sampled_from(["rank", "solver", "direction", "stats", "model"]),
                     max_size=2))
def test_random_specs_get_the_same_verdict_from_schema_and_parser(base, edits, drop):
    obj = copy.deepcopy(base)
    for key in drop:
        obj.pop(key, None)
    for field, value in edits:
        if "." in field and not isinstance(obj.get(field.split(".")[0], {}), dict):
            continue
        obj = _with(obj, field, value)
    _agree(obj)
