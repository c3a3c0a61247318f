"""How a generator samples: one frozen value, :class:`Sampling`, and the rules over it.

A generator holds one :class:`Sampling` (``G.sampling``) and replaces it through one
setter, :meth:`Generator.set_sampling <rewrite.models.base.Generator.set_sampling>`, which
checks the change against what the family supports. Each family declares that once:
``sampling_fields``, the fields its rendering reads, and ``noise_modes``, the noise modes
it accepts. Everything else is written here, once for every family: the defaults, the
checks (:func:`sampling_problems`), the cache tag (:meth:`Sampling.tag`) and the form an
edit spec records (:meth:`Sampling.settings`, :func:`from_settings`).

Usage::

    G.set_sampling(truncation=0.7, class_index=3)  # the one setter; checked
    G.sampling                                     # Sampling(truncation=0.7, ..., class_index=3)
    G.sampling_settings()                          # {"truncation": 0.7, "class": 3}: a spec's form
    G.sampling_tag()                               # "-t0.7-class3": part of cache keys
    with G.using_sampling({"class": 1}):           # a spec's ``sampling`` for a while
        ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from ..utils.errors import RewriteError


@dataclasses.dataclass(frozen=True)
class Sampling:
    """The settings that decide what a sample index renders, besides the weights.

    A field a family does not read (see ``Generator.sampling_fields``) keeps its default.

    Attributes:
        truncation: pull w toward the mean latent (1 = none; StyleGAN families).
        cutoff: truncate only the first ``cutoff`` ws (None: all of them; stylegan2-ada
            and stylegan3).
        noise: ``"const"`` (the stored noise buffers, deterministic), ``"random"`` (drawn
            afresh) or ``"none"``; which a family accepts is its ``noise_modes``.
        class_index: the class a class-conditional model samples (an edit spec's
            ``"class"``).
    """

    truncation: float = 1.0
    cutoff: int | None = None
    noise: str = "const"
    class_index: int = 0

    def replace(self, **changes: Any) -> Sampling:
        """A copy with ``changes`` (field name -> value); TypeError for an unknown name."""
        return dataclasses.replace(self, **changes)

    def changes_from(self, other: Sampling) -> dict[str, Any]:
        """The fields whose values differ from ``other``'s, with this value's values."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        }

    def tag(self, fields: Collection[str]) -> str:
        """The suffix naming these settings in cache keys, from the ``fields`` the model
        reads: ``-t<truncation>`` (then ``c<cutoff>``) when truncating, ``-class<k>`` on
        a class-conditional model (always, class 0 too), ``-noise-<mode>`` when not const.
        Empty at the defaults of a model without classes."""
        tag = ""
        if "truncation" in fields and self.truncation != 1.0:
            tag += f"-t{self.truncation:g}"
            if "cutoff" in fields and self.cutoff is not None:
                tag += f"c{self.cutoff}"
        if "class_index" in fields:
            tag += f"-class{self.class_index}"
        if "noise" in fields and self.noise != "const":
            tag += f"-noise-{self.noise}"
        return tag

    def settings(self, fields: Collection[str]) -> dict[str, Any]:
        """These settings as an edit spec's ``sampling`` records them, for a model reading
        ``fields``: ``truncation`` and ``class`` where the model has them."""
        return {key: getattr(self, name) for key, name in SPEC_KEYS.items() if name in fields}


#: An edit spec's ``sampling`` keys and the :class:`Sampling` fields they set.
SPEC_KEYS: dict[str, str] = {"truncation": "truncation", "class": "class_index"}

#: What a spec without ``sampling`` means.
DEFAULT_SAMPLING = Sampling()
_DEFAULT_SETTINGS = DEFAULT_SAMPLING.settings(SPEC_KEYS.values())


def from_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """A spec's ``sampling`` (``truncation``, ``class``; None: nothing) as changes of
    :class:`Sampling` fields, for ``Generator.set_sampling(**changes)``."""
    changes: dict[str, Any] = {}
    for key, value in (settings or {}).items():
        if key not in SPEC_KEYS:
            raise RewriteError(f"'sampling.{key}': unknown setting (truncation, class)")
        changes[SPEC_KEYS[key]] = value
    return changes


def non_default(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The entries of a spec's ``sampling`` that differ from the defaults (what a spec
    records: ``{}`` for truncation 1, class 0)."""
    return {k: v for k, v in (settings or {}).items() if v != _DEFAULT_SETTINGS.get(k)}


def sampling_problems(
    changes: Mapping[str, Any],
    *,
    family: str,
    fields: Collection[str],
    noise_modes: Collection[str],
    classes: int,
) -> list[str]:
    """What in ``changes`` (:class:`Sampling` field -> value) a model cannot take; [] if
    fine. The model is a ``family`` one reading ``fields``, accepting ``noise_modes``,
    with ``classes`` classes (0: not class-conditional). A class given to a model without
    classes is refused whatever its value; other fields the model does not read may only
    be given their defaults."""
    problems = []
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(Sampling)})
    if unknown:
        problems.append(f"unknown sampling settings {unknown}")
    t = changes.get("truncation", 1.0)
    if "truncation" not in fields and t != 1.0:
        problems.append(
            f"'sampling.truncation' {t:g}: a {family} model has no truncation; leave it out"
        )
    cutoff = changes.get("cutoff")
    if cutoff is not None:
        if "cutoff" not in fields:
            problems.append(f"truncation cutoff {cutoff}: a {family} model has no cutoff")
        elif not (isinstance(cutoff, int) and cutoff >= 0):
            problems.append(f"truncation cutoff must be a count >= 0, got {cutoff!r}")
    noise = changes.get("noise", "const")
    if noise not in noise_modes:
        if len(noise_modes) <= 1:
            problems.append(
                f"truncation and noise options apply to StyleGAN2 models; this is a {family} model"
            )
        else:
            *first, last = (repr(m) for m in noise_modes)
            problems.append(f"noise must be {', '.join(first)} or {last}, got {noise!r}")
    if "class_index" in changes:
        k = changes["class_index"]
        if not classes:
            problems.append(
                f"'sampling.class': this {family} model is not class-conditional; leave it out"
            )
        elif not 0 <= k < classes:
            problems.append(
                f"'sampling.class' {k} is out of range: this model has {classes} classes "
                f"(0..{classes - 1})"
            )
    return problems
