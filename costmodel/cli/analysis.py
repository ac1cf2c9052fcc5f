"""dataflow, explain, rules, swap: the design analyses (costmodel.analysis)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from costmodel import api
from costmodel.cli import app, emit, handles_errors
from costmodel.cli._options import ClassesOpt, Fmt, FormatOpt, InputOpt, WidthOpt
from costmodel.render import render


class LevelOpt(str, Enum):
    stage = "stage"
    block = "block"
    layer = "layer"


@app.command()
@handles_errors
def dataflow(
    models: Annotated[list[str], typer.Argument(help="Zoo names or spec files; several are "
                                                     "set side by side.")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    level: Annotated[LevelOpt, typer.Option(
        "--level", "-l", help="stage: one row per stage; block: per block of each stage; "
                              "layer: per layer that changes the tensor's shape.")] = LevelOpt.stage,
    per_block: Annotated[bool, typer.Option(
        "--per-block", help="Same as --level block.")] = False,
    format: FormatOpt = Fmt.table,
):
    """EffNet's Table 1: the tensor (H×W×C) leaving each stage and the compression factor
    elements in / elements out; factors of 4 or more are marked (red in a terminal, bold and
    ⚠ in Markdown). Stages are the spec's `stage` nodes; where a spec has none, a new stage
    starts at each spatial downsampling. The classifier head is shown but not marked."""
    from costmodel.analysis.dataflow import dataflow_payload, dataflow_table

    lvl = "block" if per_block else level.value
    results = api.compare(models, input=input, width=width, num_classes=classes)
    emit(render(dataflow_table(results, level=lvl), format.value,
                dataflow_payload(results, lvl)))
