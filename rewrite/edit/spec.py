"""The edit specification: a versioned JSON document shared by library, CLI and app.

Example (``examples/add-glasses.json``)::

    {
      "format": "rewrite.edit", "version": 1,
      "name": "add-glasses",
      "model": "dcgan-digiface64", "layer": "main.6", "kind": "copy-paste",
      "rank": 4, "direction": "zca",
      "solver": {"name": "least-collateral", "params": {}},
      "stats": {"samples": 10000, "seed": 0},
      "copy":  {"sample": 10, "mask": {"rect": [12, 24, 52, 36]}},
      "paste": {"sample": 9,  "mask": {"rect": [12, 24, 52, 36]}},
      "context": [{"sample": 9, "mask": {"rect": [8, 24, 56, 40]}}, ...],
      "preserve": [{"sample": 112, "mask": {"rect": [0, 0, 64, 20]}}],
      "strength": 1.0,
      "sampling": {"truncation": 0.7, "class": 3}
    }

``paste`` takes either a ``mask`` (the object is centred on its bounding box)
or an ``offset`` ``[dx, dy]`` in pixels from where it was copied. An ``erase``
edit has ``context`` only (the regions to erase, which also define the rule)
and ``"erase": {"units": N, "goal": "inpaint" | "zero-units"}``.

``preserve`` ("not here") marks regions the rule must leave alone: those
samples join the solve with their current values as the goal there, so the
update keeps ``W k`` for their keys as far as the request allows;
``preserve_weight`` (default 16) is how much they count, all together,
relative to the goal (lower keeps more of the edit, higher removes more of
its false positives). ``strength`` ``s`` (default 1) scales the
solved low-rank change: the layer uses ``W0 + s·ΔW``; 0 is the original
weight, 1 the solved edit. It scales the change of the weight, not the image.

``sampling`` (optional) records how the sample indices were rendered when the
edit was made: ``truncation`` toward the mean latent (StyleGAN families, 1 =
none) and ``class`` (class-conditional models). Statistics, goals and
evaluation then use those settings; without it, the model's defaults
(truncation 1, class 0). The edit itself changes the weights for every
setting.

Each field (key, type, default, bounds or choices, whether required) is defined
once, in :data:`.spec_fields.FIELDS`: :meth:`EditSpec.from_json` checks the
fields by it, and the JSON Schema (``edit-spec.schema.json`` next to this file,
:mod:`.schema`) is generated from it. :meth:`EditSpec.validate_for` checks a
spec against a model and reports every problem at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from pathlib import Path
from typing import Any

from ..models.latents import MAX_SAMPLES
from ..utils.errors import SpecError
from ..utils.fileio import atomic_path
from .layer_stats import DEFAULT_STATS_SAMPLES, DEFAULT_STATS_SEED
from .limits import MAX_STRENGTH as MAX_STRENGTH
from .masks import KEY_COVERAGE, layer_window, mask_problems, render_mask, window_coverage
from .methods import DEFAULT_METHOD, METHODS, default_method, method_param_problems
from .spec_fields import (
    DEFAULT_DIRECTION,
    DEFAULT_ERASE_GOAL,
    DEFAULT_ERASE_UNITS,
    DEFAULT_PRESERVE_WEIGHT,
    DEFAULT_RANK,
    FIELDS,
    KINDS,
    MAX_SPEC_INT,
    PASTE_KEYS,
    SAMPLE,
    SELECTION_KEYS,
    SOLVER_KEYS,
    TOP_KEYS,
    VERSION,
    Field,
    fields_of,
)

# The format's constants, defined with its fields and kept importable from here.
from .spec_fields import ERASE_GOALS as ERASE_GOALS
from .spec_fields import FORMAT as FORMAT
from .spec_fields import MAX_PRESERVE_WEIGHT as MAX_PRESERVE_WEIGHT
from .spec_fields import MAX_STATS_SAMPLES as MAX_STATS_SAMPLES

SCHEMA_PATH = Path(__file__).with_name("edit-spec.schema.json")
_MAX_INT_DIGITS = len(str(MAX_SPEC_INT))


class _WideInt:
    """An integer literal of a spec file too wide to be a spec's number, left unconverted."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


