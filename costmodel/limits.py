"""Bounds on the work one input may cause, so that a hostile or careless spec, budgets file or
option is refused in well under a second with the limit named, never hangs or exhausts memory.

Each limit has a default that every real network in the zoo stays far below, and an
environment variable that raises (or lowers) it for a model that needs more:

| limit | default | variable | what it bounds |
|---|---:|---|---|
| ``yaml_nodes`` | 200,000 | ``COSTMODEL_MAX_YAML_NODES`` | nodes of a YAML/JSON document, aliases counted at every use |
| ``nesting`` | 64 | ``COSTMODEL_MAX_NESTING`` | depth of nested mappings and lists in a document, and of nested blocks |
| ``layers`` | 20,000 | ``COSTMODEL_MAX_LAYERS`` | primitive layers (rows) one evaluation may produce |
| ``repeat`` | 10,000 | ``COSTMODEL_MAX_REPEAT`` | copies one ``repeat`` may make (after the depth multiplier) |
| ``int_digits`` | 30 | ``COSTMODEL_MAX_INT_DIGITS`` | digits of an integer in a document or an option |
| ``input_side`` | 1,000,000 | ``COSTMODEL_MAX_INPUT`` | pixels along one side of an input (``--input``, ``input:``) |
| ``file_bytes`` | 16 MiB | ``COSTMODEL_MAX_FILE_BYTES`` | size of a spec or budgets file |

The zoo's largest model (SkipNet-CIFAR) has 600 rows and nests 6 deep; ESPNet's input is
512×1024. A command that lists every row (``show --format json``) spends
roughly 50 µs a row here, so 20,000 layers — 30 times the zoo's largest — stay near a second. A limit is read from the environment each time it is checked (cheap), so tests and
long-running callers can change it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from costmodel.errors import LimitError


@dataclass(frozen=True)
class Limit:
    name: str
    default: int
    variable: str
    what: str

    @property
    def value(self) -> int:
        raw = os.environ.get(self.variable)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            v = int(raw.strip().replace("_", ""))
        except ValueError:
            raise LimitError(f"{self.variable}={raw!r} is not a whole number") from None
        if v < 1:
            raise LimitError(f"{self.variable}={raw!r} must be at least 1")
        return v

    def exceeded(self, found: str | int = "", **where) -> LimitError:
        """The error to raise when an input goes over this limit."""
        found_txt = f" ({found})" if found != "" else ""
        return LimitError(f"over the limit of {self.value:,} {self.what}{found_txt}; set "
                          f"{self.variable} to raise it", **where)

    def check(self, n: int, **where) -> None:
        if n > self.value:
            raise self.exceeded(f"{n:,}", **where)


YAML_NODES = Limit("yaml_nodes", 200_000, "COSTMODEL_MAX_YAML_NODES",
                   "nodes in a document (aliases counted at every use)")
NESTING = Limit("nesting", 64, "COSTMODEL_MAX_NESTING", "levels of nesting")
LAYERS = Limit("layers", 20_000, "COSTMODEL_MAX_LAYERS", "layers in one evaluation")
REPEAT = Limit("repeat", 10_000, "COSTMODEL_MAX_REPEAT", "copies in one repeat")
INT_DIGITS = Limit("int_digits", 30, "COSTMODEL_MAX_INT_DIGITS", "digits in an integer")
INPUT_SIDE = Limit("input_side", 1_000_000, "COSTMODEL_MAX_INPUT", "pixels along a side of the input")
FILE_BYTES = Limit("file_bytes", 16 * 1024 * 1024, "COSTMODEL_MAX_FILE_BYTES",
                   "bytes in a spec or budgets file")

ALL = (YAML_NODES, NESTING, LAYERS, REPEAT, INT_DIGITS, INPUT_SIDE, FILE_BYTES)
