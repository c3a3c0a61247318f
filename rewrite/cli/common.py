"""What the command modules share: option groups declared once, parameter types, and the
few steps every command takes (checking outputs, loading a spec and its model).

Nothing here imports torch, the model code or the rest of the library at import time:
``rewrite --help`` and ``rewrite CMD --help`` read only this package. The figures help
shows about the spec format (strength and sample bounds, the solvers and what each
does) come from the spec's JSON Schema file, which the library generates from its rules
(``rewrite.edit.schema``; a test keeps the file equal to them). Library values shown as
defaults are :class:`LibraryDefault`\\ s, each checked against the library by a test.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from pathlib import Path
from typing import Any

import click

#: The spec's JSON Schema, as packaged beside the spec module (read as a file, so that
#: reading it does not import ``rewrite.edit``).
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "edit" / "edit-spec.schema.json"


def library_value(ref: str) -> Any:
    """The object ``"package.module:NAME"`` names (imported now)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def spec_rules() -> dict[str, Any]:
    """Bounds and choices of the spec format, from its JSON Schema: ``max_strength``,
    ``stats_samples`` / ``stats_seed`` (``(default, maximum)``), ``max_sample`` and
    ``solvers`` (name -> one-line summary, in the registry's order)."""
    schema = json.loads(SCHEMA_PATH.read_text())
    props, defs = schema["properties"], schema["$defs"]
    stats = props["stats"]["properties"]
    names = next(alt["enum"] for alt in props["solver"]["anyOf"] if "enum" in alt)
    solvers = {}
    for name in names:
        text = defs.get(f"params-{name}", {}).get("description", "")
        solvers[name] = text.split("(each optional): ", 1)[-1].rstrip(".")
    return {
        "max_strength": props["strength"]["maximum"],
        "stats_samples": (stats["samples"]["default"], stats["samples"]["maximum"]),
        "stats_seed": (stats["seed"]["default"], stats["seed"]["maximum"]),
        "max_sample": defs["sample"]["maximum"],
        "solvers": solvers,
    }


class LibraryDefault:
    """An option's default that lives in the library, read when a command runs (not when
    help is shown); ``shown`` is what help prints (tests/cli checks it is the value)."""

    def __init__(self, ref: str, shown: str):
        self.ref, self.shown = ref, shown

    def __call__(self) -> Any:
        return library_value(self.ref)

    def __str__(self) -> str:  # what click's help shows as the default
        return self.shown

    def __repr__(self) -> str:
        return f"LibraryDefault({self.ref!r}, {self.shown!r})"


class LazyChoice(click.ParamType):
    """A choice among the keys of a library registry, imported when a value is checked
    (help shows ``metavar``, not the list: listing it would import the registry)."""

    name = "choice"

    def __init__(self, ref: str, metavar: str):
        self.ref, self.metavar = ref, metavar

    def get_metavar(self, param, ctx=None) -> str:
        return self.metavar

    def convert(self, value, param, ctx):
        return click.Choice(sorted(library_value(self.ref))).convert(value, param, ctx)


class OutputFile(click.Path):
    """A file to write whose name must end in ``suffix`` (``PNG``: ``.png``)."""

    def __init__(self, suffix: str):
        super().__init__(dir_okay=False)
        self.suffix = suffix

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if Path(value).suffix.lower() != self.suffix:
            self.fail(f"{value} must end in {self.suffix}", param, ctx)
        return value


#: An image the command writes.
PNG = OutputFile(".png")


def seeds_callback(ctx, param, value):
    """``--seeds`` text as a list of sample indices (rewrite.sampling.seeds)."""
    from ..sampling.seeds import parse_seeds
    from ..utils.errors import RewriteError

    try:
        return parse_seeds(value)
    except RewriteError as e:
        raise click.BadParameter(str(e)) from None


def finite(ctx, param, value):
    """Reject NaN, which passes click's float ranges."""
    if value is not None and value != value:
        raise click.BadParameter("must be a number, got nan")
    return value


