"""The spec's one field table (``rewrite.edit.spec_fields.FIELDS``): from the table alone,
every bound, choice, default and required field the parser enforces is in the JSON Schema,
and every bound of the schema comes from the table (or from the method registry, the masks
or a rule between fields, each named below). The probes are derived from the table, so a new
field or bound is checked here without a new test."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import jsonschema
import pytest

from rewrite.edit.methods import METHODS, MODEL_DEFAULT_METHODS
from rewrite.edit.schema import spec_schema
from rewrite.edit.spec import EditSpec
from rewrite.edit.spec_fields import (BY_KEY, FIELDS, MAX_SPEC_INT, SAMPLE, TOP_KEYS, Field,
                                      fields_of)
from rewrite.utils.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]
COPY_PASTE = json.loads((ROOT / "examples" / "add-sunglasses.json").read_text())
ERASE = json.loads((ROOT / "examples" / "remove-glasses.json").read_text())
SCHEMA = spec_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
#: The plain fields: one value each, checked by the table (not the shaped ones).
PLAIN = [f for f in FIELDS if not f.shape]
#: Bound keywords of JSON Schema.
BOUND_WORDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "const",
               "minItems", "maxItems", "minLength", "maxLength", "multipleOf", "pattern"}


def _node(f: Field) -> dict:
    """The schema of field ``f`` (``properties`` of its section's object)."""
    if f is SAMPLE:
        return SCHEMA["$defs"]["sample"]
    props = SCHEMA["properties"]
    if f.section:
        props = props[f.section]["properties"]
    return props[f.name]


def _with(base: dict, f: Field, value) -> dict:
    obj = copy.deepcopy(base)
    node = obj.setdefault(f.section, {}) if f.section else obj
    node[f.name] = value
    return obj


def _parse(obj) -> tuple[EditSpec | None, list[str]]:
    try:
        return EditSpec.from_json(copy.deepcopy(obj)), []
    except SpecError as e:
        return None, e.problems


def _probes(f: Field) -> tuple[list, list]:
    """Values the field takes and values it refuses, from its entry alone: each bound and a
    step past it, each choice and one more, and values of other JSON types."""
    if f.const is not None:
        return [f.const], [f"{f.const}x" if isinstance(f.const, str) else f.const + 1]
    if f.choices is not None:
        return list(f.choices), ["no-such-choice", 3, None]
    if f.type == "string":
        return ["", "text"], [3, None, ["a"]]
    step = 1 if f.type == "integer" else 1e-6
    lo, hi = f.lowest, f.highest
    taken, refused = [], ["1", True, None, [1]]
    if f.type == "number":
        refused += [math.nan, math.inf]
    if lo is not None:
        (refused if f.exclusive_minimum else taken).append(lo)
        taken.append(lo + step)
        if lo - step >= -MAX_SPEC_INT:      # (past the integer bound: wide_integers refuses)
            refused.append(lo - step)
    if hi is not None:
        taken += [hi, hi - step]
        if hi + step <= MAX_SPEC_INT:
            refused.append(hi + step)
        if f.type == "number":
            taken.append(int(hi))           # an integer is a number
    return taken, refused


def _base(f: Field, value) -> dict:
    """A valid spec to probe ``f`` on (an erase spec for erase settings and kind 'erase')."""
    erase = f.key.startswith("erase") or (f.key == "kind" and value == "erase")
    base = copy.deepcopy(ERASE if erase else COPY_PASTE)
    if f.key == "direction" and value == "mean":
        base["rank"] = 1
    return base


@pytest.mark.parametrize("f", [f for f in PLAIN if f.key != "version"], ids=lambda f: f.key)
def test_the_parser_takes_and_refuses_what_the_table_says(f):
    """At each probe the parser names the field with the table's message exactly when the
    table refuses the value, the schema gives the parser's verdict, and a spec built in
    Python is checked by the same entry."""
    taken, refused = _probes(f)
    for value, ok in [(v, True) for v in taken] + [(v, False) for v in refused]:
        assert f.accepts(value) is ok, (f.key, value)
        obj = _with(_base(f, value), f, value)
        spec, problems = _parse(obj)
        named = [p for p in problems if p.startswith(f"{f.key!r} must be")]
        assert named == ([] if ok else [f.problem(value)]), (f.key, value, problems)
        assert (spec is not None) is ok, (f.key, value, problems)
        # (NaN and infinity are not JSON: no schema can refuse them; the parser does.)
        if not (isinstance(value, float) and not math.isfinite(value)):
            errors = [e.message for e in VALIDATOR.iter_errors(obj)]
            assert (not errors) is ok, (f.key, value, errors)
        if f.attr and not ok:
            built = dataclasses.replace(EditSpec.from_json(_base(f, value)), **{f.attr: value})
            assert f.problem(value) in built._own_problems(), (f.key, value)


def test_every_field_is_in_the_schema_with_its_rule():
    """The schema's node of each field says what its entry says: value (const, choices or
    type), bounds, default and description; objects take exactly the table's keys."""
    assert set(SCHEMA["properties"]) == set(TOP_KEYS) and SCHEMA["additionalProperties"] is False
    assert set(SCHEMA["required"]) == {f.key for f in fields_of("") if f.required}
    for f in [*PLAIN, SAMPLE]:
        node = _node(f)
        if f.const is not None:
            assert node == {"const": f.const}, f.key
            continue
        if f.choices is not None:
            assert node["enum"] == list(f.choices) and "type" not in node, f.key
        else:
            assert node["type"] == f.type, f.key
        minimum = "exclusiveMinimum" if f.exclusive_minimum else "minimum"
        assert node.get(minimum) == f.lowest and node.get("maximum") == f.highest, f.key
        assert node.get("default") == (None if f.default in (None, "") else f.default), f.key
        assert node.get("description", "") == f.description, f.key
        said = {"enum" if f.choices else "type", minimum, "maximum", "default", "description"}
        said -= {minimum} if f.lowest is None else set()
        said -= {"maximum"} if f.highest is None else set()
        said -= {"default"} if f.default in (None, "") else set()
        said -= set() if f.description else {"description"}
        assert set(node) == said, (f.key, node)                        # and nothing else
    for f in FIELDS:
        if f.shape == "section":
            node = _node(f)
            assert node["type"] == "object" and node["additionalProperties"] is False, f.key
            assert list(node["properties"]) == [s.name for s in fields_of(f.key)], f.key


def _bounded(node, path=""):
    """(path, node) of every schema node that holds a bound keyword."""
    if isinstance(node, dict):
        if BOUND_WORDS & set(node):
            yield path, node
        for key, value in node.items():
            yield from _bounded(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _bounded(value, f"{path}/{i}")


def _field_at(path: str) -> Field | None:
    """The table's field whose schema is at ``path`` (``/properties/stats/properties/seed``)."""
    keys = {"/properties/" + "/properties/".join(f.key.split(".")): f for f in FIELDS}
    return {**keys, "/$defs/sample": SAMPLE}.get(path)


def _rule_values_are_taken(path: str, node: dict) -> bool:
    """A rule between fields (``allOf``) that fixes a field's values: the field is the
    table's and takes each value the rule names (kind 'erase', direction 'mean', rank 1),
    or the rule counts regions (``context``: at least one; ``preserve``: none)."""
    *_, props, key = path.split("/")
    field = next((f for f in fields_of("") if f.key == key), None)
    if props != "properties" or field is None:
        return False
    values = [node["const"]] if "const" in node else node.get("enum", [])
    if field.key == "model":                           # the models with a default method
        return bool(values) and set(values) <= set(MODEL_DEFAULT_METHODS)
    if field.shape == "selections":
        return set(node) & BOUND_WORDS <= {"minItems", "maxItems"}
    return bool(values) and all(field.accepts(v) for v in values)


def test_every_bound_of_the_schema_comes_from_the_table():
    """The other way round: a bound written into the schema by hand, not in the table, fails
    here. The others come from the method registry (the solver and its parameters), the
    mask shapes (checked with the model by validate_for), the paste offset (two integers,
    read by code) and the rules between fields."""
    unexplained = []
    for path, node in _bounded(SCHEMA):
        field = _field_at(path)
        values = [node["const"]] if "const" in node else node.get("enum", [])
        if field is not None and not field.shape:
            continue                 # its node is its entry's: test_every_field_is_in_the_schema
        if path.startswith("/$defs/params-"):
            name, param = path.split("/")[2].removeprefix("params-"), path.split("/")[-1]
            limit = METHODS[name].limits().get(param)
            if limit is None and node["type"] == "integer":
                limit = MAX_SPEC_INT
            assert node["minimum"] == 0 and node.get("maximum") == limit, path
        elif path.startswith("/$defs/mask/"):
            pass
        elif path == "/properties/paste/properties/offset":
            assert (node["minItems"], node["maxItems"]) == (2, 2), path
        elif path == "/properties/paste/properties/offset/items":
            assert (node["minimum"], node["maximum"]) == (-MAX_SPEC_INT, MAX_SPEC_INT), path
        elif "/properties/solver" in path:
            assert values and set(values) <= set(METHODS), path
        elif not (path.startswith("/allOf/") and _rule_values_are_taken(path, node)):
            unexplained.append(path)
    assert unexplained == [], unexplained


def test_the_defaults_are_the_tables():
    """A spec that gives only what is required gets each field's default from the table,
    and the dataclass's defaults are the table's; to_json leaves out what ``omit`` says."""
    required = {f.key for f in fields_of("") if f.required} | {"context"}
    spec = EditSpec.from_json({k: v for k, v in ERASE.items() if k in required})
    defaults = {f.name: f.default for f in dataclasses.fields(EditSpec)}
    for f in PLAIN:
        if f.attr and not f.required:
            assert getattr(spec, f.attr) == f.default == defaults[f.attr], f.key
    out = spec.to_json()
    for f in fields_of(""):
        if f.omit:
            assert f.key not in out, f.key
    copy_paste = EditSpec.from_json(COPY_PASTE)
    assert "erase" in spec.to_json() and "erase" not in copy_paste.to_json()   # for_kind


def test_every_attribute_of_the_dataclass_is_reached_by_the_table():
    """A new attribute of EditSpec needs an entry (or a shaped field that fills it)."""
    reached = {f.attr for f in FIELDS if f.attr} | {f.key for f in FIELDS if f.shape
                                                    and f.shape != "section"}
    reached |= {"solver_params"}                       # the solver field fills both
    assert {f.name for f in dataclasses.fields(EditSpec)} == reached
    for f in FIELDS:
        assert not f.section or BY_KEY[f.section].shape == "section", f.key
        assert not (f.required and f.default not in (None, "")), f.key


@pytest.mark.parametrize("section", ["", *[f.key for f in FIELDS if f.shape == "section"]])
def test_unknown_keys_are_refused_by_both(section):
    obj = copy.deepcopy(ERASE)
    node = obj.setdefault(section, {}) if section else obj
    node["no_such_key"] = 1
    spec, problems = _parse(obj)
    assert spec is None and any("unknown field 'no_such_key'" in p for p in problems)
    assert not VALIDATOR.is_valid(obj)
