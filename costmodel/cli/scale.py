"""scale (width / depth / resolution multipliers, EfficientNet's compound φ) and sweep (a grid
of configurations, its Pareto front and the largest one within a budget)."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel import api, views
from costmodel.cli import app, emit, handles_errors, require_matplotlib
from costmodel.cli._options import (BnParamsOpt, DtypeOpt, DtypeOption, Fmt, FlopsPerMaddOpt,
                                    FormatOpt, InputOpt, ScopeOpt, ScopeOption, make_options)
from costmodel.errors import CostModelError, OutputError, ShapeError
from costmodel.render import render

SPEC_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
TABLE_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown"}
PLOT_FORMATS = (".png", ".svg", ".pdf")


class CostAxis(str, Enum):
    params = "params"
    mac = "mac"


def _suffix(path: str, allowed, what: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise CostModelError(f"{what} {path}: use a {', '.join(allowed)} file name")
    return suffix


@app.command()
@handles_errors
def scale(
    model: Annotated[str, typer.Argument(help="Zoo name or spec file.")],
    width: Annotated[Optional[float], typer.Option(
        "--width", "-w", help="Width multiplier w: every layer's channels, with the family's "
                              "rounding (relative to the model as named).")] = None,
    depth: Annotated[Optional[float], typer.Option(
        "--depth", "-d", help="Depth multiplier d: every repeat runs ceil(n·d) times.")] = None,
    resolution: Annotated[Optional[float], typer.Option(
        "--resolution", "-r", help="Resolution multiplier r: the input size.")] = None,
    phi: Annotated[Optional[float], typer.Option(
        "--phi", help="EfficientNet's compound coefficient φ: depth α^φ, width β^φ, "
                      "resolution γ^φ (FLOPs grow by (α·β²·γ²)^φ ≈ 2^φ).")] = None,
    alpha: Annotated[Optional[float], typer.Option(
        "--alpha", help="Compound depth coefficient α (default 1.2).")] = None,
    beta: Annotated[Optional[float], typer.Option(
        "--beta", help="Compound width coefficient β (default 1.1).")] = None,
    gamma: Annotated[Optional[float], typer.Option(
        "--gamma", help="Compound resolution coefficient γ (default 1.15).")] = None,
    input: InputOpt = None,
    round_input: Annotated[int, typer.Option(
        "--round-input", min=1, help="Round the scaled input to a multiple of this many pixels "
                              "(e.g. 32, so every stride-2 stage halves it exactly).")] = 1,
    write: Annotated[Optional[str], typer.Option(  # str: Path would drop a trailing "/"
        "--write", help="Write the scaled model as a spec (.yaml or .json) that loads back.")
    ] = None,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Name of the scaled model (default: from the multipliers).")] = None,
    format: FormatOpt = Fmt.table,
    scope: ScopeOption = ScopeOpt.paper,
    flops_per_madd: FlopsPerMaddOpt = 1,
    bn_params: BnParamsOpt = True,
    dtype: DtypeOption = DtypeOpt.float32,
):
    """Scale a model by width, depth and resolution (or compound φ): its cost next to the
    growth the multipliers predict, factor by factor and stage by stage."""
    from costmodel.analysis import scaling  # here, not at start-up: every command pays imports
    from costmodel.files import check_target, write_atomic

    options = make_options(scope, flops_per_madd, bn_params, dtype)
    direct = {"--width": width, "--depth": depth, "--resolution": resolution}
    coefficients = {"alpha": alpha, "beta": beta, "gamma": gamma}
    given = [k for k, v in direct.items() if v is not None]
    if phi is not None and given:
        raise CostModelError(f"give either --phi or {', '.join(given)}, not both")
    if phi is None and any(v is not None for v in coefficients.values()):
        raise CostModelError("--alpha, --beta and --gamma apply to compound scaling: add --phi")
    if phi is None and not given:
        raise CostModelError("give a multiplier: --width, --depth, --resolution, or --phi")
    if phi is not None:
        c = scaling.Coefficients(**{k: v for k, v in coefficients.items() if v is not None})
        multipliers = scaling.Multipliers.compound(phi, c)
    else:
        multipliers = scaling.Multipliers(width=1.0 if width is None else width,
                                          depth=1.0 if depth is None else depth,
                                          resolution=1.0 if resolution is None else resolution)
    spec_format = None
    if write is not None:  # refuse a bad target before any work
        spec_format = SPEC_FORMATS[_suffix(write, SPEC_FORMATS, "--write")]
        check_target(write)
    result = scaling.scale(api.load(model), multipliers, input=input, options=options,
                           resolution_multiple=round_input, name=name)
    payload = scaling.scale_payload(result, views.conventions(options))
    rendered = render(scaling.scale_tables(result), format.value, payload)
    if write is not None:  # everything is computed: now write
        write_atomic(write, scaling.spec_text(result.spec, spec_format))
        if format is not Fmt.json:
            sys.stderr.write(f"wrote {result.spec.name} to {write}\n")
    emit(rendered)


@app.command()
@handles_errors
def sweep(
    model: Annotated[str, typer.Argument(help="Zoo name or spec file.")],
    width: Annotated[Optional[str], typer.Option(
        "--width", "-w", help="Width multipliers: a range start:stop:step (0.25:1.4:0.05) "
                              "or a list (0.5,0.75,1).")] = None,
    depth: Annotated[Optional[str], typer.Option(
        "--depth", "-d", help="Depth multipliers (repeats run ceil(n·d) times).")] = None,
    resolution: Annotated[Optional[str], typer.Option(
        "--resolution", "-r", help="Resolution multipliers of the spec's input.")] = None,
    input: Annotated[Optional[str], typer.Option(
        "--input", "-i", help="Input sizes: 96:224:16, 128,160,192,224 or 224x160.")] = None,
    var: Annotated[Optional[list[str]], typer.Option(
        "--var", help="A spec variable: NAME=VALUES (g=1,2,3,4,8); repeatable.")] = None,
    groups: Annotated[Optional[str], typer.Option(
        "--groups", help="Values of the spec's group variable (g or groups).")] = None,
    variant: Annotated[Optional[str], typer.Option(
        "--variant", help="Declared variants to sweep: g1,g2,g3,g4,g8.")] = None,
    max_flops: Annotated[Optional[str], typer.Option(
        "--max-flops", help="FLOPs budget: 300M, 1.2G.")] = None,
    max_params: Annotated[Optional[str], typer.Option(
        "--max-params", help="Parameter budget: 2.5M.")] = None,
    max_mac: Annotated[Optional[str], typer.Option(
        "--max-mac", help="Memory access cost budget (elements).")] = None,
    max_activation: Annotated[Optional[str], typer.Option(
        "--max-activation", help="Budget for the largest feature map (elements).")] = None,
    pareto: Annotated[CostAxis, typer.Option(
        "--pareto", help="Pareto front of FLOPs against params or MAC: the most FLOPs for "
                         "the least cost.")] = CostAxis.params,
    front_only: Annotated[bool, typer.Option(
        "--front-only", help="Show only the configurations on the Pareto front.")] = False,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Leave out configurations that do not evaluate (a collapsed "
                               "feature map) instead of failing.")] = False,
    output: Annotated[Optional[str], typer.Option(  # str: Path would drop a trailing "/"
        "--output", "-o", help="Write the grid to a file (.csv, .json, .md) instead of "
                               "printing it.")] = None,
    plot: Annotated[Optional[str], typer.Option(
        "--plot", help="Draw FLOPs against params (or MAC) with the front (.png, .svg, .pdf).")
    ] = None,
    format: Annotated[Optional[Fmt], typer.Option(
        "--format", "-f", help="Output format (default: table, or from --output's suffix).")
    ] = None,
    scope: ScopeOption = ScopeOpt.paper,
    flops_per_madd: FlopsPerMaddOpt = 1,
    bn_params: BnParamsOpt = True,
    dtype: DtypeOption = DtypeOpt.float32,
):
    """Evaluate a grid of widths, depths, resolutions, groups or variants: every
    configuration's cost, the Pareto front, and the largest one within a budget."""
    from costmodel.analysis import scaling
    from costmodel.files import AtomicFiles

    options = make_options(scope, flops_per_madd, bn_params, dtype)
    budget = scaling.Budget.parse(flops=max_flops, params=max_params, mac=max_mac,
                                  peak_activation=max_activation)
    axes = [scaling.parse_axis(kind, text) for kind, text in
            (("variant", variant), ("depth", depth), ("width", width),
             ("resolution", resolution), ("input", input)) if text is not None]
    for item in var or []:
        key, sep, values = item.partition("=")
        if not sep or not key.strip():
            raise CostModelError(f"--var {item}: write NAME=VALUES, e.g. g=1,2,3,4,8")
        axes.append(scaling.parse_axis("var", values, key.strip()))
    group_hint = ""
    if groups is not None:
        spec = api.load(model)
        axes.append(scaling.parse_axis("var", groups, scaling.groups_var(spec)))
        if spec.variants:
            group_hint = (f"; a group count may need matching widths, which {spec.name}'s "
                          f"variants set ({', '.join(spec.variants)}): try --variant")
    if not axes:
        raise CostModelError("nothing to sweep: give --width, --depth, --resolution, --input, "
                             "--var, --groups or --variant")
    fmt = format
    if output is not None:
        by_suffix = TABLE_FORMATS[_suffix(output, TABLE_FORMATS, "--output")]
        fmt = fmt or Fmt(by_suffix)
        if fmt is Fmt.table:
            raise CostModelError("--output writes csv, json or markdown (--format)")
    fmt = fmt or Fmt.table
    if plot is not None:
        plot_format = _suffix(plot, PLOT_FORMATS, "--plot").lstrip(".")
        require_matplotlib("sweep --plot")
    _check_outputs(output, plot)

    try:
        result = scaling.sweep(model, axes, budget=budget, options=options, cost=pareto.value,
                               skip_invalid=skip_invalid)
    except ShapeError as e:
        e.message += group_hint
        raise
    table = scaling.sweep_table(result, raw=fmt is Fmt.csv, front_only=front_only)
    payload = scaling.sweep_payload(result, views.conventions(options))
    rendered = render(table, fmt.value, payload)
    image = scaling.plot_sweep(result, plot_format) if plot is not None else None
    with AtomicFiles() as out:  # everything is computed: now write, both files or neither
        if output is not None:
            out.stage(output, rendered)
        if plot is not None:
            out.stage(plot, image)
        out.commit()
    if output is None:
        if plot is not None:
            sys.stderr.write(f"plot: {plot}\n")
        emit(rendered)
    else:
        lines = [f"wrote {len(result.points)} configurations to {output}"]
        if plot is not None:
            lines.append(f"plot: {plot}")
        if (best := scaling.best_text(result)) is not None:
            lines.append(best)
        sys.stdout.write("\n".join(lines) + "\n")


def _check_outputs(*paths: str | None) -> None:
    """Refuse bad output targets (and one file named twice) before any work is done."""
    from costmodel.files import check_target

    real = [check_target(p) for p in paths if p is not None]
    if len({os.path.realpath(r) for r in real}) != len(real):
        raise OutputError("--output and --plot name the same file", field="output")
