"""Errors a user can cause. The CLI turns every one into a short message and exit code 2.

Exit codes of the command line, one meaning each:

- 0: done; every check that was asked for passed.
- 1: a computed verdict: over budget (``check``), differs (``verify``, ``explain``), a rule at
  or above ``--fail-on`` (``rules``). Never for invalid input or a crash.
- 2: invalid input (a ``CostModelError``): the message names the file, the layer path and
  the field.
- 3: an internal error (a bug in costmodel): one line, no traceback unless
  ``COSTMODEL_DEBUG=1``.
"""

from __future__ import annotations


class CostModelError(Exception):
    """A mistake in user input: a spec, a model name, an option.

    ``file``, ``path`` (the layer path, e.g. ``stage2.0.pw1``) and ``field`` are filled in as the
    error travels up, so the message names where the problem is.
    """

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None,
                 field: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.path = path
        self.field = field

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.path:
            where.append(f"layer '{self.path}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return (": ".join(where) + ": " if where else "") + self.message


class SpecError(CostModelError):
    """The spec file is unreadable or does not validate."""


class ShapeError(CostModelError):
    """Shapes do not fit: a map shrinks below 1×1, channels do not divide, merges disagree."""


class UnknownModelError(CostModelError):
    """A model name that is neither in the zoo nor a spec file."""


class LimitError(CostModelError):
    """An input would take more work than a documented limit allows (``costmodel.limits``)."""


class OutputError(CostModelError):
    """An output file cannot be written safely (a directory, a device, a read-only file...)."""


EXIT_OK, EXIT_VERDICT, EXIT_INVALID, EXIT_INTERNAL = 0, 1, 2, 3
