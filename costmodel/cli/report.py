"""report: a Markdown cost report with plots."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from costmodel import DISTRIBUTION
from costmodel.cli import app, first_missing, handles_errors
from costmodel.cli._options import ClassesOpt, InputOpt, ProfileOpt, WidthOpt, counting_options
from costmodel.options import Options


@app.command()
@handles_errors
@counting_options
def report(
    models: Annotated[list[str], typer.Argument(
        help="Zoo names or spec files; MODEL@N or MODEL@HxW gives one model its own input size "
             "(mobilenet@160).")],
    output: Annotated[str, typer.Option(  # str, not Path: Path drops a trailing "/"
        "--output", "-o", help="The Markdown file to write; plots go to NAME_files/ beside it "
                               "(with a manifest: a later report removes only plots it made).")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    title: Annotated[Optional[str], typer.Option(help="The report's title.")] = None,
    plots: Annotated[bool, typer.Option(
        "--plots/--no-plots", help="Draw the plots (matplotlib); --no-plots writes tables "
                                   "only.")] = True,
    profile: ProfileOpt = None,
    *, options: Options,
):
    """A self-contained Markdown report comparing models: conventions, comparison table,
    per-model breakdown by layer type, data flow, largest layers and per-layer table, with
    plots (FLOPs vs params, per-layer FLOPs and MAC) saved beside it."""
    without = None
    if plots and first_missing("matplotlib"):
        without = f'matplotlib is not installed: pip install "{DISTRIBUTION}[plots]" for them'
        typer.echo(f"costmodel report: tables only, {without}", err=True)
    from costmodel.report.markdown import (ReportRequest, assets_folder, build_report,
                                           check_report_target, write_report)

    check_report_target(output)  # a bad target fails before any model is evaluated
    request = ReportRequest(tuple(models), input=input, width=width, num_classes=classes,
                            options=options, title=title, plots=plots, profile=profile)
    written = write_report(build_report(request, output, without), output)
    n = len(written) - 1
    typer.echo(f"wrote {output} and {n} plot{'s' if n != 1 else ''} in "
               f"{assets_folder(output)}/" if n else f"wrote {output} (tables only)")
