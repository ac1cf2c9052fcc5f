"""The ``costmodel`` command line: commands parse options, call the library, render.

Every command module in this package registers its commands on ``app``; library errors
become one message and exit code 2 at this edge. Nothing here imports torch, fvcore or
matplotlib: commands that need them import them inside their own bodies.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from typing import Callable

import typer

from costmodel.errors import CostModelError

app = typer.Typer(
    name="costmodel",
    help="What a CNN costs — FLOPs (multiply-adds), parameters, memory access cost (MAC) and "
         "activations — computed analytically from a declarative spec.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the caller raises the returned Exit(2)."""
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(2)


def first_missing(*modules: str) -> str | None:
    """The first of ``modules`` that cannot be found, else None; found without importing it
    (torch takes seconds to import)."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ValueError:  # set to None in sys.modules: its import is blocked
            return name
    return None


def require_matplotlib(what: str) -> None:
    """Exit 2, before any work, naming the extra to install when matplotlib is missing."""
    if first_missing("matplotlib"):
        raise fail(f"{what} draws its plots with matplotlib, which is not installed: "
                   'pip install "costmodel[plots]"')


def handles_errors(fn: Callable) -> Callable:
    """Turn library errors (bad specs, unknown models, bad options) into exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CostModelError as e:
            raise fail(str(e)) from None

    return wrapper


def emit(rendered) -> None:
    """Write a rendering to stdout in one go (nothing half-written on failure)."""
    if isinstance(rendered, str):
        sys.stdout.write(rendered)
        return
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or redirected: don't squeeze tables into 80 columns
        console = Console(width=160)
    for item in rendered:
        console.print(item)
        console.print()


for _module in sorted(p.stem for p in Path(__file__).parent.glob("*.py")):
    if not _module.startswith("_"):  # every command module registers itself on `app`
        importlib.import_module(f"{__name__}.{_module}")


@app.callback()
def _group() -> None:
    # A callback keeps ``app`` a group of commands even when ``main`` registers only one.
    pass


def main() -> None:
    # Typer introspects the signature of every registered command before it parses anything
    # (~7 ms each, most of a cold `compare`'s parsing time); when the first argument names a
    # command, only that one is needed.
    name = sys.argv[1] if len(sys.argv) > 1 else None
    invoked = [c for c in app.registered_commands
               if typer.main.get_command_name(c.name or c.callback.__name__) == name]
    if invoked:
        app.registered_commands = invoked
    app()
