"""The JSON Schema of edit specifications, generated from the rules in :mod:`.spec`.

The validator is :meth:`rewrite.edit.spec.EditSpec.from_json` (used by the
CLI, the library and the app alike); this module derives the schema from the
same constants (kinds, methods, directions, erase goals, defaults, sample
range), so the two cannot drift. The shipped ``edit-spec.schema.json`` is
this function's output; a test checks that it is up to date.

Usage::

    python -m rewrite.edit.schema          # rewrite edit-spec.schema.json from the rules
"""

from __future__ import annotations

import json

from ..memory.directions import DIRECTION_METHODS
from ..models.latents import MAX_SAMPLES
from .layer_stats import DEFAULT_STATS_SAMPLES, DEFAULT_STATS_SEED
from .methods import DEFAULT_METHOD, METHODS, MODEL_DEFAULT_METHODS
from .spec import (
    DEFAULT_DIRECTION,
    DEFAULT_ERASE_GOAL,
    DEFAULT_ERASE_UNITS,
    DEFAULT_RANK,
    ERASE_GOALS,
    FORMAT,
    DEFAULT_PRESERVE_WEIGHT,
    KINDS,
    MAX_PRESERVE_WEIGHT,
    MAX_STRENGTH,
    SCHEMA_PATH,
    VERSION,
)


def spec_schema() -> dict:
    """The JSON Schema (draft 2020-12) of an edit specification, as a dict."""
    mask = {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["rect"],
         "properties": {"rect": {"type": "array", "items": {"type": "number"},
                                 "minItems": 4, "maxItems": 4,
                                 "description": "[x0, y0, x1, y1], x1 and y1 exclusive"}}},
        {"type": "object", "additionalProperties": False, "required": ["polygon"],
         "properties": {"polygon": {"type": "array", "minItems": 3,
                                    "items": {"type": "array", "items": {"type": "number"},
                                              "minItems": 2, "maxItems": 2}}}},
        {"type": "object", "additionalProperties": False, "required": ["png"],
         "properties": {"png": {"type": "string", "pattern": "^data:image/png;base64,",
                                "description": "alpha (or grey) channel at the image resolution"}}},
    ]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/rewrite/rewrite/edit-spec.schema.json",
        "title": f"rewrite edit specification, version {VERSION}",
        "description": "One edit of a generator's rule: which model and layer, how to solve, and "
                       "the copy / paste / context (or erase) selections on sample indices. "
                       "Masks are in image pixels.",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "model", "layer", "kind"],
        "properties": {
            "format": {"const": FORMAT},
            "version": {"const": VERSION},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "model": {"type": "string", "description": "Zoo name or checkpoint path."},
            "layer": {"type": "string", "description": "Editable layer (rewrite layers MODEL)."},
            "kind": {"enum": list(KINDS)},
            "rank": {"type": "integer", "minimum": 1, "default": DEFAULT_RANK},
            "direction": {"enum": list(DIRECTION_METHODS), "default": DEFAULT_DIRECTION},
            "solver": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"enum": list(METHODS), "default": DEFAULT_METHOD,
                             "description": "Default: " + ", ".join(
                                 f"{m} for {model}" for model, m in MODEL_DEFAULT_METHODS.items())
                             + f", {DEFAULT_METHOD} for other models."},
                    "params": {"type": "object", "default": {},
                               "description": "Solver parameters, e.g. {\"budget\": 0.03} or "
                                              "{\"steps\": 100}."},
                },
            },
            "stats": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "samples": {"type": "integer", "minimum": 1, "default": DEFAULT_STATS_SAMPLES},
                    "seed": {"type": "integer", "default": DEFAULT_STATS_SEED},
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
                    "offset": {"type": "array", "items": {"type": "integer"}, "minItems": 2,
                               "maxItems": 2,
                               "description": "[dx, dy] in pixels from where the object was "
                                              "copied."},
                },
                "oneOf": [{"required": ["mask"]}, {"required": ["offset"]}],
            },
            "context": {"type": "array", "items": {"$ref": "#/$defs/selection"}},
            "preserve": {"type": "array", "items": {"$ref": "#/$defs/selection"},
                         "description": "\"Not here\": regions the rule must leave alone "
                                        "(solved with their current values as the goal)."},
            "preserve_weight": {"type": "number", "exclusiveMinimum": 0,
                                "maximum": MAX_PRESERVE_WEIGHT,
                                "default": DEFAULT_PRESERVE_WEIGHT,
                                "description": "How much the \"not here\" regions count, all "
                                               "together, relative to the goal."},
            "strength": {"type": "number", "minimum": 0, "maximum": MAX_STRENGTH, "default": 1.0,
                         "description": "Factor s on the solved change: the layer uses "
                                        "W0 + s·ΔW (0: the original weight, 1: the edit)."},
            "erase": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "units": {"type": "integer", "minimum": 1, "default": DEFAULT_ERASE_UNITS},
                    "goal": {"enum": list(ERASE_GOALS), "default": DEFAULT_ERASE_GOAL,
                             "description": "inpaint: the region's values from the most similar "
                                            "faces without the object; zero-units: the most "
                                            "active units zeroed there."},
                },
            },
            "sampling": {
                "type": "object",
                "additionalProperties": False,
                "description": "How the sample indices were rendered when the edit was made "
                               "(default: truncation 1, class 0); statistics, goals and "
                               "evaluation use these settings.",
                "properties": {
                    "truncation": {"type": "number", "minimum": 0, "maximum": 1,
                                   "description": "Truncation toward the mean latent "
                                                  "(StyleGAN families; 1 = none)."},
                    "class": {"type": "integer", "minimum": 0,
                              "description": "Class of a class-conditional model."},
                },
            },
        },
        "allOf": [
            {"if": {"properties": {"kind": {"const": "copy-paste"}}},
             "then": {"required": ["copy", "paste"]}},
            {"if": {"properties": {"kind": {"const": "erase"}}},
             "then": {"required": ["context"], "properties": {"context": {"minItems": 1}},
                      "not": {"anyOf": [{"required": ["copy"]}, {"required": ["paste"]}]}}},
        ],
        "$defs": {
            "sample": {"type": "integer", "minimum": 0, "maximum": MAX_SAMPLES - 1},
            "selection": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sample", "mask"],
                "properties": {"sample": {"$ref": "#/$defs/sample"},
                               "mask": {"$ref": "#/$defs/mask"}},
            },
            "mask": mask,
        },
    }


def write_schema() -> None:
    """Write :func:`spec_schema` to ``edit-spec.schema.json`` next to the spec module."""
    SCHEMA_PATH.write_text(json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_schema()
    print(f"wrote {SCHEMA_PATH}")