def device(name: str):
    """``--device`` as a torch device: auto (CUDA when there is one), cpu, cuda or cuda:N."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise click.BadParameter(
            f"unknown device {name!r}; use auto, cpu or cuda[:N]", param_hint="--device"
        ) from None
    if dev.type not in ("cpu", "cuda"):
        raise click.BadParameter(
            f"unsupported device {name!r}; use auto, cpu or cuda[:N]", param_hint="--device"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter(
            "CUDA is not available on this machine; use --device cpu", param_hint="--device"
        )
    return dev


# -- option groups --------------------------------------------------------------


def weights_options(f=None, device: bool = True):
    """``--weights``, ``--arch`` and (unless ``device=False``) ``--device``: the options of
    every command that loads a model. Usable as ``@weights_options`` or
    ``@weights_options(device=False)``."""

    def wrap(f):
        if device:
            f = click.option(
                "--device",
                "device_name",
                default="auto",
                show_default=True,
                help="auto, cpu, cuda or cuda:N.",
            )(f)
        f = click.option(
            "--arch",
            type=LazyChoice("rewrite.models:FAMILIES", "FAMILY"),
            default=None,
            help="Generator family of the file (default: detected from the "
            "file's content; `rewrite models` lists the families).",
        )(f)
        f = click.option(
            "--weights",
            type=click.Path(dir_okay=False),
            default=None,
            help="Local checkpoint (or the zoo entry's wheel) to use instead of "
            "downloading; for offline machines. Its family is detected from "
            "its content (--arch overrides), with or without a MODEL.",
        )(f)
        return f

    return wrap(f) if f is not None else wrap


#: The built-in model, MODEL's default.
DEFAULT_MODEL = LibraryDefault("rewrite.models:DEFAULT_MODEL", "dcgan-digiface64")


def model_options(f):
    """A MODEL argument (default: the built-in model) and the weights options."""
    f = weights_options(f)
    f = click.argument("model", default=DEFAULT_MODEL, required=False)(f)
    return f


def spec_model_options(f):
    """Options of commands that read a spec: the model defaults to the spec's."""
    f = weights_options(f)
    f = click.option(
        "--model", default=None, help="Model to edit instead of the one the spec names."
    )(f)
    return f


def sampling_options(f):
    """The sampling options; each defaults to "not given" (None), so that a value given,
    whatever it is, overrides a spec's ``sampling`` (rewrite.sampling.settings)."""
    f = click.option(
        "--noise",
        type=click.Choice(["const", "random"]),
        default=None,
        help="StyleGAN2: stored noise buffers (const, the default), or fresh noise.",
    )(f)
    f = click.option(
        "--truncation",
        type=click.FloatRange(0, 1),
        default=None,
        callback=finite,
        help="StyleGAN2: pull w toward latent_avg (1 = no truncation) "
        "[default: the spec's, else 1].",
    )(f)
    f = click.option(
        "--class",
        "class_index",
        type=click.IntRange(min=0),
        default=None,
        help="Class-conditional models (NVIDIA pickles with c_dim > 0): the class "
        "to sample [default: the spec's, else 0].",
    )(f)
    return f


def set_sampling(G, spec_sampling=None, *, truncation=None, noise=None, class_index=None):
    """:func:`rewrite.sampling.settings.use_sampling`, its refusals as errors of the
    options given."""
    from ..sampling.settings import use_sampling
    from ..utils.errors import RewriteError

    try:
        return use_sampling(
            G, spec_sampling, truncation=truncation, noise=noise, class_index=class_index
        )
    except RewriteError as e:
        given = [
            flag
            for flag, v in (
                ("--truncation", truncation),
                ("--noise", noise),
                ("--class", class_index),
            )
            if v is not None
        ]
        if not given:
            raise
        raise click.BadParameter(str(e), param_hint="/".join(given)) from None


# -- steps ------------------------------------------------------------------------


def model_label(model: str, weights) -> str:
    """What a command calls the model it loaded: MODEL, or the --weights file when MODEL was
    left at its default (``rewrite sample --weights ffhq.pkl`` samples ffhq.pkl)."""
    ctx = click.get_current_context(silent=True)
    if (
        weights
        and ctx is not None
        and ctx.get_parameter_source("model") is click.core.ParameterSource.DEFAULT
    ):
        return str(weights)
    return model


def check_outputs(
    outputs: dict,
    model=None,
    weights=None,
    spec_path=None,
    inputs=None,
    folders: tuple[str, ...] = (),
) -> None:
    """Refuse, before any work, outputs that are inputs, are named twice or cannot be
    written (see :func:`rewrite.utils.fileio.check_outputs`); the model counts as an input
    when it names a local file."""
    from ..utils.fileio import check_outputs as check

    ins = dict(inputs or {})
    ins.update({"--weights": weights, "SPEC.json": spec_path})
    if model is not None and Path(str(model)).expanduser().is_file():
        ins["MODEL"] = model
    check(outputs, ins, folders)


def safe_name(name: str) -> str:
    """``name`` made safe as one path component (no folders, no leading dots)."""
    return re.sub(r"[^\w.-]+", "-", name).strip(".-") or "edit"


def load_for_spec(
    spec_path, model, weights, arch, device_name, *, truncation=None, noise=None, class_index=None
):
    """The spec and its model (MODEL given, else the spec's), checked, sampling as the
    spec records (truncation, class) unless a sampling option says otherwise, so what the
    command renders is what the edit was made on. ``device_name`` is --device's text, or
    a torch device already chosen (under torchrun, the rank's)."""
    from ..edit.spec import EditSpec
    from ..models import load_model

    spec = EditSpec.load(spec_path)
    G = load_model(
        model or spec.model,
        weights=weights,
        arch=arch,
        device=device_name if not isinstance(device_name, str) else device(device_name),
    )
    spec.validate_for(G)
    set_sampling(G, spec.sampling, truncation=truncation, noise=noise, class_index=class_index)
    return spec, G
