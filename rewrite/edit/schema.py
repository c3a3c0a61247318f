"""The JSON Schema of edit specifications, generated from the rules in :mod:`.spec`.

The validator is :meth:`rewrite.edit.spec.EditSpec.from_json` (used by the
CLI, the library and the app alike); this module derives the schema from the
same constants (kinds, methods and their parameter classes and limits,
directions, erase goals, defaults, bounds), so that a client can know what the
parser takes. ``tests/edit/test_spec_schema.py`` checks that the two give the
same verdict at every bound and on random specs. The shipped
``edit-spec.schema.json`` is this function's output (a test checks that it is
up to date); the app publishes :func:`spec_schema` for its model in
``/openapi.json``.

Usage::

    python -m rewrite.edit.schema          # rewrite edit-spec.schema.json from the rules
"""

from __future__ import annotations

import dataclasses
import json

from ..memory.directions import DIRECTION_METHODS
from ..models.latents import MAX_SAMPLES
from .layer_stats import DEFAULT_STATS_SAMPLES, DEFAULT_STATS_SEED
from .limits import MAX_STATS_SEED
from .methods import DEFAULT_METHOD, METHODS, MODEL_DEFAULT_METHODS, default_method
from .spec import (
    DEFAULT_DIRECTION,
    DEFAULT_ERASE_GOAL,
    DEFAULT_ERASE_UNITS,
    DEFAULT_PRESERVE_WEIGHT,
    DEFAULT_RANK,
    ERASE_GOALS,
    FORMAT,
    KINDS,
    MAX_PRESERVE_WEIGHT,
    MAX_SPEC_INT,
    MAX_STATS_SAMPLES,
    MAX_STRENGTH,
    SCHEMA_PATH,
    VERSION,
)


def _integer(minimum: int | None = None, maximum: float = MAX_SPEC_INT, **extra) -> dict:
    """An integer field; every integer of a spec lies within +-:data:`MAX_SPEC_INT`."""
    out: dict = {
        "type": "integer",
        "minimum": -MAX_SPEC_INT if minimum is None else minimum,
        "maximum": maximum,
    }
    return {**out, **extra}


def solver_params_schema(name: str) -> dict:
    """The parameters method ``name`` takes (its params dataclass): type from the default,
    never negative, at most the limit in the field's metadata (what the entry's
    ``param_problems`` checks)."""
    props = {}
    limits = METHODS[name].limits()
    for f in dataclasses.fields(METHODS[name].params):
        if isinstance(f.default, bool):
            props[f.name] = {"type": "boolean", "default": f.default}
        elif isinstance(f.default, int):
            props[f.name] = _integer(0, limits.get(f.name, MAX_SPEC_INT), default=f.default)
        else:
            props[f.name] = {"type": "number", "minimum": 0, "default": f.default}
            if f.name in limits:
                props[f.name]["maximum"] = limits[f.name]
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


def spec_schema(model: str | None = None, max_stats_samples: int = MAX_STATS_SAMPLES) -> dict:
    """The JSON Schema (draft 2020-12) of an edit specification, as a dict.

    ``model`` given (the app): the schema of a spec for that model, whose ``model`` field
    may be left out (the app fills it in); the default method is that model's. The
    ``max_stats_samples`` bound may be lowered (the app's is).
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
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/rewrite/rewrite/edit-spec.schema.json",
        "title": f"rewrite edit specification, version {VERSION}",
        "description": "One edit of a generator's rule: which model and layer, how to solve, and "
        "the copy / paste / context (or erase) selections on sample indices. "
        "Masks are in image pixels.",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "layer", "kind"] + ([] if model else ["model"]),
        "properties": {
            "format": {"const": FORMAT},
            "version": {"const": VERSION},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "model": (
                {"type": "string", "description": "Zoo name or checkpoint path."}
                if model is None
                else {"description": f"Ignored: the app edits {model} whatever this says."}
            ),
            "layer": {"type": "string", "description": "Editable layer (rewrite layers MODEL)."},
            "kind": {"enum": list(KINDS)},
            "rank": _integer(
                1,
                default=DEFAULT_RANK,
                description="Rank of the change (at most the layer's key "
                "channels); direction 'mean' takes rank 1 only.",
            ),
            "direction": {"enum": list(DIRECTION_METHODS), "default": DEFAULT_DIRECTION},
            "solver": {
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
            },
            "stats": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "samples": _integer(1, max_stats_samples, default=DEFAULT_STATS_SAMPLES),
                    "seed": _integer(0, MAX_STATS_SEED, default=DEFAULT_STATS_SEED),
                },
            },
            "copy": {"$ref": "#/$defs/selection"},
            "paste": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sample"],
                "properties": {
                    "sample": {"$ref": "#/$defs/sample"},
                    "mask": {"$ref": "#/$defs/mask"},
                    "offset": {
                        "type": "array",
                        "items": _integer(),
                        "minItems": 2,
                        "maxItems": 2,
                        "description": "[dx, dy] in pixels from where the object was copied.",
                    },
                },
                "oneOf": [{"required": ["mask"]}, {"required": ["offset"]}],
            },
            "context": {"type": "array", "items": {"$ref": "#/$defs/selection"}},
            "preserve": {
                "type": "array",
                "items": {"$ref": "#/$defs/selection"},
                "description": '"Not here": regions the rule must leave alone '
                "(solved with their current values as the goal; layer "
                f"solvers only: {', '.join(n for n, m in METHODS.items() if m.not_here)}).",
            },
            "preserve_weight": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_PRESERVE_WEIGHT,
                "default": DEFAULT_PRESERVE_WEIGHT,
                "description": 'How much the "not here" regions count, all '
                "together, relative to the goal.",
            },
            "strength": {
                "type": "number",
                "minimum": 0,
                "maximum": MAX_STRENGTH,
                "default": 1.0,
                "description": "Factor s on the solved change: the layer uses "
                "W0 + s·ΔW (0: the original weight, 1: the edit).",
            },
            "erase": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "units": _integer(1, default=DEFAULT_ERASE_UNITS),
                    "goal": {
                        "enum": list(ERASE_GOALS),
                        "default": DEFAULT_ERASE_GOAL,
                        "description": "inpaint: the region's values from the most similar "
                        "faces without the object; zero-units: the most "
                        "active units zeroed there.",
                    },
                },
            },
            "sampling": {
                "type": "object",
                "additionalProperties": False,
                "description": "How the sample indices were rendered when the edit was made "
                "(default: truncation 1, class 0); statistics, goals and "
                "evaluation use these settings.",
                "properties": {
                    "truncation": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": "Truncation toward the mean latent "
                        "(StyleGAN families; 1 = none).",
                    },
                    "class": _integer(0, description="Class of a class-conditional model."),
                },
            },
        },
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
            "sample": {"type": "integer", "minimum": 0, "maximum": MAX_SAMPLES - 1},
            "selection": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sample", "mask"],
                "properties": {
                    "sample": {"$ref": "#/$defs/sample"},
                    "mask": {"$ref": "#/$defs/mask"},
                },
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
