"""compare, show, list."""

from __future__ import annotations

from typing import Annotated

import typer

from costmodel import api, views
from costmodel.cli import app, emit, handles_errors
from costmodel.cli._options import (ClassesOpt, Fmt, FormatOpt, InputOpt, WidthOpt,
                                    counting_options)
from costmodel.options import Options
from costmodel.render import Column, Table, render


@app.command()
@handles_errors
@counting_options
def compare(
    models: Annotated[list[str], typer.Argument(help="Zoo names (mobilenet-0.5) or spec files.")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    format: FormatOpt = Fmt.table,
    *, options: Options,
):
    """Compare models: FLOPs, params, MAC and peak activation, each also relative to the first."""
    results = api.compare(models, input=input, width=width, num_classes=classes, options=options)
    conventions = options.conventions().record()
    payload = [{**rec, "conventions": conventions} for rec in views.compare_records(results)]
    emit(render(views.compare_table(results), format.value, payload))


@app.command()
@handles_errors
@counting_options
def show(
    model: Annotated[str, typer.Argument(help="Zoo name or spec file.")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    format: FormatOpt = Fmt.table,
    *, options: Options,
):
    """Per-layer table with totals, and the share of each layer type (MobileNet Table 2)."""
    result = api.evaluate_model(model, input=input, width=width, num_classes=classes,
                                options=options)
    tables = [views.layers_table(result), views.breakdown_table(result)]
    emit(render(tables, format.value, views.show_payload(result)))


@app.command("list")
@handles_errors
def list_models(format: FormatOpt = Fmt.table):
    """The built-in zoo: names, default inputs, variants."""
    rows = [{"name": e.name, "input": "×".join(map(str, e.input)),
             "variants": ", ".join(e.variants), "aliases": ", ".join(e.aliases),
             "description": e.description} for e in api.zoo()]
    payload = [{"name": e.name, "input": e.input, "variants": list(e.variants),
                "aliases": e.aliases, "description": e.description} for e in api.zoo()]
    table = Table("Model zoo", [Column("name", "name"), Column("input", "input"),
                                Column("variants", "variants"), Column("description", "description")],
                  rows, notes=["Variants are name suffixes (mobilenet-0.5); a numeric suffix is a "
                               "width multiplier. '-' and '_' are interchangeable."])
    emit(render(table, format.value, payload))
