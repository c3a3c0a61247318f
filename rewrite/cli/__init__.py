"""The ``rewrite`` command line: thin commands over the library.

Examples::

    rewrite models
    rewrite layers dcgan-digiface64
    rewrite sample dcgan-digiface64 --seeds 0-31 --out grid.png
    rewrite stats dcgan-digiface64 --layer main.6 -n 10000
    rewrite edit examples/add-sunglasses.json --out edited.pt --delta edit.safetensors
    rewrite apply dcgan-digiface64 edit.safetensors --out edited.pt
    rewrite compare examples/add-sunglasses.json --seeds 100-115 --out cmp.png

One module per group of commands: ``models`` (models, layers), ``sampling`` (sample,
stats), ``editing`` (edit, apply, not-here, import-edit), ``judging`` (goal, compare, eval,
compare-methods, suggest-layer, match) and ``app`` (ui); ``common`` holds the options and
steps they share, ``main`` the group, which imports a command's module when the command is
asked for. Nothing heavy is imported before a command runs: ``rewrite --help`` and
``rewrite CMD --help`` do not import torch or the model code
(``python benchmarks/cli_startup.py`` measures them).
"""

from .main import COMMANDS, main

__all__ = ["COMMANDS", "main"]
