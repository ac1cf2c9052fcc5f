"""compare, show, list, schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel import api, views
from costmodel.cli import app, emit, handles_errors
from costmodel.cli._options import (ClassesOpt, Fmt, FormatOpt, InputOpt, ProfileOpt,
                                    WidthOpt, _choices, counting_options, table_option)
from costmodel.options import Options
from costmodel.render import render


@app.command()
@handles_errors
@counting_options
def compare(
    models: Annotated[list[str], typer.Argument(help="Zoo names (mobilenet-0.5) or spec files.")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    format: FormatOpt = Fmt.table,
    profile: ProfileOpt = None,
    *, options: Options,
):
    """Compare models: FLOPs, params, MAC and peak activation, each also relative to the first
    (and the latency predicted from a profile, with --profile)."""
    results = api.compare(models, input=input, width=width, num_classes=classes, options=options)
    latency, note = views.latency_of(results, profile)
    totals = None if latency is None else [sum(ms) for ms in latency]
    conventions = options.conventions().record()
    payload = [{**rec, "conventions": conventions}
               for rec in views.compare_records(results, totals)]
    emit(render(views.compare_table(results, totals, note), format.value, payload))


SortOpt = _choices("SortOpt", views.SORT_KEYS)
SHOW_TABLES = ("layers", "breakdown")
ShowTableOpt = table_option("ShowTable", SHOW_TABLES)


@app.command()
@handles_errors
@counting_options
def show(
    model: Annotated[str, typer.Argument(
        help="Zoo name, spec file or Python target (pkg.mod:Net).")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    top: Annotated[Optional[int], typer.Option(
        "--top", min=1, help="Only the N largest rows (by --sort; FLOPs by default).")] = None,
    sort: Annotated[Optional[SortOpt], typer.Option(
        "--sort", help="Order rows by this metric, largest first.")] = None,
    depth: Annotated[Optional[int], typer.Option(
        "--depth", min=1, help="Fold rows into their path's first N segments (sums per "
                               "group): 1 shows stages, 2 blocks.")] = None,
    format: FormatOpt = Fmt.table,
    table: ShowTableOpt = None,
    profile: ProfileOpt = None,
    *, options: Options,
):
    """Per-layer table with totals, and the share of each layer type (MobileNet Table 2).

    --top, --sort and --depth shape the per-layer table; JSON keeps every layer in "layers"
    and adds the rows shown as "view"."""
    result = api.evaluate_model(model, input=input, width=width, num_classes=classes,
                                options=options)
    latency, note = views.latency_of([result], profile)
    ms = None if latency is None else latency[0]
    how = {"top": top, "sort": sort.value if sort else None, "depth": depth}
    tables = dict(zip(SHOW_TABLES, [views.layers_table(result, **how, latency=ms,
                                                       latency_note=note),
                                    views.breakdown_table(result)], strict=True))
    payload = views.show_payload(result, ms, note and {"file": profile, "note": note})
    if any(v is not None for v in how.values()):
        payload["view"] = {**how, "rows": views.layer_view(result, **how, latency=ms)}
    views.add_peak_memory(tables["layers"], payload, result)
    emit(render(tables, format.value, payload, table and table.value))


@app.command("list")
@handles_errors
def list_models(format: FormatOpt = Fmt.table):
    """The built-in zoo: names, default inputs, FLOPs and params (paper scope), variants."""
    entries = api.zoo()
    results = [api.evaluate_model(e.name) for e in entries]  # ~1 ms each, from the spec cache
    payload = views.zoo_records(entries, results)
    emit(render(views.zoo_table(payload), format.value, payload))


@app.command()
@handles_errors
def schema(
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the schema to this file instead of printing it.")] = None,
):
    """The JSON Schema of spec files, for editors and validators.

    Point VS Code's YAML extension (or any editor using yaml-language-server) at it with a
    first line in the spec: # yaml-language-server: $schema=costmodel.schema.json"""
    import json

    from costmodel.schema import spec_schema

    text = json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        emit(text)
        return
    from costmodel.files import check_target, write_atomic

    check_target(output)
    write_atomic(output, text)
