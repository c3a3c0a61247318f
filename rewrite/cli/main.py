"""The ``rewrite`` group: finds each command in its module when it is first asked for
(click's lazy-group pattern), and turns errors into one line."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

import click

#: Command name -> "module:function" in this package. A new command is a function in
#: one of these modules plus one entry here.
COMMANDS = {
    "models": "models:models",
    "layers": "models:layers",
    "sample": "sampling:sample",
    "stats": "sampling:stats",
    "edit": "editing:edit",
    "apply": "editing:apply_cmd",
    "not-here": "editing:not_here",
    "import-edit": "editing:import_edit",
    "goal": "judging:goal_cmd",
    "compare": "judging:compare",
    "eval": "judging:eval_cmd",
    "compare-methods": "judging:compare_methods_cmd",
    "suggest-layer": "judging:suggest_layer",
    "match": "judging:match_cmd",
    "ui": "app:ui",
}


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


class _Group(click.Group):
    """Loads each command from its module on first use, and prints user errors
    (``RewriteError``) as one line with exit status 2, without a traceback."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, _, attr = COMMANDS[name].partition(":")
        command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        assert isinstance(command, click.Command) and command.name == name, COMMANDS[name]
        return command

    def invoke(self, ctx):
        # SIGTERM ends the command like Ctrl-C does, so half-written temporary files are
        # removed on the way out (atomic_path cleans up on any exit).
        # Not under torchrun: a rank blocked in a collective cannot act on the signal, and
        # torchrun would wait out its grace period before killing it.
        from ..utils.errors import RewriteError

        if (
            threading.current_thread() is threading.main_thread()
            and int(os.environ.get("WORLD_SIZE", "1")) == 1
        ):
            signal.signal(signal.SIGTERM, _terminated)
        rank = f"[rank {os.environ['RANK']}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        try:
            return super().invoke(ctx)
        except RewriteError as e:
            click.echo(f"{rank}error: {e}", err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:  # one line, not a traceback
            if ctx.params.get("debug") or os.environ.get("REWRITE_DEBUG") == "1":
                raise
            command = " ".join(["rewrite", *sys.argv[1:]])[:300]
            message = str(e).splitlines()[0][:300] if str(e) else ""
            click.echo(
                f"{rank}error: unexpected {type(e).__name__} in `{command}`"
                + (f": {message}" if message else "")
                + ". No half-written file is left. Run it again with --debug (rewrite --debug "
                "COMMAND ...) for the traceback, and please report it.",
                err=True,
            )
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--debug",
    is_flag=True,
    help="Show the Python traceback of an unexpected error (also REWRITE_DEBUG=1).",
)
def main(debug):
    """Rewrite the rules of pretrained image generators (Bau et al., ECCV 2020).

    MODEL is a zoo name (see `rewrite models`) or a checkpoint file; it defaults
    to dcgan-digiface64. Commands that read SPEC.json take the model from the spec
    (--model, or compare's MODEL, overrides it).
    """
