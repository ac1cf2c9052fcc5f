"""memory: peak inference memory by tensor lifetime (and a training estimate)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from costmodel import api
from costmodel.cli import app, emit, fail, first_missing, handles_errors
from costmodel.cli._options import (ClassesOpt, Fmt, FormatOpt, InputOpt, WidthOpt, _choices,
                                    counting_options)
from costmodel.options import Options
from costmodel.render import render

OptimizerOpt = _choices("OptimizerOpt", ("sgd", "momentum", "adam"))


def _check_measurable(options: Options) -> None:
    """--measure runs the builder's float32 module: torch must be there, and the dtype
    float32 (a float16 or int8 figure would not be what was measured)."""
    if options.dtype != "float32":
        raise fail(f"--measure: the torch module runs in float32, not {options.dtype}; "
                   "use --dtype float32")
    missing = first_missing("torch")
    if missing is None:
        try:
            import costmodel.measure.memory  # noqa: F401
        except ImportError as e:  # installed but broken
            missing = (e.name or "torch").split(".")[0]
    if missing is not None:
        from costmodel.crosscheck import EXTRA_HINT

        raise fail(f"--measure needs torch, and {missing} is not installed: {EXTRA_HINT}")


@app.command()
@handles_errors
@counting_options
def memory(
    models: Annotated[list[str], typer.Argument(help="Zoo names (mobilenet-0.5) or spec files.")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    inplace: Annotated[bool, typer.Option(
        "--inplace-activations/--no-inplace-activations",
        help="Count activations as in place (torchvision's ReLU(inplace=True)); by default "
             "they allocate their output, as the torch builder's nn.ReLU() does.")] = False,
    training: Annotated[bool, typer.Option(
        "--training", help="Add a training estimate: weights + gradients + optimizer state + "
                           "saved activations.")] = False,
    optimizer: Annotated[Optional[OptimizerOpt], typer.Option(
        "--optimizer", help="Optimizer state for --training: sgd none, momentum 1×, adam 2× "
                            "the trainable parameters (default sgd).")] = None,
    measure: Annotated[bool, typer.Option(
        "--measure", help="Also measure one forward pass of the torch module (needs torch; "
                          "float32; CPU).")] = False,
    format: FormatOpt = Fmt.table,
    *, options: Options,
):
    """Peak memory of a forward pass: the feature maps alive at once (a residual's shortcut,
    a concat's inputs, the input image), the layer where the peak occurs, beside the largest
    single feature map (peak activation), and the weights, in elements and bytes of --dtype
    at --batch images."""
    from costmodel.analysis.memory import memory_record, memory_table, peak_memory

    if optimizer is not None and not training:
        raise fail("--optimizer: only with --training")
    if measure:
        _check_measurable(options)
    opt = (optimizer.value if optimizer else "sgd") if training else None
    results = api.compare(models, input=input, width=width, num_classes=classes,
                          options=options)
    memories = [peak_memory(r, inplace_activations=inplace) for r in results]
    measured = None
    if measure:
        from costmodel.measure.memory import measure_memory

        measured = [measure_memory(r, inplace_activations=inplace) for r in results]
    conventions = options.conventions().record()
    payload = [{**memory_record(m, opt, measured[i] if measured else None),
                "conventions": conventions} for i, m in enumerate(memories)]
    table = memory_table(memories, opt, measured)
    table.notes.append(options.conventions())
    emit(render(table, format.value, payload))
