"""Options shared by the commands, written once: the input and model options, the output
format, and the counting options (``@counting_options``), whose choices come from
``costmodel.options``."""

from __future__ import annotations

import functools
import inspect
from enum import Enum
from typing import Annotated, Any, Callable, Optional, get_args

import typer

from costmodel.api import MAX_MULTIPLIER, check_count, check_multiplier
from costmodel.errors import CostModelError
from costmodel.measure import DEVICES
from costmodel.options import DTYPE_BYTES, MAX_BATCH, Options, Scope, parse_input
from costmodel.render import FORMATS


def _choices(name: str, values) -> type[Enum]:
    """A str Enum of ``values`` (members named as their values): Typer's choices."""
    return Enum(name, [(v, v) for v in values], type=str)


Fmt = _choices("Fmt", FORMATS)
ScopeOpt = _choices("ScopeOpt", get_args(Scope))
DtypeOpt = _choices("DtypeOpt", DTYPE_BYTES)
DeviceOpt = _choices("DeviceOpt", DEVICES)
"""Where bench, calibrate, memory --measure and guidelines --measure run."""


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


def table_option(name: str, tables: tuple[str, ...]) -> Any:
    """``--table`` for a command that prints several tables (``tables``, the main one first):
    show only that one. CSV holds one table, so that it loads as it is: the main one unless
    --table names another."""
    return Annotated[Optional[_choices(name, tables)], typer.Option(
        "--table", help=f"Print only this table (not JSON). CSV prints one table: "
                        f"{tables[0]} unless --table names another.")]
ScopeOption = Annotated[ScopeOpt, typer.Option(
    "--scope", help="paper: conv + linear multiply-adds; fvcore: also what fvcore counts by "
                    "default (batch norm, adaptive avg pool, upsample).")]
FlopsPerMaddOpt = Annotated[int, typer.Option(
    "--flops-per-madd", min=1, max=2,
    help="1 (papers, fvcore) or 2 (PyTorch's flop counter) FLOPs per multiply-add.")]
BnParamsOpt = Annotated[bool, typer.Option(
    "--bn-params/--no-bn-params", help="Count batch-norm γ/β in params (torch's count).")]
DtypeOption = Annotated[DtypeOpt, typer.Option("--dtype", help="Element type for MAC in bytes.")]
BatchOpt = Annotated[int, typer.Option(
    "--batch", min=1, max=MAX_BATCH,
    help="Batch size N: FLOPs and activations ×N; MAC reads weights once, feature maps N times.")]


ProfileOpt = Annotated[Optional[str], typer.Option(
    "--profile", envvar="COSTMODEL_PROFILE", show_envvar=True,
    help="A latency profile (costmodel calibrate): adds the latency predicted from it, per "
         "layer and in total.")]


def make_options(scope: ScopeOpt, flops_per_madd: int, bn_params: bool,
                 dtype: DtypeOpt, batch: int = 1) -> Options:
    return Options(scope=scope.value, flops_per_madd=flops_per_madd, bn_params=bn_params,
                   dtype=dtype.value, batch=batch)


_DEFAULT = Options()
_COUNTING = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                               default=default) for name, kind, default in (
    ("scope", ScopeOption, ScopeOpt(_DEFAULT.scope)),
    ("flops_per_madd", FlopsPerMaddOpt, _DEFAULT.flops_per_madd),
    ("bn_params", BnParamsOpt, _DEFAULT.bn_params),
    ("dtype", DtypeOption, DtypeOpt(_DEFAULT.dtype)),
    ("batch", BatchOpt, _DEFAULT.batch))]
"""The counting options' parameters, as Typer reads them (last in --help, in this order)."""


def counting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command --scope, --flops-per-madd, --bn-params/--no-bn-params, --dtype and
    --batch: the command declares one ``options: Options`` parameter and receives them in it.

    Typer builds a command's options from its signature, so the command shows Typer a
    signature with the five parameters in place of ``options`` (``__signature__``, with
    annotations evaluated, as Typer would evaluate them; this runs once per command at import,
    a few tens of microseconds)."""
    signature = inspect.signature(command, eval_str=True)
    if "options" not in signature.parameters:
        raise TypeError(f"{command.__name__} takes the counting options as 'options: Options'")
    params = [p for p in signature.parameters.values() if p.name != "options"] + _COUNTING

    @functools.wraps(command)
    def with_options(*args, scope, flops_per_madd, bn_params, dtype, batch, **kwargs):
        return command(*args, options=make_options(scope, flops_per_madd, bn_params, dtype,
                                                   batch), **kwargs)

    with_options.__signature__ = signature.replace(parameters=params)
    with_options.__annotations__ = {p.name: p.annotation for p in params}
    return with_options
