"""Which sampling settings a command renders with: an option given wins over the spec's
``sampling``, which wins over the model's own defaults.

Usage::

    use_sampling(G, spec.sampling)                        # as the edit was made
    use_sampling(G, spec.sampling, truncation=0.7)        # the spec's class, truncation 0.7
    use_sampling(G, truncation=None, class_index=None)    # the model's defaults, untouched

``None`` means "not given" for every option, so an explicit ``truncation=1.0`` overrides a
spec's truncation like any other value. The checks (a truncation the family has not got,
a class out of range) are the model's own (:meth:`Generator.set_sampling`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models.base import Generator
from ..models.sampling import from_settings


def chosen_sampling(
    spec_sampling: Mapping[str, Any] | None = None,
    *,
    truncation: float | None = None,
    class_index: int | None = None,
) -> dict[str, Any]:
    """The settings (keys of :meth:`Generator.sampling_settings`) to render with: each
    option given (not None) over the spec's ``sampling`` (None: none recorded)."""
    settings = dict(spec_sampling or {})
    if truncation is not None:
        settings["truncation"] = float(truncation)
    if class_index is not None:
        settings["class"] = int(class_index)
    return settings


def use_sampling(
    G: Generator,
    spec_sampling: Mapping[str, Any] | None = None,
    *,
    truncation: float | None = None,
    noise: str | None = None,
    class_index: int | None = None,
) -> dict[str, Any]:
    """Set ``G`` to sample with :func:`chosen_sampling` and, given ``noise``, that noise
    mode (StyleGAN families; others take only "const"), in one :meth:`Generator.set_sampling`.
    Returns the settings applied (a spec's form). Raises :class:`RewriteError` naming what
    this model cannot do; then nothing changed."""
    settings = chosen_sampling(spec_sampling, truncation=truncation, class_index=class_index)
    changes = from_settings(settings)
    if noise is not None:
        changes["noise"] = noise
    G.set_sampling(**changes)
    return settings
