"""Errors a user can cause. The CLI turns every one into a short message and exit code 2."""

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
