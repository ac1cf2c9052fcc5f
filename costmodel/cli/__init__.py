"""The ``costmodel`` command line: commands parse options, call the library, render.

Every command module in this package registers its commands on ``app``. At this edge, once
for every command (:func:`handles_errors`), each way out becomes its exit code
(``costmodel.errors``): library errors one ``error:`` line and 2, a bug one ``internal
error:`` line and 3 (the traceback too with ``COSTMODEL_DEBUG=1``), Ctrl-C 130. Nothing here
imports torch, fvcore or matplotlib: commands that need them import them inside their own
bodies.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, Callable

import typer

from costmodel import DISTRIBUTION
from costmodel.errors import EXIT_INTERNAL, EXIT_INVALID, CostModelError
from costmodel.render.table import escape_controls

app = typer.Typer(
    name="costmodel",
    help="What a CNN costs — FLOPs (multiply-adds), parameters, memory access cost (MAC) and "
         "activations — computed analytically from a declarative spec.",
    no_args_is_help=True,
    add_completion=True,  # ~0.2 ms a command (measured); typer imports its completion anyway
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr (control characters escaped: a message may quote a
    spec); the caller raises the returned Exit(2)."""
    sys.stderr.write(f"error: {escape_controls(message)}\n")
    return typer.Exit(EXIT_INVALID)


def internal_error(e: BaseException) -> typer.Exit:
    """Report a bug in costmodel: one line on stderr, and the traceback too when
    ``COSTMODEL_DEBUG`` is set (to anything but empty or 0); the caller raises the returned
    Exit(3)."""
    if os.environ.get("COSTMODEL_DEBUG", "") not in ("", "0"):
        import traceback

        traceback.print_exception(e, file=sys.stderr)
    message = escape_controls(" ".join(str(e).split()))  # one line, however long the message
    sys.stderr.write(f"internal error: {type(e).__name__}: {message} "
                     f"(set COSTMODEL_DEBUG=1 for the traceback)\n")
    return typer.Exit(EXIT_INTERNAL)


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
                   f'pip install "{DISTRIBUTION}[plots]"')


def handles_errors(fn: Callable) -> Callable:
    """Give a command the exit codes of ``costmodel.errors``: library errors (bad specs,
    unknown models, bad options) exit 2, any other exception (a bug, RecursionError,
    MemoryError) exits 3 with one line, Ctrl-C 130 quietly. Every command registered on
    ``app`` gets it (see the loop below); applying it twice is the same as once."""
    if getattr(fn, "handles_errors", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # the command's own exit code, or a usage error (2) typer reports
        except CostModelError as e:
            raise fail(str(e)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:  # the reader went away (`| head`): quiet, as if by SIGPIPE
            _silence_stdout()
            raise typer.Exit(141) from None
        except Exception as e:
            raise internal_error(e) from None

    wrapper.handles_errors = True
    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (a test runner's buffer)
        pass


def emit(rendered) -> None:
    """Write a rendering to stdout in one go (nothing half-written on failure)."""
    if isinstance(rendered, str):
        sys.stdout.write(rendered)
        return
    from rich.console import Console

    console = Console()  # a terminal's width, or COLUMNS where it is a positive number
    if not console.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit():
        # Piped or redirected, and no width asked for: wide enough that no table is cut.
        natural = [getattr(item, "natural_width", 0) for item in rendered]
        console = Console(width=max([160, *natural]))
    elif console.width < 1:
        console = Console(width=80)
    for item in rendered:
        console.print(item)
        console.print()


for _module in sorted(p.stem for p in Path(__file__).parent.glob("*.py")):
    if not _module.startswith("_"):  # every command module registers itself on `app`
        importlib.import_module(f"{__name__}.{_module}")

for _command in app.registered_commands:  # every command gets the exit codes, decorated or not
    _command.callback = handles_errors(_command.callback)


def reflow(text: str | None) -> str | None:
    """Help text whose paragraphs the terminal wraps: docstrings break lines at 95 columns,
    which Typer keeps (ragged at 80 columns, narrow at 140), so each paragraph's lines are
    joined into one. Indented lines and list items keep their own lines."""
    if not text:
        return text
    paragraphs = []
    for block in inspect.cleandoc(text).split("\n\n"):
        lines = block.split("\n")
        if any(line[:1].isspace() or line.lstrip()[:2] in ("- ", "* ") for line in lines):
            paragraphs.append(block)
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


for _command in app.registered_commands:  # Typer reads help from here before the docstring
    _command.help = reflow(_command.help or inspect.getdoc(_command.callback))


def _print_version(value: bool) -> None:
    if value:
        from costmodel import __version__

        sys.stdout.write(f"costmodel {__version__}\n")
        raise typer.Exit()


@app.callback()
def _group(
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Print the version and exit.")] = False,
) -> None:
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
    try:
        app()
    except KeyboardInterrupt:  # outside a command (while parsing): as quiet as inside one
        sys.exit(130)
    except Exception as e:  # outside a command: typer's own parsing failed
        sys.exit(internal_error(e).exit_code)
