"""Data flow through a network: EffNet's Table 1.

For each stage (or block, or shape-changing layer) the tensor that flows out of it and the
compression factor from its input to its output, elements in / elements out. EffNet (Freeman
et al. 2018, §4.1) argues that small networks are very sensitive to data compression and marks
factors of 4 or more in red; so does this module (``FLAG_FACTOR``), with a ⚠ beside the factor
so the mark survives without colour (a boolean ``flagged`` in CSV and JSON).

Shapes are written C×H×W, as ``show``, ``report`` and PyTorch write them (EffNet's Table 1
writes H×W×C; ``hwc`` and the JSON's ``*_hwc`` fields keep that spelling for readers of the
paper), and every header that holds a shape says so.

Levels:

- ``stage``: one row per stage. A stage is a ``stage`` node of the spec; where a spec defines
  none (and for the layers between stages), a new stage starts at each top-level layer that
  downsamples the map spatially.
- ``block``: one row per block of each stage: composite blocks (dwsep, shufflenet_unit,
  effnet_block, …), branching nodes, and primitives that change the tensor's shape (batch
  norm and activations do not, so they are left out). ``sequential``, ``stage`` and
  ``repeat`` are looked through.
- ``layer``: one row per primitive that changes the tensor's shape, inside blocks and
  branches too. A merge row (concat, add) compares the branching node's input with the merged
  output, so it shows what the whole branching node does to the data.

The classifier head (from the first top-level layer after the last stage that makes a vector
or a 1×1 map) is shown but never flagged: squeezing the map into class scores is its job.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from costmodel.analysis._tree import (Segment, blocks_of, is_container, is_shape_preserving,
                                      node_input, node_output, node_type, segments)
from costmodel.errors import CostModelError
from costmodel.engine import Branch, Dag, Node, Result, Row, Seq
from costmodel.render import Column, Table
from costmodel.shape import Shape

Level = Literal["stage", "block", "layer"]
LEVELS: tuple[str, ...] = ("stage", "block", "layer")
FLAG_FACTOR = 4
"""EffNet Table 1 marks compression factors of 4 or more."""


def hwc(s: Shape | None) -> str:
    """A shape as the papers write it: H×W×C (a vector: its length)."""
    if s is None:
        return ""
    return str(s.c) if s.flat else f"{s.h}×{s.w}×{s.c}"


def chw(s: Shape | None) -> str:
    """A shape in the order every table uses: C×H×W (a vector: its length)."""
    return "" if s is None else str(s)


@dataclass(frozen=True)
class FlowRow:
    """One step of the data flow: what flows in and out of a stage, block or layer.

    ``index`` is the stage's position (0 for the input row) and ``sub`` the row's position in
    its stage."""

    model: str
    index: int
    sub: int
    stage: str
    label: str
    path: str | None
    ops: str
    input: Shape | None
    output: Shape
    head: bool = False

    @property
    def elements_in(self) -> int | None:
        return self.input.numel if self.input is not None else None

    @property
    def elements_out(self) -> int:
        return self.output.numel

    @property
    def factor(self) -> Fraction | None:
        """Compression factor, elements in / elements out (exact)."""
        if self.input is None:
            return None
        return Fraction(self.input.numel, self.output.numel)

    @property
    def flagged(self) -> bool:
        """EffNet's red mark: a factor of 4 or more outside the classifier head."""
        f = self.factor
        return f is not None and not self.head and f >= FLAG_FACTOR

    def record(self) -> dict[str, Any]:
        f = self.factor
        return {"model": self.model, "stage": self.stage, "label": self.label,
                "path": self.path, "ops": self.ops,
                "input": self.input.as_list() if self.input else None,
                "output": self.output.as_list(), "input_chw": chw(self.input),
                "output_chw": chw(self.output), "input_hwc": hwc(self.input),
                "output_hwc": hwc(self.output), "elements_in": self.elements_in,
                "elements_out": self.elements_out,
                "factor": float(f) if f is not None else None,
                "flagged": self.flagged, "head": self.head}


