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

The JSON Schema is ``edit-spec.schema.json``
next to this file. :meth:`EditSpec.validate_for` checks a spec against a model
and reports every problem at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from pathlib import Path
from typing import Any

from ..memory.directions import DIRECTION_METHODS
from ..models.latents import MAX_SAMPLES
from ..utils.errors import SpecError
from ..utils.fileio import atomic_path
from .layer_stats import DEFAULT_STATS_SAMPLES, DEFAULT_STATS_SEED
from .limits import MAX_STATS_SEED, MAX_STRENGTH
from .masks import KEY_COVERAGE, layer_window, mask_problems, render_mask, window_coverage
from .methods import DEFAULT_METHOD, METHODS, default_method, method_param_problems

FORMAT = "rewrite.edit"
VERSION = 1
KINDS = ("copy-paste", "erase")
SCHEMA_PATH = Path(__file__).with_name("edit-spec.schema.json")
DEFAULT_ERASE_UNITS = 8
#: How an erase goal is built: ``inpaint`` (the region's values from the most similar
#: faces without the object) or ``zero-units`` (the most active units zeroed there).
ERASE_GOALS = ("inpaint", "zero-units")
DEFAULT_ERASE_GOAL = "inpaint"
#: Most samples a spec's statistics may ask for (ten million: hours on one GPU).
MAX_STATS_SAMPLES = 10_000_000
#: Total loss weight of the "not here" regions relative to the goal's own (default and
#: largest); benchmarks/controls_benchmark.py measures the trade-off.
DEFAULT_PRESERVE_WEIGHT = 16.0
MAX_PRESERVE_WEIGHT = 1000.0
#: Rank and direction when a spec names none (benchmarks/edit_benchmark.py measures why).
DEFAULT_RANK = 4
DEFAULT_DIRECTION = "zca"

_TOP_KEYS = {
    "format",
    "version",
    "name",
    "description",
    "model",
    "layer",
    "kind",
    "rank",
    "direction",
    "solver",
    "stats",
    "copy",
    "paste",
    "context",
    "erase",
    "preserve",
    "preserve_weight",
    "strength",
    "sampling",
}


