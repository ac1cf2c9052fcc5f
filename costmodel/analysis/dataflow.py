"""Data flow through a network: EffNet's Table 1.

For each stage (or block, or shape-changing layer) the tensor that flows out of it, H×W×C, and
the compression factor from its input to its output, elements in / elements out. EffNet
(Freeman et al. 2018, §4.1) argues that small networks are very sensitive to data compression
and marks factors of 4 or more in red; so does this module (``FLAG_FACTOR``).

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
from costmodel.engine import Branch, Node, Result, Row, Seq
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


@dataclass(frozen=True)
class FlowRow:
    """One step of the data flow: what flows in and out of a stage, block or layer.

    ``index`` is the stage's position (0 for the input row) and ``sub`` the row's position in
    its stage; together they align the rows of several models."""

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
                "output": self.output.as_list(), "input_hwc": hwc(self.input),
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
    if isinstance(node, Branch):
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
                f"{FLAG_FACTOR} or more are marked, as in EffNet's Table 1 (the classifier head "
                f"is not marked)")


_NOTE_STAGES = ("stages: the spec's `stage` nodes; elsewhere a new stage starts at each spatial "
                "downsampling")


def _single_table(result: Result, rows: list[FlowRow], level: str) -> Table:
    cols = [Column("stage", "stage"), Column("label", level),
            Column("ops", "operators"), Column("input_hwc", "in H×W×C"),
            Column("output_hwc", "out H×W×C"), Column("elements_out", "elements", "int"),
            Column("factor", "in/out", "ratio")]
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
                 cols, records, notes=[_NOTE_FACTOR, _NOTE_STAGES], marks=marks)


def _key(r: FlowRow) -> tuple[int, int]:
    return (r.index, r.sub)


def dataflow_table(results: list[Result], per_block: bool = False, *,
                   level: Level | None = None) -> Table:
    """EffNet's Table 1 as a Table. One model: its rows with operators, shapes and factors.
    Several: side by side, one shape column and one factor column per model, rows aligned by
    stage (and by position within the stage)."""
    level = level or ("block" if per_block else "stage")
    per_model = [dataflow(r, level=level) for r in results]
    if len(results) == 1:
        return _single_table(results[0], per_model[0], level)
    keys = sorted({_key(r) for rows in per_model for r in rows})
    by_key = [{_key(r): r for r in rows} for rows in per_model]
    cols = [Column("stage", "stage")]
    names = [r.model for r in results]
    if len(set(names)) < len(names):  # the same model twice (e.g. two inputs): number them
        names = [f"{n} #{i + 1}" for i, n in enumerate(names)]
    for j, name in enumerate(names):
        cols += [Column(f"m{j}_hwc", f"{name}"), Column(f"m{j}_factor", "in/out", "ratio")]
    records, marks = [], set()
    for i, key in enumerate(keys):
        present = [m[key] for m in by_key if key in m]
        label = " / ".join(dict.fromkeys(r.stage if level != "stage" or key[0] == 0
                                         else r.label for r in present))
        if level != "stage" and key[0] > 0:
            label += f" ({key[1] + 1})"
        rec: dict[str, Any] = {"stage": label}
        for j, m in enumerate(by_key):
            r = m.get(key)
            if r is None:
                continue
            f = r.factor
            rec[f"m{j}_hwc"] = f"{r.ops}: {hwc(r.output)}" if level != "stage" and r.index \
                else hwc(r.output)
            rec[f"m{j}_factor"] = float(f) if f is not None else None
            if r.flagged:
                marks.add((i, f"m{j}_factor"))
        records.append(rec)
    first = results[0]
    h, w = first.input
    inputs = {r.input for r in results}
    size = f"{h}×{w} input" if len(inputs) == 1 else "inputs " + ", ".join(
        "×".join(map(str, r.input)) for r in results)
    return Table(f"Data flow per {level} — {', '.join(r.model for r in results)} ({size})",
                 cols, records, notes=[_NOTE_FACTOR, _NOTE_STAGES,
                                       "columns show the tensor leaving each step (H×W×C)"],
                 marks=marks)


def dataflow_payload(results: list[Result], level: Level) -> list[dict[str, Any]]:
    """The ``dataflow --format json`` contract: per model, its rows with raw integers."""
    return [{"model": r.model, "input": list(r.input), "level": level,
             "flag_factor": FLAG_FACTOR,
             "rows": [row.record() for row in dataflow(r, level=level)]} for r in results]
