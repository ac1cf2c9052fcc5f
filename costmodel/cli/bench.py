"""bench: measured latency of the built module, in total and per layer, and the machine.

torch is optional (the ``torch`` extra) and imported inside the command only.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from costmodel import api
from costmodel.cli import app, emit, fail, first_missing, handles_errors
from costmodel.cli._options import (ClassesOpt, DeviceOpt, Fmt, FormatOpt, InputOpt, WidthOpt,
                                    counting_options)
from costmodel.measure import DEFAULT_THREADS, MAX_MIN_TIME, MAX_THREADS
from costmodel.options import Options
from costmodel.render import Column, Table, render

TIME_COLUMNS = [Column("median", "median ms", "seconds"),
                Column("p10", "p10 ms", "seconds", drop=1),
                Column("p90", "p90 ms", "seconds", drop=1)]


@app.command()
@handles_errors
@counting_options
def bench(
    models: Annotated[list[str], typer.Argument(
        help="Zoo names (mobilenet-0.5), spec files or Python targets (pkg.mod:Net).")],
    device: Annotated[DeviceOpt, typer.Option("--device", help="Where to run.")] = DeviceOpt.cpu,
    threads: Annotated[int, typer.Option(
        "--threads", min=1, max=MAX_THREADS,
        help=f"CPU threads (torch.set_num_threads); default {DEFAULT_THREADS}, "
             "reproducible across machines.")] = DEFAULT_THREADS,
    min_time: Annotated[float, typer.Option(
        "--min-time", min=0.001, max=MAX_MIN_TIME,
        help="Seconds of timed runs for the total, and again for the per-layer passes "
             "(at least 5 runs each, after 3 warm-up runs).")] = 0.5,
    layers: Annotated[bool, typer.Option(
        "--layers/--no-layers", help="Also time every layer (in separate passes).")] = True,
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    format: FormatOpt = Fmt.table,
    *, options: Options,
):
    """Measure how long a forward pass of each model takes on this machine: the torch module
    the builder makes from the spec, in eval mode under torch.inference_mode, on a random
    input; warm-up runs, then runs until --min-time; the median and the p10–p90 spread.

    The total is timed in passes of its own, with nothing attached; each layer (a row of
    `costmodel show`, by its path) is timed in further passes by timestamps that hooks take
    around it; what no layer holds (dispatch between layers) is 'unattributed'. FLOP/s is
    the row's FLOPs, in the counting conventions chosen, over its median time.

    A Python target (pkg.mod:Net, nets.py:Net(width=0.5)) is timed as the module it builds,
    not a rebuild of its imported spec: a row per leaf module (by its path), with FLOPs and
    MAC from the imported spec's layer of the same path."""
    from costmodel.crosscheck import EXTRA_HINT

    if first_missing("torch") is not None:
        raise fail(f"bench needs torch, which is not installed: {EXTRA_HINT}")
    from costmodel.measure.bench import bench_model, check_device

    check_device(device.value)
    results = [api.evaluate_model(m, input=input, width=width, num_classes=classes,
                                  options=options) for m in models]
    modules = [_target_module(m, width, classes) for m in models]
    benches = [bench_model(r, device=device.value, threads=threads, min_time=min_time,
                           layers=layers, module=module)
               for r, module in zip(results, modules, strict=True)]
    emit(render(bench_tables(benches, format.value), format.value,
                [b.record() for b in benches]))


def _target_module(model: str, width: float | None, classes: int | None):
    """The user's own module when ``model`` is a Python target (None for a zoo name or a spec
    file: the builder makes it). --width and --classes change a spec, not a built module."""
    from costmodel.targets import TargetError, build_target, is_target

    if not is_target(model):
        return None
    for value, option in ((width, "--width"), (classes, "--classes")):
        if value is not None:
            raise TargetError(f"{model}: {option} rescales a spec; a Python target is timed as "
                              "the module it builds: give its own arguments instead "
                              "(nets.py:Net(width=0.5))", field=option.lstrip("-"))
    return build_target(model)