# --- short descriptions of what a row does -------------------------------------------------

def describe_row(row: Row) -> str:
    """'conv 3×3/2', 'gconv 1×1 g4', 'dw 1×3', 'max_pool 2×1', 'concat', …: the layer's own
    ``describe`` (a split or merge row has no layer: its type)."""
    return row.type if row.layer is None else row.layer.describe(row.inputs[0])


def describe(node: Node) -> str:
    """A node in a few words: a primitive's operator, a block's type, or for a group of
    nodes the shape-changing parts joined by '+' (repeats written ×n)."""
    if isinstance(node, Row):
        return describe_row(node)
    if isinstance(node, (Branch, Dag)):
        return node_type(node)
    if node.layer is None or is_container(node):  # the model, or a group of layers
        return describe_many(blocks_of(node))
    stride = getattr(node.layer, "stride", 1)
    return node_type(node) + (f"/{stride}" if isinstance(stride, int) and stride > 1 else "")


def describe_many(nodes: list[Node]) -> str:
    parts: list[list] = []
    for n in nodes:
        if isinstance(n, Row) and is_shape_preserving(n):
            continue  # batch norm, activations: not part of the data flow
        d = describe(n)
        if parts and parts[-1][0] == d:
            parts[-1][1] += 1
        else:
            parts.append([d, 1])
    return " + ".join(d if k == 1 else f"{d} ×{k}" for d, k in parts) or "—"


# --- the rows --------------------------------------------------------------------------------

def _layer_rows(node: Node) -> list[tuple[Node, Shape]]:
    """(node, input) for each shape-changing primitive under ``node``; a merge is paired with
    the branching node's input."""
    if isinstance(node, Row):
        return [] if is_shape_preserving(node) else [(node, node.inputs[0])]
    if isinstance(node, Seq):
        return [x for c in node.children for x in _layer_rows(c)]
    out: list[tuple[Node, Shape]] = []
    if isinstance(node, Dag):  # a graph's merges, each with its own first input
        for merge, seq in zip(node.merges, node.seqs):
            if merge is not None and not is_shape_preserving(merge):
                out.append((merge, merge.inputs[0]))
            out.extend(_layer_rows(seq))
        return out
    for seq in node.branches:
        out.extend(_layer_rows(seq))
    if node_input(node) != node.merge.out:
        out.append((node.merge, node_input(node)))
    return out


def _segment_rows(result: Result, seg: Segment, index: int, level: Level) -> list[FlowRow]:
    def row(sub: int, node_label: str, path: str | None, ops: str, x: Shape, y: Shape):
        return FlowRow(result.model, index, sub, seg.label, node_label, path, ops, x, y,
                       seg.head)

    if level == "stage":
        path = seg.nodes[0].path if seg.kind == "stage" else None
        return [row(0, seg.label, path, describe_many(list(seg.nodes)), seg.input, seg.output)]
    if level == "block":
        blocks = [b for n in seg.nodes for b in blocks_of(n)
                  if not (isinstance(b, Row) and is_shape_preserving(b))]
        return [row(i, b.path, b.path, describe(b), node_input(b), node_output(b))
                for i, b in enumerate(blocks)]
    pairs = [p for n in seg.nodes for p in _layer_rows(n)]
    return [row(i, n.path, n.path, describe(n), x, node_output(n))
            for i, (n, x) in enumerate(pairs)]


