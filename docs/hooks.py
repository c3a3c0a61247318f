"""MkDocs hooks: the parts of the docs that are generated from the code at build time.

A page asks for a generated block with a marker alone on its line::

    <!-- rewrite:schema -->          the edit spec's JSON Schema (rewrite.edit.schema.spec_schema)
    <!-- rewrite:methods -->         the method registry: name, kinds, summary, parameters
    <!-- rewrite:zoo -->             the built-in models (rewrite.models.zoo.ZOO)
    <!-- rewrite:cli-help -->        `rewrite --help` and `rewrite CMD --help` of every command
    <!-- rewrite:api PKG [MOD ...] -->  a mkdocstrings block (`::: PKG.MOD`) for every public module
                                     of the package PKG: the MODs named first, then the rest
                                     (so a new module is in the API reference without a docs edit)

An unknown marker is an error, so a typo fails the (strict) build. Sphinx roles left in the
rendered docstrings (``:func:`` before a name) are dropped. The schema is also
published as a file of the site, ``edit-spec.schema.json``. Nothing here is copied by hand:
change the code, rebuild, and the page follows.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from pathlib import Path

import click
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- rewrite:([a-z-]+)((?: [\w.]+)*) -->$", re.MULTILINE)
SCHEMA_FILE = "edit-spec.schema.json"
HELP_WIDTH = 80           # fits the page column without scrolling


def _schema_text() -> str:
    from rewrite.edit.schema import spec_schema

    return json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"


def _schema_block() -> str:
    return f"```json\n{_schema_text()}```"


def _methods_block() -> str:
    from rewrite.edit.methods import DEFAULT_METHOD, METHODS, MODEL_DEFAULT_METHODS

    defaults: dict[str, list[str]] = {}
    for model, name in MODEL_DEFAULT_METHODS.items():
        defaults.setdefault(name, []).append(f"`{model}`")
    rows = ["| method | edit kinds | what it does | parameters (defaults) |",
            "|---|---|---|---|"]
    for name, method in METHODS.items():
        label = f"`{name}`"
        if name == DEFAULT_METHOD:
            label += " (default)"
        if name in defaults:
            label += f" (default for {', '.join(defaults[name])})"
        params = ", ".join(f"`{f.name}={f.default!r}`" for f in dataclasses.fields(method.params))
        summary = method.summary.replace("|", "\\|")
        rows.append(f"| {label} | {', '.join(method.kinds)} | {summary} | {params or '–'} |")
    return "\n".join(rows)


def _zoo_block() -> str:
    from rewrite.models.zoo import ZOO

    rows = ["| name | family | what | weights | source and licence |", "|---|---|---|---|---|"]
    for e in ZOO.values():
        rows.append(f"| `{e.name}` | `{e.family}` | {e.description} | `{e.member}` of the wheel "
                    f"`{e.requirement}` ({e.size_mb:g} MB), SHA-256 `{e.sha256[:12]}…` "
                    f"| {e.credit} |")
    return "\n".join(rows)


def _cli_group() -> click.Group:
    """The `rewrite` command as pyproject.toml's [project.scripts] names it."""
    try:
        import tomllib                                  # Python 3.11+
    except ImportError:                                 # 3.10: the installed entry point
        from importlib.metadata import entry_points

        target = next(e.value for e in entry_points(group="console_scripts")
                      if e.name == "rewrite")
    else:
        scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        target = scripts["rewrite"]
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _cli_help_block() -> str:
    group = _cli_group()
    root = click.Context(group, info_name="rewrite", terminal_width=HELP_WIDTH,
                         max_content_width=HELP_WIDTH)
    parts = ["## `rewrite --help`", "", "```text", group.get_help(root).rstrip(), "```"]
    for name in group.list_commands(root):
        cmd = group.get_command(root, name)
        ctx = click.Context(cmd, info_name=name, parent=root, terminal_width=HELP_WIDTH,
                            max_content_width=HELP_WIDTH)
        parts += ["", f"## `rewrite {name}`", "", "```text", cmd.get_help(ctx).rstrip(), "```"]
    return "\n".join(parts)


def _api_block(package: str, *first: str) -> str:
    """``::: package.module`` for every public module of ``package`` (a folder of the source
    tree), those in ``first`` first; the package itself with its docstring only."""
    folder = ROOT.joinpath(*package.split("."))
    found = sorted(p.stem for p in folder.glob("*.py")
                   if not p.stem.startswith("_") and p.stem != "conftest")
    if not found:
        raise ValueError(f"rewrite:api {package}: no modules in {folder}")
    # The names only order the page: one that no longer exists is skipped (the pages' links
    # by identifier are what fails the build when something they name is gone).
    order = [m for m in first if m in found] + [m for m in found if m not in first]
    parts = [f"::: {package}\n    options:\n      members: false"]
    parts += [f"::: {package}.{m}" for m in order]
    return "\n\n".join(parts)


BLOCKS = {
    "schema": _schema_block,
    "methods": _methods_block,
    "zoo": _zoo_block,
    "cli-help": _cli_help_block,
    "api": _api_block,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    def replace(m: re.Match) -> str:
        name = m.group(1)
        if name not in BLOCKS:
            raise ValueError(f"{page.file.src_path}: unknown generated block "
                             f"'<!-- rewrite:{name} -->' (known: {', '.join(BLOCKS)})")
        return BLOCKS[name](*m.group(2).split())

    return MARKER.sub(replace, markdown)


#: Sphinx roles in docstrings (``:func:`name` ``), which mkdocstrings leaves as text before the code.
SPHINX_ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|exc|obj):(?=<code>)")


def on_page_content(html: str, page, config, files) -> str:
    """Drop the Sphinx role prefixes of the API reference: ``:func:name`` reads ``name``."""
    return SPHINX_ROLE.sub("", html)


def on_files(files, config):
    """Publish the schema as a file of the site (pages link to it)."""
    files.append(File.generated(config, SCHEMA_FILE, content=_schema_text()))
    return files
