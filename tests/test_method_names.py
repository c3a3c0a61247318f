"""No module outside the method registry branches on a method's name (issue 25).

A method's behaviour is asked of its registry entry (``constrained``, ``joint``,
``not_here``, ``budgeted``, ``kinds``): a comparison with a method's name anywhere else in
the package (``x == "least-collateral"``, ``x in ("adam", "closed-form")``, a ``match``
case) is a second description of that method, and fails here. Naming a method as data
(a default, a list of methods to compare) is not a comparison and is allowed."""

import ast
from pathlib import Path

from rewrite.edit.methods import METHODS

PACKAGE = Path(__file__).resolve().parents[1] / "rewrite"
#: The registry: where methods are defined and may be told apart by name.
REGISTRY = {"memory/solvers.py", "edit/methods.py"}


def _names_in(node: ast.AST, names: set[str]) -> list[str]:
    """Method names that ``node`` holds as string constants, directly or in a literal
    tuple, list, set or dict's keys."""
    if isinstance(node, ast.Constant) and node.value in names:
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [n for elt in node.elts for n in _names_in(elt, names)]
    if isinstance(node, ast.Dict):
        return [n for key in node.keys if key is not None for n in _names_in(key, names)]
    return []


def name_comparisons(source: str, names: set[str]) -> list[tuple[int, str]]:
    """``(line, name)`` of every comparison (or ``match`` case) of a method name in
    ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                found += [(node.lineno, n) for n in _names_in(operand, names)]
        elif isinstance(node, ast.MatchValue):
            found += [(node.lineno, n) for n in _names_in(node.value, names)]
    return found


def test_the_scan_finds_name_comparisons():
    names = {"least-collateral", "closed-form", "adam"}
    source = '''
if delta.method == "least-collateral":
    pass
ok = solver in ("adam", "closed-form")
other = "adam" != s or s not in {"closed-form"}
match solver:
    case "adam":
        pass
fine = ["adam", "closed-form"]          # data, not a comparison
also_fine = label == "least-collateral r4"
'''
    assert name_comparisons(source, names) == [
        (2, "least-collateral"), (4, "adam"), (4, "closed-form"), (5, "adam"),
        (5, "closed-form"), (7, "adam")]


def test_no_module_outside_the_registry_compares_method_names():
    names = set(METHODS)
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in REGISTRY:
            continue
        offenders += [f"rewrite/{rel}:{line}: {name!r}"
                      for line, name in name_comparisons(path.read_text(), names)]
    assert not offenders, ("ask the method's registry entry instead of testing its name:\n"
                           + "\n".join(offenders))
