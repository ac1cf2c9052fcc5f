"""calibrate: measure this machine's latency per operator class into a profile that
``--profile`` (show, compare, budgets) predicts latency from. torch is imported inside the
command only."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from costmodel.cli import app, fail, first_missing, handles_errors
from costmodel.cli._options import DeviceOpt as Device


class Method(str, Enum):
    context = "context"
    layers = "layers"


@app.command()
@handles_errors
def calibrate(
    output: Annotated[str, typer.Option(
        "--output", "-o", help="The profile to write (YAML), whole or not at all.")],
    device: Annotated[Device, typer.Option("--device", help="Where to time the layers.")
                      ] = Device.cpu,
    threads: Annotated[int, typer.Option(
        "--threads", min=1, max=4096, help="torch's intra-op threads (the profile holds "
                                           "for this count).")] = 1,
    batch: Annotated[int, typer.Option("--batch", min=1, max=4096,
                                       help="Images per forward pass.")] = 1,
    method: Annotated[Method, typer.Option(
        "--method", help="context: random synthetic networks timed layer by layer in real "
                         "passes (caches and dispatch as in a network); layers: single layers "
                         "timed alone over a grid of shapes.")] = Method.context,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Fewer networks (or shapes) and shorter timings: a rough profile in "
                        "about a third of the time.")] = False,
    networks: Annotated[Optional[int], typer.Option(
        "--networks", min=1, max=200,
        help="Synthetic networks to time with --method context (default 48; 8 with "
             "--quick).")] = None,
    min_time: Annotated[Optional[float], typer.Option(
        "--min-time", min=0.001, max=10.0,
        help="Seconds of runs per network (default 0.2; 0.05 with --quick) or per shape "
             "(--method layers: 0.05; 0.02 with --quick).")] = None,
    per_class: Annotated[Optional[int], typer.Option(
        "--shapes-per-class", min=3, max=1000, hidden=True,
        help="Only N shapes of each class (a smoke test).")] = None,
):
    """Time the layers of each operator class (dense, 1×1, grouped and depthwise convs,
    linear, batch and layer norm, activations, pooling, merges, shuffles, views) inside random
    synthetic networks (classifiers, dense networks on large maps, transformers; never a zoo
    model), fit per class t = overhead + multiply-adds / F + bytes / B (or the max form,
    whichever predicts the networks better) scaled by a law in the layer's channels, positions
    and kernel, plus a cost per byte of outputs large enough to be paged in fresh, and the
    module dispatch between layers, and write the profile.

    The profile names the machine, torch build, device, threads and batch it was measured on;
    `costmodel show MODEL --profile FILE` then predicts each layer's latency without torch."""
    from costmodel.files import check_target, write_atomic

    check_target(output)  # a bad target fails before minutes of timing
    if first_missing("torch"):
        from costmodel.crosscheck import EXTRA_HINT

        raise fail(f"calibrate times layers in torch, which is not installed: {EXTRA_HINT}")
    from costmodel.measure.bench import check_device

    check_device(device.value)
    from costmodel.latency.profile import dump_profile
    from costmodel.measure.calibrate import calibrate as run

    profile = run(device=device.value, threads=threads, batch=batch, quick=quick,
                  min_time=min_time, per_class=per_class, method=method.value,
                  networks=networks, progress=lambda m: sys.stderr.write(f"calibrate: {m}\n"))
    write_atomic(output, "# costmodel latency profile (costmodel calibrate)\n"
                 + dump_profile(profile))
    kept = profile.fit.get("forms", {}).get(profile.combine, {})
    if method is Method.context:
        what = (f"{profile.fit.get('points')} layers of {profile.fit.get('networks')} "
                f"networks in {profile.fit.get('seconds')} s; combine={profile.combine}, "
                f"median error on the networks' totals "
                f"{kept.get('network_median_error', 0):.1%}")
    else:
        what = (f"{profile.fit.get('points')} shapes in {profile.fit.get('seconds')} s; "
                f"combine={profile.combine}, median error on its own points "
                f"{kept.get('median_error', 0):.1%}")
    typer.echo(f"wrote {output}: {len(profile.classes)} operator classes, {what}")
