"""The fields of an edit specification, defined once.

Each :class:`Field` of :data:`FIELDS` is one key of the JSON form (dotted inside a
section: ``stats.samples``): its JSON type, default, bounds or choices, whether it is
required, the :class:`~rewrite.edit.spec.EditSpec` attribute it fills, when
:meth:`~rewrite.edit.spec.EditSpec.to_json` leaves it out, and what it means. The parser
(:meth:`~rewrite.edit.spec.EditSpec.from_json`, and the checks of a spec built in Python)
checks every field with :meth:`Field.problem`, and :mod:`.schema` writes the JSON Schema
from the same entries, so a new field or bound is written here only (and as an attribute
of the dataclass). Fields with a ``shape`` (the solver, the selections) are read and
described by code in both places; so are the rules between fields (a copy-paste needs
``copy`` and ``paste``, a method's kinds and parameters, which its registry entry checks).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..memory.directions import DIRECTION_METHODS
from ..models.latents import MAX_SAMPLES
from .layer_stats import DEFAULT_STATS_SAMPLES, DEFAULT_STATS_SEED
from .limits import MAX_STATS_SEED, MAX_STRENGTH
from .methods import METHODS

FORMAT = "rewrite.edit"
VERSION = 1
KINDS = ("copy-paste", "erase")
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
#: Largest magnitude of an integer anywhere in a spec: every integer field (sample numbers,
#: seeds, counts, solver settings) fits in 64 bits. A wider literal is refused by name
#: before anything converts it (Python will not even print an int over 4300 digits).
MAX_SPEC_INT = 2**63 - 1

#: Python's name of each JSON type, as the messages of the parser say it.
_TYPE_WORDS = {
    "string": "a str",
    "object": "a dict",
    "array": "a list",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
}


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclasses.dataclass(frozen=True)
class Field:
    """One key of the spec's JSON form.

    ``minimum`` / ``maximum`` bound a number (``exclusive_minimum``: the minimum itself is
    refused; an integer lies within +-:data:`MAX_SPEC_INT` in any case); ``choices`` or
    ``const`` fix its values. ``attr`` is the :class:`~rewrite.edit.spec.EditSpec` attribute
    it fills (a section with an ``attr`` is kept there as a dict of the keys given; one
    without spreads its fields into their own attributes). ``omit`` says when ``to_json``
    leaves it out: ``"empty"`` (when empty) or ``"default"`` (when the default); a field
    ``for_kind`` is written for edits of that kind only (and read for any). ``shape``
    marks a field read by code (``section``: an object of the dotted fields under it;
    ``solver``, ``selection``, ``paste``, ``selections``: see :mod:`.spec`). ``must``
    replaces the generated words of the message (``'{key}' must be <words>, got ...``);
    ``model_bound``: the bounds are checked against the model, by ``validate_for``.
    """

    key: str
    type: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple | None = None
    const: Any = None
    attr: str | None = None
    omit: str = ""
    for_kind: str = ""
    shape: str = ""
    must: str = ""
    model_bound: bool = False
    description: str = ""

    @property
    def name(self) -> str:
        """The key inside its section (``samples`` of ``stats.samples``)."""
        return self.key.rpartition(".")[2]

    @property
    def section(self) -> str:
        """The section the field belongs to (``""`` at the top)."""
        return self.key.rpartition(".")[0]

    @property
    def lowest(self) -> float | None:
        """The smallest value taken (integers: at least -:data:`MAX_SPEC_INT`)."""
        if self.minimum is None and self.type == "integer" and self.choices is None:
            return -MAX_SPEC_INT
        return self.minimum

    @property
    def highest(self) -> float | None:
        """The largest value taken (integers: at most :data:`MAX_SPEC_INT`)."""
        if self.maximum is None and self.type == "integer" and self.choices is None:
            return MAX_SPEC_INT
        return self.maximum

    def has_type(self, value: Any) -> bool:
        """Whether ``value`` is of the field's JSON type (a bool is not a number)."""
        if self.type in ("integer", "number"):
            kinds: tuple[type, ...] = (int,) if self.type == "integer" else (int, float)
            return isinstance(value, kinds) and not isinstance(value, bool)
        py = {"string": str, "object": dict, "array": list, "boolean": bool}[self.type]
        return isinstance(value, py)

    def accepts(self, value: Any) -> bool:
        """Whether the field takes ``value`` (type, finiteness, bounds, choices)."""
        if self.const is not None:
            return value == self.const and self.has_type(value)
        if self.choices is not None:
            return self.has_type(value) and value in self.choices
        if not self.has_type(value):
            return False
        if self.type not in ("integer", "number") or self.model_bound:
            return True
        if isinstance(value, float) and not math.isfinite(value):
            return False
        lo, hi = self.lowest, self.highest
        if lo is not None and (value <= lo if self.exclusive_minimum else value < lo):
            return False
        return hi is None or value <= hi

    @property
    def words(self) -> str:
        """What the field must be, as its message says it."""
        if self.const is not None:
            return repr(self.const)
        if self.choices is not None:
            return f"one of {self.choices}"
        if self.must:
            return self.must.format(minimum=self.minimum, maximum=self.maximum)
        lo, hi, noun = self.minimum, self.maximum, _TYPE_WORDS[self.type]
        if lo is None or self.model_bound:
            return noun
        if hi is None:
            return "a positive integer" if self.type == "integer" and lo == 1 else f"{noun} >= {lo}"
        if self.exclusive_minimum:
            return f"{noun} above {_num(lo)} and at most {_num(hi)}"
        return f"{noun} from {_num(lo)} to {_num(hi)}"

    def problem(self, value: Any) -> str | None:
        """The parser's message for ``value``, or None if the field takes it."""
        if self.accepts(value):
            return None
        scalar = self.type in ("integer", "number") or self.choices or self.const is not None
        got = repr(value) if scalar else type(value).__name__
        return f"{self.key!r} must be {self.words}, got {got}"


