"""verify: the analytic counts against fvcore and PyTorch on the real torch module.

torch and fvcore are optional (the ``torch`` extra) and imported inside the command only.
"""

from __future__ import annotations

from typing import Annotated, Optional

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
    against: Annotated[Optional[str], typer.Option(
        "--against", metavar="TARGET",
        help="Compare the spec with your own PyTorch module instead of the one built from "
             "the spec: package.module:Net or path/to/file.py:Net(k=v); layer by layer, in "
             "order (out shape, params, fvcore FLOPs).")] = None,
):
    """Build each model in torch and check every layer's FLOPs, params and output shape against
    fvcore (exactly), and the totals against PyTorch's FlopCounterMode and sum(p.numel()).
    With --against TARGET, the module is yours: the spec is checked against the real network,
    and the first layers that differ are listed. Exit code 0 only if everything agrees; 1 if
    anything differs."""
    from costmodel.crosscheck import EXTRA_HINT
    from costmodel.crosscheck.checks import verify_tables

    if against is not None:
        from costmodel.targets import parse_target

        parse_target(against)  # a malformed target fails before torch is imported

    missing = first_missing("torch", "fvcore")
    if missing is None:
        try:
            from costmodel.crosscheck.verify import verify_model
        except ImportError as e:  # installed but broken
            missing = (e.name or "torch or fvcore").split(".")[0]
    if missing is not None:
        raise fail(f"verify needs torch and fvcore, and {missing} is not installed: "
                   f"{EXTRA_HINT}")
    if against is not None:
        return _verify_against(models, against, input, width, classes, format, every_layer)
    results = [verify_model(m, input=input, width=width, num_classes=classes) for m in models]
    emit(render(verify_tables(results, every_layer), format.value,
                [v.record() for v in results]))
    if not all(v.ok for v in results):
        raise typer.Exit(1)



def _verify_against(models: list[str], against: str, input, width, classes, format: Fmt,
                    every_layer: bool) -> None:
    """``verify SPEC --against TARGET``: exit 1 when any layer or total differs."""
    from costmodel.crosscheck.against import against_tables, verify_against

    if len(models) != 1:
        raise fail("verify --against compares one spec with one module; name one spec")
    v = verify_against(models[0], against, input=input, width=width, num_classes=classes)
    emit(render(against_tables(v, every_layer), format.value, v.record()))
    if not v.ok:
        raise typer.Exit(1)