def dataflow(result: Result, per_block: bool = False, *,
             level: Level | None = None) -> list[FlowRow]:
    """The data flow of one evaluated model: an ``input`` row, then one row per stage
    (``level='stage'``, the default), per block (``per_block=True`` or ``level='block'``) or
    per shape-changing layer (``level='layer'``). See the module docstring."""
    level = level or ("block" if per_block else "stage")
    if level not in LEVELS:
        raise CostModelError(f"unknown data-flow level '{level}' ({', '.join(LEVELS)})")
    first = result.rows[0].inputs[0]
    rows = [FlowRow(result.model, 0, 0, "input", "input", None, "image", None, first)]
    for i, seg in enumerate(segments(result), start=1):
        rows.extend(_segment_rows(result, seg, i, level))
    return rows


def flagged(rows: list[FlowRow]) -> list[FlowRow]:
    return [r for r in rows if r.flagged]


# --- tables ----------------------------------------------------------------------------------

_NOTE_FACTOR = (f"factor = elements in / elements out of each step; factors of "
                f"{FLAG_FACTOR} or more are marked ⚠, as in EffNet's Table 1 (the classifier "
                f"head is not marked)")


_NOTE_STAGES = ("stages: the spec's `stage` nodes; elsewhere a new stage starts at each spatial "
                "downsampling")

_NOTE_SHAPES = "shapes C×H×W: channels × height × width of the tensor (a vector: its length)"

_NOTE_ALIGN = ("side by side, rows are aligned by the spatial size H×W of each stage's output "
               "(an empty cell: no stage of that model ends at that size); heads last")


def _single_table(result: Result, rows: list[FlowRow], level: str, flags: bool) -> Table:
    cols = [Column("stage", "stage"), Column("label", level),
            Column("ops", "operators"), Column("input_chw", "in C×H×W"),
            Column("output_chw", "out C×H×W"), Column("elements_out", "elements", "int"),
            Column("factor", "in/out", "ratio")]
    if flags:
        cols.append(Column("flagged", "flagged"))
    if level == "stage":
        cols = [c for c in cols if c.key != "label"]
    records = []
    marks = set()
    for i, r in enumerate(rows):
        rec = r.record()
        if level == "stage" and r.index > 0:
            rec["stage"] = r.label
        records.append(rec)
        if r.flagged:
            marks.add((i, "factor"))
    h, w = result.input
    return Table(f"{result.model} — data flow per {level} ({result.in_channels}×{h}×{w} input)",
                 cols, records, notes=[_NOTE_FACTOR, _NOTE_STAGES, _NOTE_SHAPES], marks=marks)


# A row's place side by side: the spatial size of its stage's output, "vector" for a stage that
# ends flat, "head" for the classifier head (always last).
Place = tuple[int, int] | str


def _places(rows: list[FlowRow]) -> list[Place]:
    """The place of each row: its stage's output size (the last row of a stage ends where the
    stage ends: the rows after a stage's last shape-changing step do not change the shape)."""
    last: dict[int, FlowRow] = {}
    for r in rows:
        last[r.index] = r
    out: list[Place] = []
    for r in rows:
        end = last[r.index].output
        out.append("head" if r.head else "vector" if end.flat else (end.h, end.w))
    return out


def _rank(place: Place) -> tuple[int, int]:
    """Larger maps first, then a flat stage, then the head."""
    if place == "head":
        return (-2, 0)
    if place == "vector":
        return (-1, 0)
    h, w = place
    return (h * w, h)


def _runs(rows: list[FlowRow]) -> list[tuple[Place, list[FlowRow]]]:
    """Consecutive rows at the same place, in the model's order."""
    runs: list[tuple[Place, list[FlowRow]]] = []
    for place, r in zip(_places(rows), rows):
        if runs and runs[-1][0] == place:
            runs[-1][1].append(r)
        else:
            runs.append((place, [r]))
    return runs