def _parse_int(text: str):
    digits = len(text) - text.startswith("-")
    return _WideInt(digits) if digits > _MAX_INT_DIGITS else int(text)


def loads(text: str) -> Any:
    """Parse a spec's JSON text; integer literals wider than :data:`MAX_SPEC_INT` are not
    converted (:meth:`EditSpec.from_json` names them in its :class:`SpecError`)."""
    return json.loads(text, parse_int=_parse_int)


def wide_integers(obj: Any, limit: int = 5) -> list[str]:
    """One problem per integer of ``obj`` (at any depth) beyond ±:data:`MAX_SPEC_INT`, named
    by where it sits (``rank``, ``context[2].sample``); at most ``limit`` are named. The walk
    does not recurse, so a deeply nested object cannot overflow the stack."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        where, val = stack.pop()
        if isinstance(val, dict):
            stack.extend(
                (f"{where}.{k}" if where else str(k), v) for k, v in reversed(list(val.items()))
            )
        elif isinstance(val, list):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(val))))
        elif isinstance(val, _WideInt):
            found.append((where, f"{val.digits} digits"))
        elif isinstance(val, int) and not isinstance(val, bool) and abs(val) > MAX_SPEC_INT:
            found.append(
                (
                    where,
                    f"{len(str(abs(val)))} digits"
                    if val.bit_length() < 10_000
                    else f"about {int(val.bit_length() * math.log10(2)) + 1} digits",
                )
            )
    problems = [
        f"{where!r} is an integer of {size}; "
        f"integers in an edit specification lie within +-{MAX_SPEC_INT} (2**63 - 1)"
        for where, size in found[:limit]
    ]
    if len(found) > limit:
        problems.append(f"... and {len(found) - limit} more integers that wide")
    return problems


def unknown_keys(obj: dict, known: set[str], where: str) -> list[str]:
    """One problem per key of ``obj`` not in ``known``, with the closest known key
    suggested (``where`` prefixes the message, e.g. ``stats``)."""
    out = []
    for key in sorted(set(obj) - known, key=str):
        close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
        out.append(f"{where + ': ' if where else ''}unknown field {key!r}{hint}")
    return out


@dataclasses.dataclass
class Selection:
    """A sample and a region on it (``offset`` only for a paste without a mask)."""

    sample: int
    mask: dict | None = None
    offset: tuple[int, int] | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {"sample": self.sample}
        if self.mask is not None:
            out["mask"] = self.mask
        if self.offset is not None:
            out["offset"] = list(self.offset)
        return out


def _read_fields(obj: dict, problems: list[str]) -> dict[str, Any]:
    """The value of each plain field and section of :data:`.spec_fields.FIELDS` in ``obj``:
    a field left out is its default (a required one is named in ``problems``), one the
    table refuses is named in ``problems`` (and is its default unless it has the right
    type); a section keeps the keys given (a section not an object: none)."""
    values: dict[str, Any] = {}
    given: dict[str, dict] = {"": obj}  # each section's JSON object
    for f in FIELDS:
        if f.shape not in ("", "section", "selections"):
            continue
        where = given.get(f.section, {})
        value = where.get(f.name, f.default)
        if f.name not in where and f.required:
            problems.append(f"missing field {f.key!r}")
        elif f.name in where and (problem := f.problem(value)):
            problems.append(problem)
            value = value if f.has_type(value) else f.default
        elif f.type == "number" and value is not None:
            value = float(value)
        if f.shape == "section":
            given[f.key] = value if isinstance(value, dict) else {}
            problems += unknown_keys(given[f.key], {s.name for s in fields_of(f.key)}, f.key)
        elif value is not None:
            values[f.key] = value
    for f in FIELDS:  # a section kept as a dict: the keys given, in their order
        if f.shape == "section" and f.attr:
            kept = {k: values[f"{f.key}.{k}"] for k in given[f.key] if f"{f.key}.{k}" in values}
            values[f.key] = kept or None
    return values


def _selection(
    val: Any, where: str, problems: list[str], keys: tuple[str, ...] = SELECTION_KEYS
) -> Selection | None:
    """The selection ``val`` (named ``where`` in ``problems``); None if it has no sample.
    ``keys`` with ``offset``: a paste, which takes a mask or an offset."""
    if not isinstance(val, dict):
        problems.append(f"{where} must be an object with 'sample' and 'mask'")
        return None
    problems += unknown_keys(val, set(keys), where)
    s = val.get(SAMPLE.key)
    if problem := SAMPLE.problem(s):
        problems.append(f"{where}: {problem}")
        s = None
    mask, offset = val.get("mask"), val.get("offset")
    takes_offset = "offset" in keys
    if takes_offset and mask is None and offset is None:
        problems.append(
            f"{where} needs a 'mask' (where to centre the object) or an 'offset' [dx, dy] in pixels"
        )
    elif not takes_offset and mask is None:
        problems.append(f"{where} needs a 'mask'")
    if takes_offset and mask is not None and offset is not None:
        problems.append(f"{where}: give 'mask' or 'offset', not both")
    if offset is not None:
        if (
            not isinstance(offset, list)
            or len(offset) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in offset)
        ):
            problems.append(f"{where}: 'offset' must be [dx, dy] in whole pixels")
            offset = None
        else:
            offset = (offset[0], offset[1])
    return Selection(s, mask, offset) if s is not None else None


def _selections(vals: list, where: str, problems: list[str]) -> list[Selection]:
    """The selections of list ``vals`` (field ``where``: ``context``, ``preserve``)."""
    found = (_selection(v, f"{where}[{i}]", problems) for i, v in enumerate(vals))
    return [s for s in found if s is not None]


@dataclasses.dataclass
class EditSpec:
    """A parsed edit specification (see the module docstring for the JSON form)."""

    model: str
    layer: str
    kind: str
    rank: int = DEFAULT_RANK
    direction: str = DEFAULT_DIRECTION
    solver: str = DEFAULT_METHOD
    solver_params: dict = dataclasses.field(default_factory=dict)
    stats_samples: int = DEFAULT_STATS_SAMPLES
    stats_seed: int = DEFAULT_STATS_SEED
    copy: Selection | None = None
    paste: Selection | None = None
    context: list[Selection] = dataclasses.field(default_factory=list)
    erase_units: int = DEFAULT_ERASE_UNITS
    erase_goal: str = DEFAULT_ERASE_GOAL
    preserve: list[Selection] = dataclasses.field(default_factory=list)
    preserve_weight: float = DEFAULT_PRESERVE_WEIGHT
    strength: float = 1.0
    sampling: dict | None = None
    name: str = ""
    description: str = ""

    # -- JSON --------------------------------------------------------------
    def to_json(self) -> dict:
        """The spec as a JSON-ready dict (the versioned format): each field of
        :data:`.spec_fields.FIELDS` in order, less those its ``omit`` leaves out."""
        out: dict[str, Any] = {}
        for f in fields_of(""):
            value = self._json_value(f)
            if not (
                value is None
                or (f.omit == "empty" and not value)
                or (f.omit == "default" and value == f.default)
            ):
                out[f.key] = value
        return out

    def _json_value(self, f: Field) -> Any:
        """The JSON value of top-level field ``f`` (None: left out)."""
        if f.const is not None:
            return f.const
        if f.for_kind and self.kind != f.for_kind:
            return None
        if f.shape == "solver":
            return {"name": self.solver, "params": dict(self.solver_params)}
        if f.shape in ("selection", "paste"):
            sel = getattr(self, f.key)
            return None if sel is None else sel.to_json()
        if f.shape == "selections":
            return [c.to_json() for c in getattr(self, f.key)]
        if f.shape == "section" and f.attr:  # kept as a dict of the keys given
            return dict(getattr(self, f.attr) or {})
        if f.shape == "section":
            return {s.name: getattr(self, str(s.attr)) for s in fields_of(f.key)}
        return getattr(self, str(f.attr))

    def dumps(self) -> str:
        """The spec as indented JSON text."""
        return json.dumps(self.to_json(), indent=2)

    def save(self, path: str | Path) -> Path:
        """Write the spec as JSON atomically."""
        with atomic_path(path) as tmp:
            Path(tmp).write_text(self.dumps() + "\n")
        return Path(path)

    @classmethod
    def from_json(cls, obj: Any) -> EditSpec:
        """Parse the JSON form; every structural problem is reported in one :class:`SpecError`."""
        if not isinstance(obj, dict):
            raise SpecError(["an edit specification must be a JSON object"])
        wide = wide_integers(obj)
        if wide:
            raise SpecError(wide)
        version = obj.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise SpecError([f"'version' must be the integer {VERSION}, got {version!r}"])
        if version != VERSION:
            raise SpecError(
                [
                    f"unknown spec version {version!r}; this rewrite reads version "
                    f"{VERSION}. Upgrade rewrite, or re-save the edit with this version"
                ]
            )
        problems = unknown_keys(obj, set(TOP_KEYS), "")
        values = _read_fields(obj, problems)
        solver = obj.get("solver", {})
        if isinstance(solver, str):
            solver = {"name": solver}
        if not isinstance(solver, dict) or not isinstance(solver.get("name", ""), str):
            problems.append("'solver' must be an object {'name': ..., 'params': {...}}")
            solver = {}
        problems += unknown_keys(solver, set(SOLVER_KEYS), "solver")
        params = solver.get("params", {})
        if not isinstance(params, dict):
            problems.append("'solver.params' must be an object")
            params = {}
        spec = cls(
            **{f.attr: values[f.key] for f in FIELDS if f.attr and f.key in values},
            solver=solver.get("name", default_method(values["model"])),
            solver_params=params,
            copy=_selection(obj["copy"], "copy", problems) if "copy" in obj else None,
            paste=_selection(obj["paste"], "paste", problems, PASTE_KEYS)
            if "paste" in obj
            else None,
            context=_selections(values.get("context", []), "context", problems),
            preserve=_selections(values.get("preserve", []), "preserve", problems),
        )
        problems += spec._rule_problems()
        if problems:
            raise SpecError(problems)
        return spec

    @classmethod
    def load(cls, path: str | Path) -> EditSpec:
        """Read and parse a spec file."""
        try:
            obj = loads(Path(path).read_text())
        except FileNotFoundError:
            raise SpecError([f"spec file not found: {path}"]) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SpecError([f"{path} is not valid JSON ({e})"]) from None
        except RecursionError:
            raise SpecError([f"{path} is nested too deeply to be an edit specification"]) from None
        return cls.from_json(obj)

    # -- changes -------------------------------------------------------------
    def with_not_here(self, sample: int, rect) -> EditSpec:
        """A copy of the spec with one more "not here" region: the rectangle ``rect``
        (``x0, y0, x1, y1`` in image pixels, ``x1`` and ``y1`` exclusive) of ``sample``
        joins ``preserve``, so the solve keeps it at its current values as far as the
        request allows. Checked as a spec read from JSON (:class:`SpecError`); check it
        against the model with :meth:`validate_for`."""
        obj = self.to_json()
        rect = [int(v) if float(v).is_integer() else float(v) for v in rect]
        obj["preserve"] = [*obj.get("preserve", []), {"sample": sample, "mask": {"rect": rect}}]
        return EditSpec.from_json(obj)

    # -- checks ------------------------------------------------------------
    def _own_problems(self) -> list[str]:
        """Problems visible without a model: each field's value (as
        :data:`.spec_fields.FIELDS` bounds it), then the rules between fields."""
        own = [f.problem(getattr(self, str(f.attr))) for f in FIELDS if f.attr and not f.shape]
        return [p for p in own if p] + self._rule_problems()

    def _rule_problems(self) -> list[str]:
        """Problems of the rules between fields (``from_json`` checked each field already)."""
        p = []
        if self.kind == "copy-paste" and (self.copy is None or self.paste is None):
            p.append("a copy-paste edit needs both 'copy' and 'paste'")
        if self.kind == "erase":
            if self.copy is not None or self.paste is not None:
                p.append("an erase edit takes 'context' only, not 'copy' or 'paste'")
            if not self.context:
                p.append("an erase edit needs at least one 'context' region (what to erase)")
        if self.direction == "mean" and self.rank != 1:
            p.append(f"direction 'mean' has rank 1; use 'zca' for rank {self.rank}")
        if self.solver not in METHODS:
            p.append(f"unknown solver {self.solver!r}; known: {', '.join(METHODS)}")
            return p
        p += method_param_problems(self.solver, self.solver_params)
        method = METHODS[self.solver]
        if self.kind in KINDS and self.kind not in method.kinds:
            p.append(
                f"solver {self.solver!r} applies to {' and '.join(method.kinds)} "
                f"edits, not {self.kind}"
            )
        if self.preserve and not method.not_here:
            takers = [name for name, m in METHODS.items() if m.not_here]
            p.append(
                f"'preserve' regions apply to the layer solvers ({', '.join(takers)}); "
                f"the {self.solver!r} baseline does not use them"
            )
        return p

    def selections(self) -> list[tuple[str, Selection]]:
        """Every selection with a name for messages (``copy``, ``paste``, ``context[i]``)."""
        out = []
        if self.copy is not None:
            out.append(("copy", self.copy))
        if self.paste is not None:
            out.append(("paste", self.paste))
        out += [(f"context[{i}]", c) for i, c in enumerate(self.context)]
        out += [(f"preserve[{i}]", c) for i, c in enumerate(self.preserve)]
        return out

    def validate_for(self, G) -> None:
        """Check the spec against model ``G``; raise one :class:`SpecError` listing every
        problem."""
        problems = self._own_problems()
        if self.sampling:
            problems += G.sampling_problems(self.sampling)
        names = [L.name for L in G.layers()]
        info = G.layer(self.layer) if self.layer in names else None
        if info is None:
            problems.append(f"unknown layer {self.layer!r}; editable layers: {', '.join(names)}")
        elif isinstance(self.rank, int) and self.rank > info.in_channels:
            problems.append(
                f"rank {self.rank} exceeds the {info.in_channels} key channels of {self.layer}"
            )
        if (
            self.kind == "erase"
            and info is not None
            and isinstance(self.erase_units, int)
            and self.erase_units > info.out_channels
        ):
            problems.append(
                f"'erase.units' {self.erase_units} exceeds the {info.out_channels} "
                f"units of {self.layer}"
            )
        for where, sel in self.selections():
            if not 0 <= sel.sample < MAX_SAMPLES:
                problems.append(
                    f"{where}: sample {sel.sample} is out of range (0..{MAX_SAMPLES - 1})"
                )
            if sel.mask is None:
                continue
            mp = mask_problems(sel.mask, G.resolution)
            problems += [f"{where}: {m}" for m in mp]
            if mp or info is None:
                continue
            mask = render_mask(sel.mask, G.resolution)
            grid, thr = (
                ("key", KEY_COVERAGE)
                if where.startswith(("context", "preserve"))
                else ("value", 0.0)
            )
            window = layer_window(info, grid)
            cov, res = window_coverage(mask, window), window[2]
            if not (cov > thr).any():
                need = "more than half of a cell" if thr else "any cell"
                where_res = (
                    f"{res}x{res} {grid} grid"
                    if res == window[0]
                    else f"{res}x{res} image window of the {window[0]}x{window[0]} {grid} grid"
                )
                problems.append(
                    f"{where}: the mask on sample {sel.sample} is empty at layer {self.layer} "
                    f"(it must cover {need} of the {where_res}, "
                    f"{G.resolution // res} px per cell); draw a larger region or pick a "
                    "layer with a finer grid"
                )
        if problems:
            raise SpecError(problems)
