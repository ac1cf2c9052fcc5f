"""skipnet: the minimum, maximum and expected cost of a network with skippable blocks."""

from __future__ import annotations

from typing import Annotated

import typer

from costmodel import api
from costmodel.cli import app, emit, handles_errors
from costmodel.cli._options import (ClassesOpt, Fmt, FormatOpt, InputOpt, WidthOpt,
                                    counting_options, table_option)
from costmodel.options import Options
from costmodel.render import render

SKIPNET_TABLES = ("summary", "blocks")
SkipnetTableOpt = table_option("SkipnetTable", SKIPNET_TABLES)


@app.command()
@handles_errors
@counting_options
def skipnet(
    model: Annotated[str, typer.Argument(help="A model with gated_residual blocks "
                                              "(skipnet-110, skipnet-imagenet) or a spec file.")],
    keep_prob: Annotated[str, typer.Option(
        "--keep-prob", "-p",
        help="Probability that a gated block runs: one value for every block (0.6), or one "
             "per gated block in execution order (0.9,0.8,…).")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    format: FormatOpt = Fmt.table,
    table: SkipnetTableOpt = None,
    *, options: Options,
):
    """SkipNet cost: minimum (every gated block skipped), maximum (every block runs) and the
    expected cost for the given execution probabilities; gates are always paid."""
    from costmodel.analysis import skipnet as skip

    probs = skip.parse_keep_prob(keep_prob)
    result = api.evaluate_model(model, input=input, width=width, num_classes=classes,
                                options=options)
    report = skip.skip_cost(result, probs)
    tables = dict(zip(SKIPNET_TABLES, [skip.summary_table(report), skip.blocks_table(report)],
                      strict=True))
    emit(render(tables, format.value, skip.payload(report, options.conventions().record()),
                table and table.value))