_NOT_HERE = ", ".join(name for name, m in METHODS.items() if m.not_here)

#: Every field of the JSON form, in the order ``to_json`` writes them.
FIELDS: tuple[Field, ...] = (
    Field("format", "string", const=FORMAT),
    Field("version", "integer", const=VERSION, required=True),
    Field("name", "string", "", attr="name", omit="empty"),
    Field("description", "string", "", attr="description", omit="empty"),
    Field(
        "model",
        "string",
        "",
        required=True,
        attr="model",
        description="Zoo name or checkpoint path.",
    ),
    Field(
        "layer",
        "string",
        "",
        required=True,
        attr="layer",
        description="Editable layer (rewrite layers MODEL).",
    ),
    Field("kind", "string", "", required=True, choices=KINDS, attr="kind"),
    Field(
        "rank",
        "integer",
        DEFAULT_RANK,
        minimum=1,
        attr="rank",
        description="Rank of the change (at most the layer's key channels); direction 'mean' "
        "takes rank 1 only.",
    ),
    Field("direction", "string", DEFAULT_DIRECTION, choices=DIRECTION_METHODS, attr="direction"),
    Field("solver", "object", shape="solver"),
    Field("stats", "object", shape="section"),
    Field(
        "stats.samples",
        "integer",
        DEFAULT_STATS_SAMPLES,
        minimum=1,
        maximum=MAX_STATS_SAMPLES,
        attr="stats_samples",
    ),
    Field(
        "stats.seed",
        "integer",
        DEFAULT_STATS_SEED,
        minimum=0,
        maximum=MAX_STATS_SEED,
        attr="stats_seed",
    ),
    Field("copy", "object", shape="selection"),
    Field("paste", "object", shape="paste"),
    Field("context", "array", shape="selections"),
    Field(
        "preserve",
        "array",
        shape="selections",
        omit="empty",
        description='"Not here": regions the rule must leave alone (solved with their current '
        f"values as the goal; layer solvers only: {_NOT_HERE}).",
    ),
    Field(
        "preserve_weight",
        "number",
        DEFAULT_PRESERVE_WEIGHT,
        minimum=0,
        exclusive_minimum=True,
        maximum=MAX_PRESERVE_WEIGHT,
        attr="preserve_weight",
        omit="default",
        description='How much the "not here" regions count, all together, relative to the goal.',
    ),
    Field("erase", "object", for_kind="erase", shape="section"),
    Field("erase.units", "integer", DEFAULT_ERASE_UNITS, minimum=1, attr="erase_units"),
    Field(
        "erase.goal",
        "string",
        DEFAULT_ERASE_GOAL,
        choices=ERASE_GOALS,
        attr="erase_goal",
        description="inpaint: the region's values from the most similar faces without the "
        "object; zero-units: the most active units zeroed there.",
    ),
    Field(
        "strength",
        "number",
        1.0,
        minimum=0,
        maximum=MAX_STRENGTH,
        attr="strength",
        omit="default",
        description="Factor s on the solved change: the layer uses W0 + s·ΔW (0: the original "
        "weight, 1: the edit).",
    ),
    Field(
        "sampling",
        "object",
        shape="section",
        attr="sampling",
        omit="empty",
        description="How the sample indices were rendered when the edit was made (default: "
        "truncation 1, class 0); statistics, goals and evaluation use these settings.",
    ),
    Field(
        "sampling.truncation",
        "number",
        minimum=0,
        maximum=1,
        must="a number in [{minimum}, {maximum}]",
        description="Truncation toward the mean latent (StyleGAN families; 1 = none).",
    ),
    Field(
        "sampling.class",
        "integer",
        minimum=0,
        must="a class number >= {minimum}",
        description="Class of a class-conditional model.",
    ),
)
BY_KEY = {f.key: f for f in FIELDS}
#: The keys at the top of a spec.
TOP_KEYS = tuple(f.key for f in FIELDS if not f.section)

#: A selection's sample index (its range is the model's: ``validate_for`` checks it).
SAMPLE = Field(
    "sample", "integer", required=True, minimum=0, maximum=MAX_SAMPLES - 1, model_bound=True
)
#: The keys of a selection (``copy``, ``context[i]``, ``preserve[i]``) and of ``paste``,
#: which takes an ``offset`` instead of a mask.
SELECTION_KEYS = ("sample", "mask")
PASTE_KEYS = ("sample", "mask", "offset")
OFFSET_DESCRIPTION = "[dx, dy] in pixels from where the object was copied."
#: The keys of the ``solver`` object (or a method's name alone).
SOLVER_KEYS = ("name", "params")


def fields_of(section: str) -> tuple[Field, ...]:
    """The fields of a section (``""``: the top level), in order."""
    return tuple(f for f in FIELDS if f.section == section)
