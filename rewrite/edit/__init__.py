"""Edits: the specification, masks to tensors, methods, deltas and the Rewriter session.

Usage::

    from . import EditSpec, Rewriter
    session = Rewriter(load_model("dcgan-digiface64"))
    session.apply(EditSpec.load("examples/add-glasses.json"))
    session.export_checkpoint("edited.pt")
"""

from .delta import Delta, LowRank, load_deltas, save_deltas
from .methods import METHODS
from .session import Rewriter
from .spec import EditSpec, Selection

__all__ = [
    "METHODS",
    "Delta",
    "EditSpec",
    "LowRank",
    "Rewriter",
    "Selection",
    "load_deltas",
    "save_deltas",
]
