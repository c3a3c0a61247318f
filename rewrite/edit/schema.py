"""The JSON Schema of edit specifications, generated from the field table in :mod:`.spec_fields`.

The validator is :meth:`rewrite.edit.spec.EditSpec.from_json` (used by the
CLI, the library and the app alike); this module derives the schema from the
same definition: each field's type, bounds, choices, default and description
from :data:`.spec_fields.FIELDS` (which the parser checks too), the methods'
parameters from their registry entries, and here the rules between fields
(kinds and the selections each needs, the methods' kinds and "not here"
regions), so that a client can know what the parser takes.
``tests/edit/test_spec_schema.py`` checks that the two give the same verdict at
every bound and on random specs, ``tests/edit/test_spec_fields.py`` that every
bound of the table is in both. The shipped ``edit-spec.schema.json`` is this
function's output (a test checks that it is up to date); the app publishes
:func:`spec_schema` for its model in ``/openapi.json``.

Usage::

    python -m rewrite.edit.schema          # rewrite edit-spec.schema.json from the rules
"""

from __future__ import annotations

import dataclasses
import json

from .limits import MAX_STATS_SEED as MAX_STATS_SEED  # (importable from here)
from .methods import DEFAULT_METHOD, METHODS, MODEL_DEFAULT_METHODS, default_method
from .spec import SCHEMA_PATH
from .spec_fields import (
    KINDS,
    OFFSET_DESCRIPTION,
    PASTE_KEYS,
    SAMPLE,
    SELECTION_KEYS,
    VERSION,
    Field,
    fields_of,
)


def field_schema(f: Field, **bounds: float) -> dict:
    """The schema of a plain field of the table: its value (``const``, ``enum`` or type
    and bounds, every integer within +-:data:`.spec_fields.MAX_SPEC_INT`), default and
    description.
    ``bounds`` (``maximum=...``) replace the table's."""
    if f.const is not None:
        return {"const": f.const}
    out: dict = {"enum": list(f.choices)} if f.choices is not None else {"type": f.type}
    lo, hi = bounds.get("minimum", f.lowest), bounds.get("maximum", f.highest)
    if lo is not None:
        out["exclusiveMinimum" if f.exclusive_minimum else "minimum"] = lo
    if hi is not None:
        out["maximum"] = hi
    if f.default not in (None, ""):
        out["default"] = f.default
    if f.description:
        out["description"] = f.description
    return out


def section_schema(f: Field, bounds: dict[str, dict]) -> dict:
    """The schema of section ``f`` (``stats``): an object of the fields under it, no others.
    ``bounds`` maps a field's key to bounds that replace the table's."""
    out: dict = {"type": "object", "additionalProperties": False}
    if f.description:
        out["description"] = f.description
    out["properties"] = {s.name: field_schema(s, **bounds.get(s.key, {})) for s in fields_of(f.key)}
    return out


def solver_params_schema(name: str) -> dict:
    """The parameters method ``name`` takes (its params dataclass): type from the default,
    never negative, at most the limit in the field's metadata (what the entry's
    ``param_problems`` checks)."""
    props = {}
    limits = METHODS[name].limits()
    for f in dataclasses.fields(METHODS[name].params):
        kind = {bool: "boolean", int: "integer"}.get(type(f.default), "number")
        low = None if kind == "boolean" else 0
        props[f.name] = field_schema(
            Field(f.name, kind, f.default, minimum=low, maximum=limits.get(f.name))
        )
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "description": f"Parameters of {name!r} (each optional): {METHODS[name].summary}.",
    }


def _method_rules(name: str) -> dict | None:
    """What choosing method ``name`` implies for the rest of the spec (the kinds of edit it
    makes; no "not here" regions unless it takes them), or None if nothing."""
    props: dict = {}
    if set(KINDS) - set(METHODS[name].kinds):
        props["kind"] = {"enum": list(METHODS[name].kinds)}
    if not METHODS[name].not_here:
        props["preserve"] = {"maxItems": 0}
    return {"properties": props} if props else None