#: Largest magnitude of an integer anywhere in a spec: every integer field (sample numbers,
#: seeds, counts, solver settings) fits in 64 bits. A wider literal is refused by name
#: before anything converts it (Python will not even print an int over 4300 digits).
MAX_SPEC_INT = 2**63 - 1
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
        """The spec as a JSON-ready dict (the versioned format)."""
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        out.update(
            {
                "model": self.model,
                "layer": self.layer,
                "kind": self.kind,
                "rank": self.rank,
                "direction": self.direction,
                "solver": {"name": self.solver, "params": dict(self.solver_params)},
                "stats": {"samples": self.stats_samples, "seed": self.stats_seed},
            }
        )
        if self.copy is not None:
            out["copy"] = self.copy.to_json()
        if self.paste is not None:
            out["paste"] = self.paste.to_json()
        out["context"] = [c.to_json() for c in self.context]
        if self.preserve:
            out["preserve"] = [c.to_json() for c in self.preserve]
        if self.preserve_weight != DEFAULT_PRESERVE_WEIGHT:
            out["preserve_weight"] = self.preserve_weight
        if self.kind == "erase":
            out["erase"] = {"units": self.erase_units, "goal": self.erase_goal}
        if self.strength != 1.0:
            out["strength"] = self.strength
        if self.sampling:
            out["sampling"] = dict(self.sampling)
        return out

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
        problems: list[str] = []
        if not isinstance(obj, dict):
            raise SpecError(["an edit specification must be a JSON object"])
        wide = wide_integers(obj)
        if wide:
            raise SpecError(wide)
        if obj.get("format", FORMAT) != FORMAT:
            problems.append(f"'format' must be {FORMAT!r}")
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
        problems += unknown_keys(obj, _TOP_KEYS, "")

        def get(key, typ, default=None, required=False):
            if key not in obj:
                if required:
                    problems.append(f"missing field {key!r}")
                return default
            val = obj[key]
            if typ is int and (isinstance(val, bool) or not isinstance(val, int)):
                problems.append(f"{key!r} must be an integer, got {val!r}")
                return default
            if typ is not int and not isinstance(val, typ):
                problems.append(f"{key!r} must be a {typ.__name__}, got {type(val).__name__}")
                return default
            return val

        def selection(val, where, allow_offset=False):
            if not isinstance(val, dict):
                problems.append(f"{where} must be an object with 'sample' and 'mask'")
                return None
            problems.extend(
                unknown_keys(
                    val, {"sample", "mask"} | ({"offset"} if allow_offset else set()), where
                )
            )
            s = val.get("sample")
            if isinstance(s, bool) or not isinstance(s, int):
                problems.append(f"{where}: 'sample' must be an integer, got {s!r}")
                s = None
            mask, offset = val.get("mask"), val.get("offset")
            if allow_offset and mask is None and offset is None:
                problems.append(
                    f"{where} needs a 'mask' (where to centre the object) or an "
                    "'offset' [dx, dy] in pixels"
                )
            elif not allow_offset and mask is None:
                problems.append(f"{where} needs a 'mask'")
            if allow_offset and mask is not None and offset is not None:
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

        fallback = default_method(obj.get("model") if isinstance(obj.get("model"), str) else None)
        solver = obj.get("solver", {"name": fallback})
        if isinstance(solver, str):
            solver = {"name": solver}
        if not isinstance(solver, dict) or not isinstance(solver.get("name", fallback), str):
            problems.append("'solver' must be an object {'name': ..., 'params': {...}}")
            solver = {"name": fallback}
        stats = get("stats", dict, {})
        erase = get("erase", dict, {})
        if isinstance(solver, dict):
            problems += unknown_keys(solver, {"name", "params"}, "solver")
        problems += unknown_keys(stats, {"samples", "seed"}, "stats")
        problems += unknown_keys(erase, {"units", "goal"}, "erase")
        context_raw = get("context", list, [])
        preserve_raw = get("preserve", list, [])
        numbers = {}
        for key, default in (("strength", 1.0), ("preserve_weight", DEFAULT_PRESERVE_WEIGHT)):
            val = obj.get(key, default)
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                problems.append(f"{key!r} must be a number, got {val!r}")
                val = default
            numbers[key] = float(val)
        sampling = get("sampling", dict, None)
        if sampling is not None:
            problems += unknown_keys(sampling, {"truncation", "class"}, "sampling")
            sampling = {k: v for k, v in sampling.items() if k in ("truncation", "class")}
            t = sampling.get("truncation", 1.0)
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1:
                problems.append(f"'sampling.truncation' must be a number in [0, 1], got {t!r}")
                sampling.pop("truncation", None)
            elif "truncation" in sampling:
                sampling["truncation"] = float(t)
            k = sampling.get("class", 0)
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                problems.append(f"'sampling.class' must be a class number >= 0, got {k!r}")
                sampling.pop("class", None)

        def solver_params() -> dict:
            params = solver.get("params", {})
            if isinstance(params, dict):
                return params
            problems.append("'solver.params' must be an object")
            return {}

        spec = cls(
            model=get("model", str, "", required=True),
            layer=get("layer", str, "", required=True),
            kind=get("kind", str, "", required=True),
            rank=get("rank", int, DEFAULT_RANK),
            direction=get("direction", str, DEFAULT_DIRECTION),
            solver=solver.get("name", fallback),
            solver_params=solver_params(),
            stats_samples=stats.get("samples", DEFAULT_STATS_SAMPLES),
            stats_seed=stats.get("seed", DEFAULT_STATS_SEED),
            copy=selection(obj["copy"], "copy") if "copy" in obj else None,
            paste=selection(obj["paste"], "paste", allow_offset=True) if "paste" in obj else None,
            context=[
                c
                for i, v in enumerate(context_raw)
                if (c := selection(v, f"context[{i}]")) is not None
            ],
            erase_units=erase.get("units", DEFAULT_ERASE_UNITS),
            erase_goal=erase.get("goal", DEFAULT_ERASE_GOAL),
            preserve=[
                c
                for i, v in enumerate(preserve_raw)
                if (c := selection(v, f"preserve[{i}]")) is not None
            ],
            strength=numbers["strength"],
            preserve_weight=numbers["preserve_weight"],
            sampling=sampling or None,
            name=get("name", str, ""),
            description=get("description", str, ""),
        )
        if obj.get("kind") == "":  # (a missing kind is reported above)
            problems.append(f"'kind' must be one of {KINDS}, got ''")
        problems += spec._own_problems()
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
        """Problems visible without a model."""
        p = []
        if self.kind and self.kind not in KINDS:
            p.append(f"'kind' must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "copy-paste" and (self.copy is None or self.paste is None):
            p.append("a copy-paste edit needs both 'copy' and 'paste'")
        if self.kind == "erase":
            if self.copy is not None or self.paste is not None:
                p.append("an erase edit takes 'context' only, not 'copy' or 'paste'")
            if not self.context:
                p.append("an erase edit needs at least one 'context' region (what to erase)")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            p.append(f"'rank' must be a positive integer, got {self.rank!r}")
        if self.direction not in DIRECTION_METHODS:
            p.append(f"'direction' must be one of {DIRECTION_METHODS}, got {self.direction!r}")
        if self.direction == "mean" and self.rank != 1:
            p.append(f"direction 'mean' has rank 1; use 'zca' for rank {self.rank}")
        if self.solver not in METHODS:
            p.append(f"unknown solver {self.solver!r}; known: {', '.join(METHODS)}")
        else:
            p += method_param_problems(self.solver, self.solver_params)
        if (
            self.solver in METHODS
            and self.kind in KINDS
            and self.kind not in METHODS[self.solver].kinds
        ):
            p.append(
                f"solver {self.solver!r} applies to {' and '.join(METHODS[self.solver].kinds)} "
                f"edits, not {self.kind}"
            )
        if (
            isinstance(self.stats_samples, bool)
            or not isinstance(self.stats_samples, int)
            or not 1 <= self.stats_samples <= MAX_STATS_SAMPLES
        ):
            p.append(
                f"'stats.samples' must be an integer from 1 to {MAX_STATS_SAMPLES}, got "
                f"{self.stats_samples!r}"
            )
        if (
            isinstance(self.stats_seed, bool)
            or not isinstance(self.stats_seed, int)
            or not 0 <= self.stats_seed <= MAX_STATS_SEED
        ):
            p.append(
                f"'stats.seed' must be an integer from 0 to {MAX_STATS_SEED}, got "
                f"{self.stats_seed!r}"
            )
        if (
            isinstance(self.erase_units, bool)
            or not isinstance(self.erase_units, int)
            or self.erase_units < 1
        ):
            p.append(f"'erase.units' must be a positive integer, got {self.erase_units!r}")
        if not (math.isfinite(self.strength) and 0 <= self.strength <= MAX_STRENGTH):
            p.append(
                f"'strength' must be a number from 0 to {MAX_STRENGTH:g}, got {self.strength!r}"
            )
        if not (
            math.isfinite(self.preserve_weight) and 0 < self.preserve_weight <= MAX_PRESERVE_WEIGHT
        ):
            p.append(
                f"'preserve_weight' must be a number above 0 and at most "
                f"{MAX_PRESERVE_WEIGHT:g}, got {self.preserve_weight!r}"
            )
        if self.preserve and self.solver in METHODS and not METHODS[self.solver].not_here:
            takers = [name for name, m in METHODS.items() if m.not_here]
            p.append(
                f"'preserve' regions apply to the layer solvers ({', '.join(takers)}); "
                f"the {self.solver!r} baseline does not use them"
            )
        if self.erase_goal not in ERASE_GOALS:
            p.append(f"'erase.goal' must be one of {ERASE_GOALS}, got {self.erase_goal!r}")
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
