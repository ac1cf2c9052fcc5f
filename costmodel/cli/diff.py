"""diff: what changed between two models, or one spec file between a git revision and now."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from costmodel.cli import app, emit
from costmodel.cli._options import (ClassesOpt, Fmt, FormatOpt, InputOpt, WidthOpt,
                                    counting_options)
from costmodel.options import Options


@app.command()
@counting_options
def diff(
    models: Annotated[list[str], typer.Argument(
        help="Two models (zoo names or spec files), or one spec file with --rev.")],
    rev: Annotated[Optional[str], typer.Option(
        "--rev", help="Compare the spec file at this git revision (main, HEAD~1, a tag) "
                      "with the working tree's.")] = None,
    all: Annotated[bool, typer.Option("--all", help="List unchanged layers too.")] = False,
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    format: FormatOpt = Fmt.table,
    *, options: Options,
):
    """Per-layer and total deltas of FLOPs, params, MAC and activations (b − a), layers
    matched by path. Markdown opens with a summary line, ready for a pull-request comment.
    Exit 0 for any diff (a diff is not a verdict), 2 for invalid input."""
    from costmodel.analysis.diff import diff_models, render_diff

    result = diff_models(models, rev, input=input, width=width, num_classes=classes,
                         options=options)
    emit(render_diff(result, format.value, all))