def spec_schema(model: str | None = None, max_stats_samples: int | None = None) -> dict:
    """The JSON Schema (draft 2020-12) of an edit specification, as a dict.

    ``model`` given (the app): the schema of a spec for that model, whose ``model`` field
    may be left out (the app fills it in); the default method is that model's. The
    ``max_stats_samples`` bound may be lowered from the table's (the app's is).
    """
    mask = {
        "oneOf": [
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["rect"],
                "properties": {
                    "rect": {
                        "type": "array",
                        "items": {"type": "number"},
                        "minItems": 4,
                        "maxItems": 4,
                        "description": "[x0, y0, x1, y1], x1 and y1 exclusive",
                    }
                },
            },
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["polygon"],
                "properties": {
                    "polygon": {
                        "type": "array",
                        "minItems": 3,
                        "items": {
                            "type": "array",
                            "items": {"type": "number"},
                            "minItems": 2,
                            "maxItems": 2,
                        },
                    }
                },
            },
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["png"],
                "properties": {
                    "png": {
                        "type": "string",
                        "pattern": "^data:image/png;base64,",
                        "description": "alpha (or grey) channel at the image resolution",
                    }
                },
            },
        ]
    }
    # Which method a spec uses: the one it names (``"solver": NAME`` or ``{"name": NAME}``),
    # else its model's default. The solver object takes that method's parameters; some
    # methods also constrain the rest of the spec (_method_rules).
    unnamed = {
        "anyOf": [
            {"not": {"required": ["solver"]}},
            {"properties": {"solver": {"type": "object", "not": {"required": ["name"]}}}},
        ]
    }
    named_solver = [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": {"const": name}, "params": {"$ref": f"#/$defs/params-{name}"}},
        }
        for name in METHODS
    ]
    method_rules = []
    for name in METHODS:
        rules = _method_rules(name)
        if rules:
            named = {
                "required": ["solver"],
                "properties": {
                    "solver": {
                        "anyOf": [
                            {"const": name},
                            {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"const": name}},
                            },
                        ]
                    }
                },
            }
            method_rules.append({"if": named, "then": rules})
    if model is not None:
        default = default_method(model)
        unnamed_params: dict = {"$ref": f"#/$defs/params-{default}"}
        default_rules = _method_rules(default)
        if default_rules:
            method_rules.append({"if": unnamed, "then": default_rules})
        default_doc = f"{default} (the default for {model})"
    else:
        # The default depends on the model: its parameters and rules are checked per model.
        unnamed_params = {"type": "object"}
        others = {
            "not": {
                "required": ["model"],
                "properties": {"model": {"enum": list(MODEL_DEFAULT_METHODS)}},
            }
        }
        defaults = [
            ({"required": ["model"], "properties": {"model": {"const": m}}}, method)
            for m, method in MODEL_DEFAULT_METHODS.items()
        ] + [(others, DEFAULT_METHOD)]
        for condition, method in defaults:
            then = _method_rules(method) or {"properties": {}}
            then["properties"]["solver"] = {
                "if": {"type": "object"},
                "then": {"properties": {"params": {"$ref": f"#/$defs/params-{method}"}}},
            }
            method_rules.append({"if": {"allOf": [unnamed, condition]}, "then": then})
        default_doc = (
            ", ".join(f"{m} for {model_}" for model_, m in MODEL_DEFAULT_METHODS.items())
            + f", {DEFAULT_METHOD} for other models"
        )
    solver = {
        "description": f"The method and its parameters; default: {default_doc}.",
        "anyOf": [
            {"enum": list(METHODS), "description": 'Short for {"name": ...}.'},
            *named_solver,
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {"params": unnamed_params},
                "description": "The default method, with these parameters.",
            },
        ],
    }
    offset = {
        "type": "array",
        "items": field_schema(Field("offset", "integer")),
        "minItems": 2,
        "maxItems": 2,
        "description": OFFSET_DESCRIPTION,
    }
    paste = {
        "type": "object",
        "additionalProperties": False,
        "required": [SAMPLE.key],
        "properties": {
            key: offset if key == "offset" else {"$ref": f"#/$defs/{key}"} for key in PASTE_KEYS
        },
        "oneOf": [{"required": ["mask"]}, {"required": ["offset"]}],
    }
    # The fields of the table: plain ones and sections from their entries, the others by shape.
    top, properties = fields_of(""), {}
    ref = "#/$defs/selection"
    shaped: dict[str, dict] = {"solver": solver, "selection": {"$ref": ref}, "paste": paste}
    bounds = {} if max_stats_samples is None else {"stats.samples": {"maximum": max_stats_samples}}
    for f in top:
        if f.shape == "section":
            properties[f.key] = section_schema(f, bounds)
        elif f.shape == "selections":
            properties[f.key] = {"type": "array", "items": {"$ref": ref}}
            if f.description:
                properties[f.key]["description"] = f.description
        else:
            properties[f.key] = shaped[f.shape] if f.shape else field_schema(f)
    if model is not None:
        properties["model"] = {"description": f"Ignored: the app edits {model} whatever this says."}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/rewrite/rewrite/edit-spec.schema.json",
        "title": f"rewrite edit specification, version {VERSION}",
        "description": "One edit of a generator's rule: which model and layer, how to solve, and "
        "the copy / paste / context (or erase) selections on sample indices. "
        "Masks are in image pixels.",
        "type": "object",
        "additionalProperties": False,
        "required": [f.key for f in top if f.required and not (model and f.key == "model")],
        "properties": properties,
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": "copy-paste"}}},
                "then": {"required": ["copy", "paste"]},
            },
            {
                "if": {"properties": {"kind": {"const": "erase"}}},
                "then": {
                    "required": ["context"],
                    "properties": {"context": {"minItems": 1}},
                    "not": {"anyOf": [{"required": ["copy"]}, {"required": ["paste"]}]},
                },
            },
            {
                "if": {"required": ["direction"], "properties": {"direction": {"const": "mean"}}},
                "then": {"required": ["rank"], "properties": {"rank": {"const": 1}}},
            },
            *method_rules,
        ],
        "$defs": {
            "sample": field_schema(SAMPLE),
            "selection": {
                "type": "object",
                "additionalProperties": False,
                "required": list(SELECTION_KEYS),
                "properties": {key: {"$ref": f"#/$defs/{key}"} for key in SELECTION_KEYS},
            },
            "mask": mask,
            **{f"params-{name}": solver_params_schema(name) for name in METHODS},
        },
    }


def write_schema() -> None:
    """Write :func:`spec_schema` to ``edit-spec.schema.json`` next to the spec module."""
    SCHEMA_PATH.write_text(json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_schema()
    print(f"wrote {SCHEMA_PATH}")
