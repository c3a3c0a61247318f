"""Registry entries of edit methods: one :class:`Method` holds everything about a method.

A method is a frozen parameter dataclass (its fields, defaults and limits: :func:`param`)
plus one function, and the capabilities the rest of the code asks about instead of
testing the method's name. The layer solvers register in
:data:`rewrite.memory.solvers.SOLVERS`; :data:`rewrite.edit.methods.METHODS` adds the
methods that need the whole model.

Usage::

    @dataclasses.dataclass(frozen=True)
    class MyParams:
        steps: int = param(100, MAX_STEPS)        # default 100, at most MAX_STEPS
        budget: float = param(0.01, per_edit=True)

    MINE = Method("mine", MyParams, "{steps} steps of something", solve=solve_mine,
                  constrained=True)
    MINE.summary                                  # '100 steps of something'
    MINE.param_problems({"steps": -1})            # ["solver parameter 'steps' must not ..."]
    MINE.make_params({"steps": 10})               # MyParams(steps=10, budget=0.01)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from typing import Any

#: ``callback(step, steps)``, called at every step of an iterative solve; may raise to stop.
StepCallback = Callable[[int, int], None]


def param(default, maximum: float | None = None, per_edit: bool = False):
    """A method parameter: its default and limits, kept in the field's metadata.

    Every number is at least 0; ``maximum`` bounds it from above (an edit must finish:
    steps bound the time). ``per_edit``: an allowance of one edit; edits solved together
    (:meth:`Method.joint_params`) get the sum of theirs. The spec's validator, the JSON
    Schema and the CLI help read these.
    """
    meta: dict[str, Any] = {}
    if maximum is not None:
        meta["maximum"] = maximum
    if per_edit:
        meta["per_edit"] = True
    return dataclasses.field(default=default, metadata=meta)


#: Bounds shared by the parameters of several methods.
MAX_STEPS = 100_000
MAX_LR = 10.0
MAX_ACTIVE_SET_ITERS = 1000
MAX_RIDGE_SEARCH = 12


@dataclasses.dataclass(frozen=True)
class Method:
    """A registry entry: everything the code knows about one edit method.

    Code outside the registry asks an entry what it can do (``constrained``, ``joint``,
    ``not_here``, ``budgeted``, ``kinds``), never what it is called.

    Attributes:
        name: the method's name (the spec's ``solver.name``).
        params: its frozen parameter dataclass: the fields and defaults are the
            ``solver.params`` a spec may set, their limits are in the fields' metadata
            (:func:`param`).
        about: what it does, in one line; ``{field}`` is replaced by that parameter's
            default (:attr:`summary`).
        solve: a layer solver's function ``(EditProblem, params) -> SolveResult`` (it sees
            the layer's tensors only); None for a method of the whole model.
        run: a whole-model method's function ``(G, inputs, params, step) -> Delta``
            (:mod:`rewrite.edit.methods`); None for a layer solver.
        kinds: the edit kinds it makes.
        constrained: its update stays in span(D), so the spec's rank applies.
        joint: several edits of one layer can be solved together in one problem (their
            deltas keep their own Λ).
        not_here: it takes the spec's "not here" (preserve) regions.
        budgeted: a collateral budget may hold its edit back (the loss then stays high).
        weights_only: its edit is a change of weights, so a family's checkpoint can hold it
            (False for a gated edit: it is saved as a delta file only).
    """

    name: str
    params: type
    about: str
    solve: Callable[..., Any] | None = None
    run: Callable[..., Any] | None = None
    kinds: tuple[str, ...] = ("copy-paste", "erase")
    constrained: bool = False
    joint: bool = False
    not_here: bool = False
    budgeted: bool = False
    weights_only: bool = True

    def __post_init__(self):
        assert (self.solve is None) != (self.run is None), f"{self.name}: solve or run, not both"
        assert dataclasses.is_dataclass(self.params), self.params

    @property
    def summary(self) -> str:
        """A one-line summary for help texts and tables, with the parameters' defaults."""
        return self.about.format(**self.defaults())

    def defaults(self) -> dict[str, Any]:
        """Parameter name -> default."""
        return {f.name: f.default for f in dataclasses.fields(self.params)}

    def limits(self) -> dict[str, float]:
        """Parameter name -> upper bound, for the parameters that have one."""
        return {
            f.name: f.metadata["maximum"]
            for f in dataclasses.fields(self.params)
            if "maximum" in f.metadata
        }

    def make_params(self, overrides: dict | None = None):
        """The parameter dataclass with ``overrides`` applied; ValueError naming unknown ones."""
        fields = {f.name for f in dataclasses.fields(self.params)}
        unknown = sorted(set(overrides or {}) - fields)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for solver {self.name!r}; "
                f"it takes {sorted(fields)}"
            )
        return self.params(**(overrides or {}))

    def param_problems(self, overrides: dict) -> list[str]:
        """Problems with ``overrides`` (unknown names, wrong types, out of the limits)."""
        name, problems = self.name, []
        fields = {f.name: f for f in dataclasses.fields(self.params)}
        for key, val in overrides.items():
            if key not in fields:
                close = difflib.get_close_matches(str(key), sorted(fields), n=1, cutoff=0.6)
                if close:
                    problems.append(
                        f"solver {name!r} has no parameter {key!r}; did you mean {close[0]!r}?"
                    )
                    continue
                problems.append(
                    f"solver {name!r} has no parameter {key!r}; it takes {sorted(fields) or 'none'}"
                )
                continue
            want = type(fields[key].default)
            limit = fields[key].metadata.get("maximum", float("inf"))
            ok = isinstance(val, want) and not (want is not bool and isinstance(val, bool))
            if want is float and isinstance(val, int) and not isinstance(val, bool):
                ok = True
            if not ok:
                problems.append(f"solver parameter {key!r} must be a {want.__name__}, got {val!r}")
            elif want is float and not math.isfinite(val):
                problems.append(f"solver parameter {key!r} must be a finite number, got {val!r}")
            elif want in (int, float) and val < 0:
                problems.append(f"solver parameter {key!r} must not be negative, got {val!r}")
            elif want in (int, float) and val > limit:
                problems.append(f"solver parameter {key!r} must be at most {limit:g}, got {val!r}")
        return problems

    def joint_params(self, params, n: int):
        """``params`` for ``n`` edits solved together: each ``per_edit`` allowance summed
        (each edit is allowed what it would be allowed alone)."""
        scaled = {
            f.name: getattr(params, f.name) * n
            for f in dataclasses.fields(params)
            if f.metadata.get("per_edit")
        }
        return dataclasses.replace(params, **scaled)


def registry(*entries: Method) -> dict[str, Method]:
    """Name -> entry, in the order given."""
    return {m.name: m for m in entries}
