"""The solver's contract: one editable layer as tensors and functions, no model inside.

A model family builds a :class:`LayerFunction` for the layer being edited
(``Generator.layer_function``); the solvers in :mod:`rewrite.memory.solvers`
see only this. ``values = tail(linear(keys, weight))``, with ``linear`` linear
in the weight and ``tail`` elementwise.

Usage::

    f = LayerFunction("conv", w0, in_axis=1, out_axis=0,
                      linear=lambda k, w: torch.nn.functional.conv2d(k, w, padding=1),
                      scale=torch.ones(1, c_out, 1, 1), shift=b, activation="relu")
    values = f.forward(keys)                      # [N, C_out, H, W]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

#: The non-linear tails a layer may end in; the solvers invert each of them.
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "identity")


@dataclasses.dataclass
class LayerFunction:
    """One editable layer as tensors and functions, for the solvers (no model inside).

    ``values = tail(linear(keys, weight))`` where ``linear`` is linear in
    ``weight`` and ``tail(pre) = gain * act(scale * pre + shift)`` is elementwise.

    Attributes:
        name: layer name.
        weight: the current weight W0 (a detached copy), e.g. [in, out, k, k].
        in_axis: the weight's input-channel axis (keys live there).
        out_axis: the weight's output-channel axis.
        linear: ``(keys [N, C_in, h, w], weight) -> pre [N, C_out, H, W]``, linear in weight.
        scale: per-channel factor of the tail, broadcastable to pre (e.g. [1, C_out, 1, 1]).
        shift: additive term of the tail, broadcastable to pre.
        activation: one of :data:`ACTIVATIONS`.
        negative_slope: slope of ``leaky_relu`` below zero.
        gain: factor after the activation.
        exact: optional ``(keys, weight) -> values`` when the true layer is not
            ``tail(linear(...))`` for an edited weight (e.g. StyleGAN2's demodulation
            depends on the weight); None means ``tail(linear(...))`` is exact.
    """

    name: str
    weight: torch.Tensor
    in_axis: int
    out_axis: int
    linear: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    scale: torch.Tensor
    shift: torch.Tensor
    activation: str = "identity"
    negative_slope: float = 0.2
    gain: float = 1.0
    exact: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def tail(self, pre: torch.Tensor) -> torch.Tensor:
        """Values from pre-activations (same shape)."""
        a = self.scale * pre + self.shift
        if self.activation == "relu":
            a = torch.relu(a)
        elif self.activation == "leaky_relu":
            a = torch.nn.functional.leaky_relu(a, self.negative_slope)
        elif self.activation == "tanh":
            a = torch.tanh(a)
        elif self.activation != "identity":
            raise ValueError(f"unknown activation {self.activation!r}; known: {ACTIVATIONS}")
        return a * self.gain if self.gain != 1.0 else a

    def forward(self, keys: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The layer's values [N, C_out, H, W] for ``keys`` with ``weight`` (default W0)."""
        weight = self.weight if weight is None else weight
        if self.exact is not None:
            return self.exact(keys, weight)
        return self.tail(self.linear(keys, weight))