def align(per_model: list[list[FlowRow]]) -> list[tuple[Place, int, list[FlowRow | None]]]:
    """Lines of rows side by side: (place, position at that place, one row or None per model).

    A merge of the models' runs of rows at one place: each step takes the largest place among
    the models' next runs, and every model whose next run is at that place puts it there, row by
    row. Each model's rows keep their order (a model that grows its map again simply starts a new
    run), so this holds for any network; for the usual shrinking ones the lines sort by size."""
    runs = [_runs(rows) for rows in per_model]
    pos = [0] * len(runs)
    lines: list[tuple[Place, int, list[FlowRow | None]]] = []
    while True:
        nexts = {m: rs[pos[m]][0] for m, rs in enumerate(runs) if pos[m] < len(rs)}
        if not nexts:
            return lines
        place = max(nexts.values(), key=_rank)
        takers = [m for m, p in nexts.items() if p == place]
        depth = max(len(runs[m][pos[m]][1]) for m in takers)
        for k in range(depth):
            cells: list[FlowRow | None] = [None] * len(runs)
            for m in takers:
                rows = runs[m][pos[m]][1]
                cells[m] = rows[k] if k < len(rows) else None
            lines.append((place, k, cells))
        for m in takers:
            pos[m] += 1


def _place_text(place: Place) -> str:
    return place if isinstance(place, str) else f"{place[0]}×{place[1]}"


def dataflow_table(results: list[Result], per_block: bool = False, *,
                   level: Level | None = None, flags: bool = False) -> Table:
    """EffNet's Table 1 as a Table. One model: its rows with operators, shapes and factors.
    Several: side by side, one shape column and one factor column per model, rows aligned by
    the size of each stage's output (``align``). ``flags`` adds a boolean column beside each
    factor (for CSV, where a mark cannot sit in a numeric cell)."""
    level = level or ("block" if per_block else "stage")
    per_model = [dataflow(r, level=level) for r in results]
    if len(results) == 1:
        return _single_table(results[0], per_model[0], level, flags)
    cols = [Column("size", "H×W"), Column("stage", "stage")]
    names = [r.model for r in results]
    if len(set(names)) < len(names):  # the same model twice (e.g. two inputs): number them
        names = [f"{n} #{i + 1}" for i, n in enumerate(names)]
    for j, name in enumerate(names):
        cols += [Column(f"m{j}_chw", f"{name} out C×H×W"),
                 Column(f"m{j}_factor", "in/out", "ratio")]
        if flags:
            cols.append(Column(f"m{j}_flagged", "flagged"))
    records, marks = [], set()
    for i, (place, _, cells) in enumerate(align(per_model)):
        present = [r for r in cells if r is not None]
        label = " / ".join(dict.fromkeys(
            r.label if level == "stage" or r.index == 0 else f"{r.stage} ({r.sub + 1})"
            for r in present))
        rec: dict[str, Any] = {"size": _place_text(place), "stage": label}
        for j, r in enumerate(cells):
            if r is None:
                continue
            f = r.factor
            rec[f"m{j}_chw"] = f"{r.ops}: {chw(r.output)}" if level != "stage" and r.index \
                else chw(r.output)
            rec[f"m{j}_factor"] = float(f) if f is not None else None
            if flags:
                rec[f"m{j}_flagged"] = r.flagged
            if r.flagged:
                marks.add((i, f"m{j}_factor"))
        records.append(rec)
    first = results[0]
    h, w = first.input
    inputs = {r.input for r in results}
    size = f"{h}×{w} input" if len(inputs) == 1 else "inputs " + ", ".join(
        "×".join(map(str, r.input)) for r in results)
    return Table(f"Data flow per {level} — {', '.join(r.model for r in results)} ({size})",
                 cols, records, notes=[_NOTE_FACTOR, _NOTE_STAGES, _NOTE_SHAPES, _NOTE_ALIGN],
                 marks=marks)


def dataflow_payload(results: list[Result], level: Level) -> list[dict[str, Any]]:
    """The ``dataflow --format json`` contract: per model, its rows with raw integers."""
    return [{"model": r.model, "input": list(r.input), "level": level,
             "flag_factor": FLAG_FACTOR,
             "rows": [row.record() for row in dataflow(r, level=level)]} for r in results]
