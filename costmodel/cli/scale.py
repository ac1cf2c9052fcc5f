"""scale (width / depth / resolution factors, EfficientNet's compound φ) and sweep (a grid of
configurations, its Pareto front and the largest one within a budget). Each command parses its
options, calls the library (costmodel.analysis.scale / .sweep) and renders."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from costmodel import api
from costmodel.cli import app, emit, handles_errors, require_matplotlib
from costmodel.cli._options import Fmt, FormatOpt, InputOpt, ProfileOpt, counting_options, \
    table_option
from costmodel.errors import CostModelError
from costmodel.options import Options
from costmodel.render import render

SCALE_TABLES = ("totals", "factors", "stages")
ScaleTableOpt = table_option("ScaleTable", SCALE_TABLES)


class CostAxis(str, Enum):
    params = "params"
    mac = "mac"
    latency = "latency"


@app.command()
@handles_errors
@counting_options
def scale(
    model: Annotated[str, typer.Argument(
        help="Zoo name, spec file or Python target (pkg.mod:Net).")],
    width: Annotated[Optional[float], typer.Option(
        "--width-factor", help="Width factor w: the model's α times w, every layer's channels "
                               "with the family's rounding (mobilenet-0.5 by 2 is α = 1).")
    ] = None,
    depth: Annotated[Optional[float], typer.Option(
        "--depth-factor", help="Depth factor: the model's d times it; every repeat of n runs "
                               "ceil(n·d) times.")] = None,
    resolution: Annotated[Optional[float], typer.Option(
        "--resolution-factor", "-r", help="Resolution factor r: the input size times r.")
    ] = None,
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
    table: ScaleTableOpt = None,
    *, options: Options,
):
    """Scale a model by width, depth and resolution factors (or compound φ): its cost next to
    the growth the factors predict, factor by factor and stage by stage, and the scaled
    network's own α and depth."""
    from costmodel.analysis import scale_views  # here, not at start-up: every command pays
    from costmodel.analysis.scale import Multipliers, scale as scale_model, spec_text
    from costmodel.files import check_target, write_atomic

    multipliers = Multipliers.given(width=width, depth=depth, resolution=resolution, phi=phi,
                                    alpha=alpha, beta=beta, gamma=gamma)
    if write is not None:  # refuse a bad target before any work
        spec_format = scale_views.format_by_suffix(write, scale_views.SPEC_FORMATS, "--write")
        check_target(write)
    result = scale_model(api.load(model, input=input), multipliers, input=input, options=options,
                         resolution_multiple=round_input, name=name)
    payload = scale_views.scale_payload(result, options.conventions().record())
    tables = dict(zip(SCALE_TABLES, scale_views.scale_tables(result), strict=True))
    rendered = render(tables, format.value, payload, table and table.value)
    if write is not None:  # everything is computed: now write
        write_atomic(write, spec_text(result.spec, spec_format))
        if format is not Fmt.json:
            sys.stderr.write(f"wrote {result.spec.name} to {write}\n")
    emit(rendered)


@app.command()
@handles_errors
@counting_options
def sweep(
    model: Annotated[str, typer.Argument(
        help="Zoo name, spec file or Python target (pkg.mod:Net).")],
    width: Annotated[Optional[str], typer.Option(
        "--width", "-w", help=f"Width multipliers α of the evaluated network, as compare "
                              f"--width (not relative to the model's own; 0 < α ≤ "
                              f"{api.MAX_MULTIPLIER}): a range start:stop:step (0.25:1.4:0.05) or "
                              "a list (0.5,0.75,1). Default: the model's α.")] = None,
    depth: Annotated[Optional[str], typer.Option(
        "--depth", "-d", help="Depth multipliers d of the evaluated network (absolute, as "
                              "--width; repeats of n run ceil(n·d) times). Default: the "
                              "model's d.")] = None,
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
    max_latency: Annotated[Optional[str], typer.Option(
        "--max-latency", help="Budget for the latency predicted from --profile, in "
                              "milliseconds: 12.5.")] = None,
    pareto: Annotated[CostAxis, typer.Option(
        "--pareto", help="The front: the most FLOPs for the least params (or MAC, or the "
                         "latency predicted from --profile). FLOPs are "
                         "its gain, the compute a configuration buys: with FLOPs and params both "
                         "as costs, the smallest configuration would beat every other.")
    ] = CostAxis.params,
    all_rows: Annotated[bool, typer.Option(
        "--all", help="Print every configuration; by default a table shows the front and the "
                      "best within the budget (JSON, CSV and -o files carry every row).")
    ] = False,
    front_only: Annotated[bool, typer.Option(
        "--front-only", hidden=True, help="The default now (the front and the best).")] = False,
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
    profile: ProfileOpt = None,
    *, options: Options,
):
    """Evaluate a grid of widths, depths, resolutions, groups or variants: every
    configuration's cost, the Pareto front, and the largest one within a budget (with
    --profile, each configuration's predicted latency too)."""
    from costmodel.analysis import sweep as grid
    from costmodel.analysis.sweep_views import SweepFiles, render_sweep

    if all_rows and front_only:
        raise CostModelError("--all and --front-only contradict each other: give one")
    axes = grid.parse_grid(model, variant=variant, depth=depth, width=width,
                           resolution=resolution, input=input, var=var or (), groups=groups)
    budget = grid.SweepBudget.parse(flops=max_flops, params=max_params, mac=max_mac,
                                    peak_activation=max_activation, latency_ms=max_latency)
    files = SweepFiles.check(output, plot, format and format.value)
    if plot is not None:
        require_matplotlib("sweep --plot")
    # the profile is read (or its absence refused) before any configuration is evaluated;
    # COSTMODEL_PROFILE set empty is no profile
    result = grid.sweep(model, axes, budget=budget, cost=pareto.value, skip_invalid=skip_invalid,
                        options=options, profile=profile or None)
    # a file is data: every row; a terminal: the front and the best unless --all
    rendered = render_sweep(result, files.format, every=all_rows or output is not None)
    image = None
    if plot is not None:
        from costmodel.report.plots import draw_sweep, sweep_plot_data
        image = draw_sweep(sweep_plot_data(result), files.plot_format)
    files.write(rendered, image)  # everything is computed: both files or neither
    if output is not None:
        sys.stdout.write(files.summary(result))
        return
    if plot is not None:
        sys.stderr.write(f"plot: {plot}\n")
    emit(rendered)
