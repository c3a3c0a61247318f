"""One prepared view of a generator at one layer, shared by everything that builds a goal.

Building an edit's goal asks the generator for the same things several times: the
layer's :class:`~rewrite.models.base.LayerInfo`, the latents of a few samples, their
forward pass stopped at the layer (the paste sample is often a context sample too), their
images. A :class:`LayerView` is made once per goal build from ``(G, layer)``: it fetches
the layer's info once and memoises ``latents(samples)``, ``split(samples)`` and
``images(samples)`` under the exact tuple of samples. Each call it answers is made
exactly as before (the same samples in the same batch, so the same numbers: a batch's
results may depend on its grouping), but never twice.

The view holds what it computed until it is dropped: make one per goal build, not one per
model. ``split(..., keep=False)`` answers without holding (the donor scan of an inpainting
erase goal renders hundreds of samples, a batch at a time).

Usage::

    view = LayerView(G, "main.6")
    view.info                                  # G.layer("main.6"), fetched once
    s = view.split([31])                       # G.split(G.latents([31]), "main.6")
    s is view.split([31])                      # True: computed once
    img = view.images([31])                    # G(G.latents([31])), computed once
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..models.base import Generator, LayerInfo, Split

#: A memo key: the exact samples of one call, in order.
Samples = tuple[int, ...]


class LayerView:
    """``G`` seen at ``layer`` for one goal build (see the module docstring).

    Attributes:
        G: the generator.
        layer: the layer's name.
        info: its :class:`LayerInfo` (``G.layer(layer)``, fetched once).
    """

    def __init__(self, G: Generator, layer: str):
        self.G = G
        self.layer = layer
        self.info: LayerInfo = G.layer(layer)
        self._latents: dict[Samples, torch.Tensor] = {}
        self._splits: dict[Samples, Split] = {}
        self._images: dict[Samples, torch.Tensor] = {}

    @classmethod
    def of(cls, G: Generator, layer: str, view: LayerView | None = None) -> LayerView:
        """``view`` when given (it must be ``G`` at ``layer``), else a new view."""
        if view is None:
            return cls(G, layer)
        if view.G is not G:
            raise ValueError("the view is of another model than this call's")
        if view.layer != layer:
            raise ValueError(f"the view is of layer {view.layer!r}; this call needs {layer!r}")
        return view

    @property
    def resolution(self) -> int:
        """The generator's image size in pixels."""
        return self.G.resolution

    @staticmethod
    def _key(samples: Iterable[int]) -> Samples:
        return tuple(int(s) for s in samples)

    def latents(self, samples: Iterable[int]) -> torch.Tensor:
        """``G.latents(samples)`` [N, *z_shape], computed once per tuple of samples."""
        key = self._key(samples)
        if key not in self._latents:
            self._latents[key] = self.G.latents(list(key))
        return self._latents[key]

    def split(self, samples: Iterable[int], keep: bool = True) -> Split:
        """``G.split(G.latents(samples), layer)``, computed once per tuple of samples
        (``keep=False``: not held for later calls, though a held one is returned). Runs
        under the caller's gradient mode, like the call it replaces."""
        key = self._key(samples)
        if key in self._splits:
            return self._splits[key]
        if not keep:
            return self.G.split(self.G.latents(list(key)), self.layer)
        self._splits[key] = self.G.split(self.latents(key), self.layer)
        return self._splits[key]

    def images(self, samples: Iterable[int]) -> torch.Tensor:
        """``G(G.latents(samples))`` [N, 3, R, R] in [-1, 1], rendered once per tuple of
        samples (a full render, not resumed from :meth:`split`: see below).

        ``G.resume(split)`` equals ``G(latents)`` in every family's tests at constant noise
        on the CPU, but not with random noise (each pass draws its own), so the render is
        memoised rather than derived from the split."""
        key = self._key(samples)
        if key not in self._images:
            self._images[key] = self.G(self.latents(key))
        return self._images[key]
