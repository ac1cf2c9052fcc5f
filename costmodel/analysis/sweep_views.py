"""What ``costmodel sweep`` shows and writes: each configuration as a record (the JSON and CSV
contract), the grid as a Table, the line naming the best configuration, and the files
``--output`` and ``--plot`` go to."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from costmodel.analysis.scale import hw_text
from costmodel.analysis.scale_views import format_by_suffix
from costmodel.analysis.sweep import Point, SweepResult, describe_point, front_name
from costmodel.errors import CostModelError, OutputError
from costmodel.options import LATENCY, LATENCY_LABEL
from costmodel.render import Column, Table
from costmodel.render.format import si

TABLE_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown"}
PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def point_record(p: Point, result: SweepResult, i: int) -> dict[str, Any]:
    """One sweep row with raw numbers (the JSON and CSV contract)."""
    rec: dict[str, Any] = {"model": p.model}
    if any(a.kind == "variant" for a in result.axes):
        rec["variant"] = p.variant
    for k, v in p.vars.items():
        rec[k if k not in _RESERVED else f"var_{k}"] = v
    rec.update(width=p.width, depth=p.depth)
    if p.resolution is not None:
        rec["resolution"] = p.resolution
    rec.update(input=list(p.input), flops=p.totals.flops, params=p.totals.params,
               mac=p.totals.mac, mac_bytes=p.totals.mac * result.options.dtype_bytes,
               peak_activation=p.totals.peak_activation)
    if result.latency_note is not None:  # a profile was given
        rec[LATENCY] = p.latency_ms
    rec.update(pareto=i in result.front,
               fits=result.fits[i] if result.budget else None, best=i == result.best)
    return rec


_RESERVED = frozenset({"model", "variant", "width", "depth", "resolution", "input", "input_h",
                       "input_w", "flops", "params", "mac", "mac_bytes", "peak_activation",
                       "pareto", "fits", "best", LATENCY})


def _latency_text(p: Point) -> str:
    return "" if p.latency_ms is None else f", {p.latency_ms:.3g} ms predicted"


def best_text(result: SweepResult) -> str | None:
    """One line naming the largest configuration within the budget (or saying none fits)."""
    if not result.budget:
        return None
    if result.best is None:
        small = result.points[_smallest(result)]
        return (f"nothing fits {result.budget.describe()}; the smallest configuration, "
                f"{describe_point(small, result.axes)}, has {si(small.totals.flops)} FLOPs and "
                f"{si(small.totals.params)} params{_latency_text(small)}")
    p = result.points[result.best]
    return (f"largest within {result.budget.describe()}: {describe_point(p, result.axes)} — "
            f"{si(p.totals.flops)} FLOPs, {si(p.totals.params)} params, {si(p.totals.mac)} MAC"
            f"{_latency_text(p)}")


def sweep_payload(result: SweepResult, conventions: dict[str, Any]) -> dict[str, Any]:
    """The ``sweep --format json`` contract."""
    payload = {
        "model": result.model,
        "axes": [{"axis": a.key, "kind": a.kind,
                  "values": [list(v) if isinstance(v, tuple) else v for v in a.values]}
                 for a in result.axes],
        "pareto": {"front": front_name(result.cost), "gain": "flops", "cost": result.cost,
                   "rule": "no other configuration has at least its FLOPs for at most its "
                           f"{_cost_word(result.cost)} (one strictly)",
                   "among": "within budget" if result.budget else "all"},
        "budget": dict(result.budget.limits) or None,
        "rows": [point_record(p, result, i) for i, p in enumerate(result.points)],
        "best": (point_record(result.points[result.best], result, result.best)
                 if result.best is not None else None),
        "best_text": best_text(result),
        "skipped": [{"configuration": c, "error": e} for c, e in result.skipped],
        "conventions": conventions,
    }
    if result.latency_note is not None:
        payload["latency_profile"] = {"note": result.latency_note}
    return payload


def _smallest(result: SweepResult) -> int:
    """The configuration with the fewest FLOPs (then params): what nothing-fits names."""
    return min(range(len(result.points)), key=lambda i: (result.points[i].totals.flops,
                                                         result.points[i].totals.params, i))


def shown_rows(result: SweepResult) -> list[int]:
    """The rows a table shows by default: the front and the best within the budget (the
    smallest configuration when nothing fits, as the best line names it), in grid order."""
    keep = set(result.front) | ({result.best} if result.best is not None else set())
    return sorted(keep or {_smallest(result)})


def sweep_table(result: SweepResult, *, raw: bool = False, every: bool = True) -> Table:
    """The grid as a Table: the swept axes, the metrics, the front and budget marks.

    ``raw`` (CSV) gives every configuration column and the input as input_h, input_w.
    ``every=False`` keeps only ``shown_rows`` (what a terminal shows without ``--all``)."""
    records = [point_record(p, result, i) for i, p in enumerate(result.points)]
    keep = list(range(len(records))) if every else shown_rows(result)
    cols: list[Column] = []
    swept = {a.kind for a in result.axes}
    if raw:
        cols.append(Column("model", "model"))
    if "variant" in swept:
        cols.append(Column("variant", "variant"))
    for a in result.axes:
        if a.kind == "var":
            k = a.var if a.var not in _RESERVED else f"var_{a.var}"
            cols.append(Column(k, a.label))
    # variants set their own α, d and input sizes: show each whenever it differs
    one = {k: len({getattr(p, k) for p in result.points}) == 1 for k in ("depth", "width", "input")}
    for k, label in (("depth", "depth d"), ("width", "width α"), ("resolution", "resolution")):
        if k in swept or (raw and k != "resolution") or not one.get(k, True):
            cols.append(Column(k, label))
    one_input = one["input"]
    if raw:
        cols += [Column("input_h", "input_h"), Column("input_w", "input_w")]
    elif swept & {"input", "resolution"} or not one_input:
        cols.append(Column("input_hw", "input"))
    cols += [Column("flops", "FLOPs", "si"), Column("params", "params", "si"),
             Column("mac", "MAC", "si"), Column("peak_activation", "peak act.", "si")]
    if result.latency_note is not None:
        cols.append(Column(LATENCY, LATENCY_LABEL, "ms"))
    rows = []
    for i in keep:
        rec = dict(records[i])
        rec.update(input_h=rec["input"][0], input_w=rec["input"][1],
                   input_hw=hw_text(tuple(rec["input"])))
        if raw:
            rec.update(pareto=int(rec["pareto"]), best=int(rec["best"]),
                       fits="" if rec["fits"] is None else int(rec["fits"]))
        else:
            rec.update(pareto="●" if rec["pareto"] else "",
                       fits="✓" if rec["fits"] else "", best="◀ best" if rec["best"] else "")
        rows.append(rec)
    cols.append(Column("pareto", "front" if not raw else "pareto"))
    if result.budget:
        cols += [Column("fits", "fits"), Column("best", "best")]
    first = result.points[0]
    fixed = [f"{label} = {getattr(first, k):g}" for k, label in (("depth", "d"), ("width", "α"))
             if k not in swept and one[k]]
    if not swept & {"input", "resolution"} and one_input:
        fixed.append(f"input {hw_text(first.input)}")
    title = (f"{result.model} sweep: {len(result.points)} configurations"
             + (f" ({', '.join(fixed)})" if fixed else "")
             + f"; front: {front_name(result.cost)}")
    among = " within the budget" if result.budget else ""
    notes = [result.options.describe(),
             f"front (●): {front_name(result.cost)}{among} — no other configuration{among} has "
             f"at least its FLOPs for at most its {_cost_word(result.cost)} (FLOPs as the "
             "compute bought)",
             "width α and depth d are the evaluated network's own (absolute, as compare "
             "--width means it); resolution multiplies the spec's input"]
    if result.latency_note is not None:
        notes.append(result.latency_note)
    if (line := best_text(result)) is not None:
        notes.append(line)
    if not every and len(keep) < len(records):
        shown = "the front and the best within the budget" if result.budget else "the front"
        if not result.front and result.best is None:
            shown = "the smallest configuration"
        notes.append(f"showing {len(keep)} of {len(records)} configurations ({shown}); --all "
                     "prints every one, and JSON, CSV and -o files always carry every row")
    if result.skipped:
        notes.append(f"{len(result.skipped)} configurations skipped (they do not evaluate), "
                     f"e.g. {result.skipped[0][0]}: {result.skipped[0][1]}")
    return Table(title, cols, rows, notes=notes)


def _cost_word(cost: str) -> str:
    return "predicted latency" if cost == "latency" else cost


def render_sweep(result: SweepResult, fmt: str, *, every: bool = True):
    """The grid in ``fmt`` (table, markdown, csv: raw columns, json: the payload).
    ``every=False`` shows only ``shown_rows`` in a table or Markdown; CSV and JSON are data
    and always carry every row."""
    from costmodel.render import render

    every = every or fmt in ("csv", "json")
    table = sweep_table(result, raw=fmt == "csv", every=every)
    return render(table, fmt, sweep_payload(result, result.options.conventions().record()))


@dataclass(frozen=True)
class SweepFiles:
    """Where a sweep's outputs go: the grid in ``format`` to stdout or to ``output``, the plot
    (``plot_format``) to ``plot``. ``check`` refuses bad targets before any work is done."""

    format: str = "table"
    output: str | None = None
    plot: str | None = None
    plot_format: str | None = None

    @classmethod
    def check(cls, output: str | None = None, plot: str | None = None,
              format: str | None = None) -> "SweepFiles":
        """``format`` defaults to ``output``'s suffix (or a table on stdout); both targets
        must be files that may be replaced, and not the same one."""
        from costmodel.files import check_target

        if output is not None:
            format = format or format_by_suffix(output, TABLE_FORMATS, "--output")
            if format == "table":
                raise CostModelError("--output writes csv, json or markdown (--format)")
        plot_format = None if plot is None else format_by_suffix(plot, PLOT_FORMATS, "--plot")
        real = [check_target(p) for p in (output, plot) if p is not None]
        if len({os.path.realpath(r) for r in real}) != len(real):
            raise OutputError("--output and --plot name the same file", field="output")
        return cls(format or "table", output, plot, plot_format)

    def write(self, rendered: str | None, image: bytes | None) -> None:
        """Both files or neither (``costmodel.files.AtomicFiles``)."""
        from costmodel.files import AtomicFiles

        if self.output is None and self.plot is None:
            return
        with AtomicFiles() as out:
            if self.output is not None:
                out.stage(self.output, rendered)
            if self.plot is not None:
                out.stage(self.plot, image)
            out.commit()

    def summary(self, result: SweepResult) -> str:
        """What was written where, and the best configuration, for stdout when the grid went
        to a file."""
        lines = [f"wrote {len(result.points)} configurations to {self.output}"]
        if self.plot is not None:
            lines.append(f"plot: {self.plot}")
        if (best := best_text(result)) is not None:
            lines.append(best)
        return "\n".join(lines) + "\n"
