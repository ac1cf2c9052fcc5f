"""verify: the analytic counts against fvcore and PyTorch on the real torch module.

torch and fvcore are optional (the ``torch`` extra) and imported inside the command only.
"""

from __future__ import annotations

from typing import Annotated

import typer

from costmodel.cli import app, emit, fail, first_missing, handles_errors
from costmodel.cli._options import ClassesOpt, Fmt, FormatOpt, InputOpt, WidthOpt
from costmodel.render import render


@app.command()
@handles_errors
def verify(
    models: Annotated[list[str], typer.Argument(help="Zoo names (mobilenet-0.5) or spec files.")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    format: FormatOpt = Fmt.table,
    every_layer: Annotated[bool, typer.Option(
        "--all", help="List every layer, not only those that differ.")] = False,
):
    """Build each model in torch and check every layer's FLOPs, params and output shape against
    fvcore (exactly), and the totals against PyTorch's FlopCounterMode and sum(p.numel()).
    Exit code 0 only if everything agrees; 1 if anything differs."""
    from costmodel.crosscheck import EXTRA_HINT
    from costmodel.crosscheck.checks import verify_tables

    missing = first_missing("torch", "fvcore")
    if missing is None:
        try:
            from costmodel.crosscheck.verify import verify_model
        except ImportError as e:  # installed but broken
            missing = (e.name or "torch or fvcore").split(".")[0]
    if missing is not None:
        raise fail(f"verify needs torch and fvcore, and {missing} is not installed: "
                   f"{EXTRA_HINT}")
    results = [verify_model(m, input=input, width=width, num_classes=classes) for m in models]
    emit(render(verify_tables(results, every_layer), format.value,
                [v.record() for v in results]))
    if not all(v.ok for v in results):
        raise typer.Exit(1)

