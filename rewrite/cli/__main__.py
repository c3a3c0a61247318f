"""``python -m rewrite.cli`` runs the command line (as ``python -m rewrite`` does)."""

from .main import main

main(prog_name="rewrite")
