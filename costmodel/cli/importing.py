"""import: a PyTorch model (a Python target) → a spec file.

torch and the tracer are imported inside the command only.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from costmodel.cli import app, emit, fail, first_missing, handles_errors
from costmodel.cli._options import InputOpt


@app.command("import")
@handles_errors
def import_(
    target: Annotated[str, typer.Argument(
        help="package.module:callable or path/to/file.py:callable, a class or a function "
             "returning an nn.Module; arguments as callable(k=v, ...), literals only.")],
    input: InputOpt = None,
    channels: Annotated[int, typer.Option(
        "--channels", min=1, help="Channels of the input image.")] = 3,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="Write the spec here (YAML, written whole or not at all); "
                               "default: print it.")] = None,
    allow_unknown: Annotated[bool, typer.Option(
        "--allow-unknown", help="An op with no spec layer becomes a layer of unknown cost that "
                                "every output lists, instead of an error.")] = False,
):
    """Trace a PyTorch model at the input size (default 224) and write it as a spec: the
    spec's counts are fvcore's on that module, layer by layer.

    e.g. costmodel import mypkg.nets:MyNet --input 160 -o mynet.yaml"""
    from costmodel.crosscheck import EXTRA_HINT
    from costmodel.targets import parse_target

    parsed = parse_target(target)  # a malformed target fails before torch is imported
    if first_missing("torch") is not None:
        raise fail(f"import needs torch, which is not installed: {EXTRA_HINT}")
    if output is not None:
        from costmodel.files import check_target

        check_target(output)  # a bad output fails before the model is built
    from costmodel.capture import to_yaml
    from costmodel.targets import capture_target

    doc, _ = capture_target(parsed, input, channels, "allow" if allow_unknown else "error")
    text = to_yaml(doc)  # validated first: a spec that does not load is never written
    if output is None:
        emit(text)
        return
    from costmodel.files import write_atomic

    write_atomic(output, text)
    typer.echo(f"wrote {output}", err=True)
