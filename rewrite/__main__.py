"""``python -m rewrite`` runs the command line."""

from .cli import main

main(prog_name="rewrite")
