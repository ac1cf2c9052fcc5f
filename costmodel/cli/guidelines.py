"""guidelines: ShuffleNet V2's four guideline experiments, counted, measured, and judged."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from costmodel.cli import app, emit, fail, first_missing, handles_errors
from costmodel.cli._options import Fmt, FormatOpt, table_option
from costmodel.cli._options import DeviceOpt as Device
from costmodel.measure import DEFAULT_THREADS, MAX_MIN_TIME, MAX_THREADS
from costmodel.render import render

class ChannelSet(str, Enum):
    gpu = "gpu"
    arm = "arm"


GUIDELINE_TABLES = ("verdicts", "G1", "G2", "G3", "G4")
GuidelinesTableOpt = table_option("GuidelinesTable", GUIDELINE_TABLES)
MAX_GUIDELINES_BATCH = 64
"""The largest batch measured: the widest network (G2 ×4 at GPU widths, 1448 channels at
56×56) then holds 1.2 GB per feature map; the paper measured batch 1."""


@app.command()
@handles_errors
def guidelines(
    measure: Annotated[bool, typer.Option(
        "--measure", help="Time every network on this machine (needs torch); without it the "
                          "command only counts FLOPs and MAC.")] = False,
    device: Annotated[Device, typer.Option("--device", help="Where to measure.")] = Device.cpu,
    threads: Annotated[int, typer.Option(
        "--threads", min=1, max=MAX_THREADS,
        help="torch's intra-op threads (the paper's ARM figures are one thread).")
    ] = DEFAULT_THREADS,
    batch: Annotated[int, typer.Option(
        "--batch", min=1, max=MAX_GUIDELINES_BATCH,
        help="Images per forward pass (the paper's Tables 1–4: 1).")] = 1,
    min_time: Annotated[float, typer.Option(
        "--min-time", min=0.0, max=MAX_MIN_TIME,
        help="Seconds of timed runs per network, at least (after 3 warm-up runs; at least "
             "5 runs).")] = 0.5,
    rounds: Annotated[int, typer.Option(
        "--rounds", min=1, max=10,
        help="Passes over the structures compared, in alternating order; each keeps its "
             "fastest pass (a shared machine's bursts of load).")] = 2,
    channels: Annotated[Optional[ChannelSet], typer.Option(
        "--channels", help="The paper's widths for its GPU or its ARM runs (Table 1: 1:1 at "
                           "c = 128 or 32); default: gpu with --device cuda, else arm.")] = None,
    width: Annotated[Optional[list[int]], typer.Option(
        "--width", help="Only these width scales of the paper's ×1, ×2, ×4 (repeatable).")] = None,
    guideline: Annotated[Optional[list[str]], typer.Option(
        "--guideline", "-g", help="Only these experiments (G1, G2, G3, G4; repeatable).")] = None,
    profile: Annotated[Optional[Path], typer.Option(
        "--profile", help="A latency profile (costmodel calibrate) for the 'predicted' "
                          "column.")] = None,
    format: FormatOpt = Fmt.table,
    table: GuidelinesTableOpt = None,
):
    """ShuffleNet V2's guideline experiments (Tables 1–4): each network counted (FLOPs, MAC),
    with --measure timed on this machine, beside the paper's GPU and ARM speeds — relative to
    the structure each guideline favours, since absolute speeds do not compare across
    devices — and a verdict per guideline: does it hold here, and by how much.

    The networks are the paper's: 10 blocks on a 56×56 input, its channel counts for its GPU
    or its ARM runs (--channels). Its Tables 1–4 are batch 1 on both platforms (at batch 8
    the GPU figures would exceed the GTX 1080Ti's peak), hence --batch 1."""
    from costmodel.analysis import guidelines as g

    if profile is not None and not profile.is_file():
        raise fail(f"--profile: no such file: {profile}")
    if measure and first_missing("torch"):
        raise fail('--measure times the networks with torch, which is not installed: '
                   'pip install torch')
    chosen = (channels.value if channels else "gpu" if device.value == "cuda" else "arm")
    cases = g.build_cases(chosen, tuple(sorted(set(width))) if width else g.WIDTHS, guideline)
    machine = None
    if measure:
        from costmodel.measure.guidelines import measure as run

        machine = run(cases, device=device.value, threads=threads, batch=batch,
                      min_time=min_time, rounds=rounds)
    for case in cases:
        case.predicted = g.predicted_seconds(case.result, profile)
    report = g.Report(cases, chosen, measure, machine, str(profile) if profile else None)
    emit(render(g.tables(report), format.value, g.payload(report), table and table.value))