def _machine_note(machine: dict[str, Any], threads: int) -> str:
    default = " (the default; --threads N)" if threads == DEFAULT_THREADS else ""
    return (f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['device']}; "
            f"torch {machine['torch']} ({machine['torch_build']}), {threads} thread(s){default}")


def _timing_cells(t: dict[str, Any] | None) -> dict[str, Any]:
    return {k: t[k] for k in ("median", "p10", "p90", "runs")} if t else {}


def summary_table(records: list[dict[str, Any]]) -> Table:
    cols = [Column("model", "model"), Column("input", "input"), Column("batch", "batch", "int"),
            Column("flops", "FLOPs", "si"), Column("mac", "MAC", "si"), *TIME_COLUMNS,
            Column("runs", "runs", "int", drop=2), Column("flops_per_s", "FLOP/s", "si"),
            Column("layer_sum", "Σ layers ms", "seconds", drop=2),
            Column("unattributed", "unattributed ms", "seconds", drop=2)]
    rows = [{"model": r["model"], "input": "×".join(map(str, r["input"])), "batch": r["batch"],
             "flops": r["flops"], "mac": r["mac"], **_timing_cells(r["total"]),
             "flops_per_s": r["flops_per_s"], "layer_sum": r["layer_sum"],
             "unattributed": r["unattributed"]} for r in records]
    first = records[0]
    return Table(f"measured latency on {first['device']}", cols, rows,
                 notes=[_machine_note(first["machine"], first["threads"]), _RULE])


_RULE = ("median of runs after warm-up, p10–p90 their spread; the total in passes of its own "
         "without hooks")


def layers_table(bench) -> Table:
    """One model's rows (the paths of `costmodel show`), with the totals as footer."""
    record = bench.record()
    total = record["total"]["median"]
    cols = [Column("path", "layer"), Column("type", "type"), Column("flops", "FLOPs", "si"),
            Column("mac", "MAC", "si"), *TIME_COLUMNS,
            Column("share", "% time", "pct"), Column("flops_per_s", "FLOP/s", "si")]
    rows = [{**row, "share": row["median"] / total if total else None}
            for row in record["layers"]]
    footer = [{"path": "Σ layers", "median": record["layer_sum"]},
              {"path": "unattributed", "median": record["unattributed"],
               "share": record["unattributed"] / total if total else None},
              {"path": "total", "flops": record["flops"], "mac": record["mac"],
               **_timing_cells(record["total"]), "flops_per_s": record["flops_per_s"]}]
    h, w = record["input"]
    hooked = record["hooked_total"]["median"]
    notes = [bench.result.options.conventions(),
             _machine_note(record["machine"], record["threads"]),
             f"{_RULE}; layers timed in passes with hooks ({1e3 * hooked:.3g} ms a pass, "
             f"{hooked / total - 1:+.1%} over the plain total)" if total else _RULE]
    if bench.leaf_types is not None:
        notes.append("timed: the Python target's own module, a row per leaf module; "
                     "FLOPs and MAC from its imported spec's layer of the same path (blank: "
                     "none); functional ops (x + y, F.relu) are in unattributed")
    shape = f"{record['batch']}×{bench.result.in_channels}×{h}×{w}"
    return Table(f"{record['model']} — {shape} input, latency per layer on {record['device']}",
                 cols, rows, footer=footer, notes=notes)


def bench_tables(benches: list, fmt: str) -> list[Table]:
    """Each model's per-layer table (when timed per layer), then the summary. CSV holds one
    table: every model's layer rows with a model column, or the summary without layers."""
    with_layers = [b for b in benches if b.layers]
    if fmt == "csv" and with_layers:
        table = layers_table(with_layers[0])
        table.columns.insert(0, Column("model", "model"))
        table.rows = [{"model": b.result.model, **row} for b in with_layers
                      for row in layers_table(b).rows]
        return [table]
    return [*map(layers_table, with_layers), summary_table([b.record() for b in benches])]
