"""The command line answers help without the library: `rewrite --help` and `rewrite CMD
--help` import neither torch nor the model code, and what help shows of the library (the
spec's bounds and solvers, defaults) is the library's."""

import json
import subprocess
import sys

import click
import pytest

from rewrite.cli import COMMANDS, main
from rewrite.cli.common import LibraryDefault, spec_rules

from ..conftest import ROOT

PROBE = """
import json, sys
from rewrite.cli import main
for args in ARGS:
    try:
        main(args, prog_name="rewrite", standalone_mode=True)
    except SystemExit as e:
        assert e.code == 0, (args, e.code)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy")
               or m.startswith(("rewrite.models", "rewrite.edit", "rewrite.metrics",
                                "rewrite.sampling", "rewrite.memory", "rewrite.ui")))
print(json.dumps(heavy))
"""


def _loaded_after(args_list):
    """Modules of HEAVY loaded by a fresh interpreter that ran ``rewrite ARGS`` for each."""
    code = PROBE.replace("ARGS", repr(args_list))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_imports_neither_torch_nor_the_model_code():
    """`rewrite --help` and every `rewrite CMD --help`, in one fresh interpreter: none of
    them may import torch, numpy or the library's rooms (the CLI package and
    rewrite.utils' plumbing only)."""
    loaded = _loaded_after([["--help"]] + [[name, "--help"] for name in COMMANDS])
    roots = sorted({m if m.startswith("rewrite") else m.split(".")[0] for m in loaded})
    assert loaded == [], f"help imported {roots}"


def test_the_probe_sees_a_heavy_import():
    """The check above can fail: a command that runs imports torch and the model code."""
    loaded = _loaded_after([["models"]])
    assert "torch" in loaded and "rewrite.models" in loaded


def test_every_command_is_found_under_its_name():
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        assert main.get_command(ctx, name).name == name
    assert main.get_command(ctx, "no-such-command") is None


def _all_params():
    ctx = click.Context(main)
    for name in COMMANDS:
        for p in main.get_command(ctx, name).params:
            yield name, p


def test_defaults_help_shows_are_the_library_values():
    """A library default is shown in help without importing the library; what help shows
    must be the value the command uses."""
    found = 0
    for name, p in _all_params():
        if isinstance(p.default, LibraryDefault):
            found += 1
            assert str(p.default) == str(p.default()), (name, p.name)
    assert found >= 3            # MODEL of several commands, import-edit's --model, --quantile


def test_what_help_shows_of_the_spec_format_is_the_library_rule():
    """Help reads the spec's bounds and solvers from the schema file the library generates;
    they must be the library's (a stale schema file fails here and in tests/edit)."""
    from rewrite.edit.layer_stats import DEFAULT_STATS_SAMPLES, DEFAULT_STATS_SEED
    from rewrite.edit.methods import METHODS
    from rewrite.edit.spec import MAX_STATS_SAMPLES, MAX_STRENGTH
    from rewrite.models.latents import MAX_SAMPLES

    rules = spec_rules()
    assert rules["max_strength"] == MAX_STRENGTH
    assert rules["stats_samples"] == (DEFAULT_STATS_SAMPLES, MAX_STATS_SAMPLES)
    assert rules["stats_seed"] == (DEFAULT_STATS_SEED, 2 ** 32 - 1)
    assert rules["max_sample"] == MAX_SAMPLES - 1
    assert rules["solvers"] == {n: m.summary for n, m in METHODS.items()}


def test_choices_from_registries_are_checked_when_the_command_runs():
    from ..conftest import invoke

    res = invoke("layers", "--arch", "nope")
    assert res.returncode == 2 and "--arch" in res.stderr and "dcgan" in res.stderr
    res = invoke("edit", "x.json", "--solver", "nope", "--out", "x.pt")
    assert res.returncode == 2 and "least-collateral" in res.stderr


@pytest.mark.parametrize("args", [["sample", "--out", "g.jpg"], ["goal", "s.json", "--out", "g"],
                                  ["match", "s.json", "--out", "m.gif"],
                                  ["compare", "s.json", "--out", "c.PNG.txt"]])
def test_every_picture_output_must_be_a_png(args):
    """One output type for the four commands that write a picture, checked before any work
    (the spec s.json does not exist: the output is refused first)."""
    from ..conftest import invoke

    res = invoke(*args)
    assert res.returncode == 2 and "must end in .png" in res.stderr, res.stderr
