"""Options shared by the commands, written once."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from costmodel.evaluate import Options


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


InputOpt = Annotated[Optional[str], typer.Option(
    "--input", "-i", help="Input size N or HxW (e.g. 32, 224x160); default: the spec's.")]
WidthOpt = Annotated[Optional[float], typer.Option(
    "--width", "-w", help="Width multiplier α (overrides the spec's).")]
ClassesOpt = Annotated[Optional[int], typer.Option(
    "--classes", help="Number of classes (overrides the spec's).")]
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
