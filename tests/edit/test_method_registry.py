"""The method registry: one entry per method holds its parameters (limits in the fields'
metadata), function, kinds, capabilities and a summary built from its defaults; the step
callback travels with the call."""

import dataclasses

import pytest

from rewrite.edit import EditSpec, Rewriter
from rewrite.edit.joint import JOINT_SOLVERS
from rewrite.edit.methods import METHODS, PARAM_LIMITS, method_param_problems, method_params
from rewrite.edit.schema import solver_params_schema
from rewrite.memory.registry import Method, param
from rewrite.memory.solvers import SOLVERS, solve

from ..conftest import make_tiny_dcgan
from ..memory.test_memory import _random_problem


@dataclasses.dataclass(frozen=True)
class _Params:
    steps: int = param(7, 50)
    lr: float = param(0.5, 2.0)
    budget: float = param(0.25, per_edit=True)
    relative: bool = True


def _entry(**kw) -> Method:
    return Method("test-method", _Params, "{steps} steps at lr {lr}, budget {budget}",
                  solve=lambda problem, p: None, **kw)


def test_the_summary_is_built_from_the_defaults():
    entry = _entry()
    assert entry.summary == "7 steps at lr 0.5, budget 0.25"
    other = dataclasses.make_dataclass("Other", [("steps", int, param(3, 50)),
                                                 ("lr", float, 0.1), ("budget", float, 1.0)],
                                       frozen=True)
    assert dataclasses.replace(entry, params=other).summary == "3 steps at lr 0.1, budget 1.0"
    # The registered ones: the defaults they state are their parameters' defaults.
    assert "100 Adam steps" in METHODS["closed-form+refine"].summary
    assert "2001 Adam steps" in METHODS["adam"].summary
    for name, m in METHODS.items():
        assert m.summary == m.about.format(**m.defaults()), name


def test_limits_come_from_the_field_metadata():
    entry = _entry()
    assert entry.limits() == {"steps": 50, "lr": 2.0}
    assert entry.param_problems({"steps": 50, "lr": 2.0, "budget": 1e9, "relative": False}) == []
    problems = entry.param_problems({"steps": 51, "lr": 2.5, "budget": -1.0})
    assert problems == ["solver parameter 'steps' must be at most 50, got 51",
                        "solver parameter 'lr' must be at most 2, got 2.5",
                        "solver parameter 'budget' must not be negative, got -1.0"]
    assert "did you mean 'steps'" in entry.param_problems({"step": 3})[0]
    with pytest.raises(ValueError, match="unknown parameter"):
        entry.make_params({"step": 3})
    assert entry.make_params({"steps": 9}) == _Params(steps=9)
    # Every registered method: the validator and the schema enforce its metadata's limits.
    for name, m in METHODS.items():
        props = solver_params_schema(name)["properties"]
        for key, limit in m.limits().items():
            assert PARAM_LIMITS[key] == limit
            assert props[key]["maximum"] == limit, (name, key)
            assert method_param_problems(name, {key: limit}) == []
            assert method_param_problems(name, {key: limit * 2}), (name, key)
        assert method_params(name) == m.params()


def test_per_edit_allowances_add_up_when_solved_together():
    entry = _entry()
    assert entry.joint_params(_Params(), 3) == _Params(budget=0.75)
    lc = METHODS["least-collateral"]
    assert lc.joint_params(lc.make_params({"budget": 0.02}), 2).budget == pytest.approx(0.04)
    cf = METHODS["closed-form"]
    assert cf.joint_params(cf.make_params(), 4) == cf.make_params()


def test_capabilities_say_what_the_names_used_to():
    assert JOINT_SOLVERS == ("least-collateral", "closed-form")
    assert [n for n, m in METHODS.items() if m.not_here] == [
        *SOLVERS, "example-fit", "gated", "gated-pair"]
    assert [n for n, m in METHODS.items() if m.budgeted] == ["least-collateral"]
    assert [n for n, m in METHODS.items() if m.constrained] == [
        "least-collateral", "closed-form+refine", "closed-form", "adam"]
    assert METHODS["finetune-all"].kinds == ("copy-paste",)
    assert METHODS["dissect-erase"].kinds == ("erase",)
    for m in METHODS.values():
        assert (m.solve is None) != (m.run is None)


def test_the_step_callback_travels_in_the_problem():
    seen = []
    problem = dataclasses.replace(_random_problem(), on_step=lambda i, n: seen.append((i, n)))
    solve(problem, "closed-form+refine", {"steps": 4})
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]

    def stop(i, n):
        if i == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        solve(dataclasses.replace(problem, on_step=stop), "adam", {"steps": 10})
    # A problem that carries no callback runs to the end.
    solve(dataclasses.replace(problem, on_step=None), "adam", {"steps": 10})


def test_a_session_passes_the_step_callback_and_its_reporting_callback(tmp_path):
    path = tmp_path / "tiny-dcgan.pt"
    make_tiny_dcgan().save(path)
    session = Rewriter(make_tiny_dcgan(), progress=False, stats_cache=False)
    spec = EditSpec.from_json({
        "version": 1, "model": str(path), "layer": "main.6", "kind": "copy-paste",
        "stats": {"samples": 100}, "solver": {"name": "finetune-all", "params": {"steps": 3}},
        "copy": {"sample": 1, "mask": {"rect": [8, 8, 16, 16]}},
        "paste": {"sample": 2, "mask": {"rect": [16, 16, 24, 24]}},
        "context": [{"sample": 3, "mask": {"rect": [8, 8, 24, 16]}}]})
    inputs = session.prepare(spec)
    for solver, params in (("finetune-all", {"steps": 3}), ("closed-form+refine", {"steps": 3})):
        spec.solver, spec.solver_params = solver, params
        passed, installed = [], []
        session.compute(spec, inputs, step=lambda i, n: passed.append(i))
        assert passed == [0, 1, 2], solver
        with session.reporting(lambda phase, i, n: installed.append((phase, i, n))):
            session.compute(spec, inputs)                       # the app's way
        assert installed == [("solving", 0, 0)] + [("solving", i, 3) for i in (1, 2, 3)], solver
    assert session.deltas == []                                 # compute leaves the model
