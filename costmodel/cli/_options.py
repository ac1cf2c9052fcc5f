"""Options shared by the commands, written once."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Callable, Optional

import typer

from costmodel.errors import CostModelError
from costmodel.options import Options, parse_input
from costmodel.layers.base import MAX_MULTIPLIER, check_count, check_multiplier


class Fmt(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


class ScopeOpt(str, Enum):
    paper = "paper"
    fvcore = "fvcore"


class DtypeOpt(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    int8 = "int8"


def _checked(check: Callable[[Any], Any]) -> Callable[..., Any]:
    """A Typer callback: ``check`` the option's value when it is given, before the command runs;
    a CostModelError becomes ``error: --option: message`` and exit 2, like the library's."""

    def callback(param: typer.CallbackParam, value: Any) -> Any:
        if value is not None:
            try:
                check(value)
            except CostModelError as e:
                from costmodel.cli import fail

                raise fail(f"{param.opts[0]}: {e.message}") from None
        return value

    return callback


InputOpt = Annotated[Optional[str], typer.Option(
    "--input", "-i", help="Input size N or HxW (e.g. 32, 224x160); default: the spec's.",
    callback=_checked(parse_input))]
WidthOpt = Annotated[Optional[float], typer.Option(
    "--width", "-w", help=f"Width multiplier α, 0 < α ≤ {MAX_MULTIPLIER} (overrides the spec's).",
    callback=_checked(lambda v: check_multiplier(v, "width")))]
ClassesOpt = Annotated[Optional[int], typer.Option(
    "--classes", help="Number of classes (overrides the spec's).",
    callback=_checked(lambda v: check_count(v, "classes")))]
FormatOpt = Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")]
ScopeOption = Annotated[ScopeOpt, typer.Option(
    "--scope", help="paper: conv + linear multiply-adds; fvcore: also what fvcore counts by "
                    "default (batch norm, adaptive avg pool, upsample).")]
FlopsPerMaddOpt = Annotated[int, typer.Option(
    "--flops-per-madd", min=1, max=2,
    help="1 (papers, fvcore) or 2 (PyTorch's flop counter) FLOPs per multiply-add.")]
BnParamsOpt = Annotated[bool, typer.Option(
    "--bn-params/--no-bn-params", help="Count batch-norm γ/β in params (torch's count).")]
DtypeOption = Annotated[DtypeOpt, typer.Option("--dtype", help="Element type for MAC in bytes.")]


def make_options(scope: ScopeOpt, flops_per_madd: int, bn_params: bool,
                 dtype: DtypeOpt) -> Options:
    return Options(scope=scope.value, flops_per_madd=flops_per_madd, bn_params=bn_params,
                   dtype=dtype.value)
