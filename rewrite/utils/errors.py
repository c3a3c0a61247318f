"""Errors a user can cause and fix.

Everything raised as a :class:`RewriteError` is a problem with the input (a
file, a name, a number on the command line), not a bug: the CLI prints its
message and exits with status 2, without a traceback.
"""


class RewriteError(Exception):
    """Base class for user-facing errors; the message says what to do."""


class CheckpointError(RewriteError):
    """A checkpoint file is missing, unreadable, unsafe, or does not fit a family."""


class ModelNotFoundError(RewriteError):
    """A model name is neither a zoo entry nor an existing file."""


class FetchError(RewriteError):
    """Downloading or verifying a zoo model failed."""


class LayerNotFoundError(RewriteError):
    """A layer name is not one of the model's editable layers."""


class SeedSpecError(RewriteError):
    """A seed list such as ``0-31,40`` could not be parsed."""


class EditError(RewriteError):
    """An edit cannot be computed as asked (empty mask, rank too large, ...)."""


class SpecError(RewriteError):
    """An edit specification is invalid; the message lists every problem found."""

    def __init__(self, problems):
        self.problems = list(problems) if not isinstance(problems, str) else [problems]
        super().__init__("invalid edit specification:\n  - " + "\n  - ".join(self.problems))


class DeltaFileError(RewriteError):
    """A delta file is unreadable, corrupt, or does not fit the model."""


class CacheError(RewriteError):
    """The cache folder (``$REWRITE_CACHE``) cannot hold what must be stored there, or an
    entry read from it is damaged (the commands then compute it again)."""


class OutputPathError(RewriteError):
    """An output path would overwrite an input, is named twice, or cannot be written."""
