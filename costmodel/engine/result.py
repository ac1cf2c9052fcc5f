"""The result of an evaluation: per-layer rows in execution order, the tree they form (the
spec's blocks and branches), and the totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Iterator, NamedTuple, Union

from costmodel.layers import LayerSpec
from costmodel.options import Options
from costmodel.shape import Shape

CATEGORY_LABELS = {
    "conv1x1": "Conv 1×1",
    "depthwise": "Conv DW",
    "conv": "Conv k×k",
    "fc": "Fully connected",
    "bn": "BatchNorm",
    "activation": "Activation",
    "other": "Other",
}
"""MobileNet Table 2's groups first, then the layers that hold no multiply-adds."""



class Row(NamedTuple):
    """One primitive layer of the evaluated network.

    A NamedTuple rather than a frozen dataclass: just as immutable, and several times cheaper
    to make (a network makes one per layer, on every evaluation). Equality and hashing leave
    out ``layer``, the spec object the row came from, ``batch`` and ``training_only``.

    ``training_only``: a layer of an ``aux`` block (an auxiliary classifier that runs only in
    training): its flops, mac and activations are 0 (inference), its params count."""

    path: str
    type: str
    category: str
    stage: str | None
    inputs: tuple[Shape, ...]
    out: Shape
    flops: int
    params: int
    mac: int
    layer: LayerSpec | None = None
    batch: int = 1
    training_only: bool = False

    @property
    def activations(self) -> int:
        """The elements of its output, for the whole batch (0 for a training-only row: it
        does not run at inference)."""
        return 0 if self.training_only else self.out.numel * self.batch

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and self[:9] == other[:9]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self[:9])

    def __repr__(self) -> str:
        return ("Row(" + ", ".join(f"{n}={v!r}" for n, v in zip(self._fields[:9], self))
                + ")")


_row = partial(tuple.__new__, Row)
"""Row from a tuple of its twelve fields (all of them: defaults are not filled in), without NamedTuple's Python-level ``__new__`` (a third
of what making a row costs; the walker makes one per layer per evaluation)."""


@dataclass(frozen=True, slots=True)
class Totals:
    flops: int
    params: int
    mac: int
    peak_activation: int


@dataclass(frozen=True)
class Result:
    """A model evaluated at one input size: rows in execution order, and their totals."""

    model: str
    input: tuple[int, int]
    in_channels: int
    num_classes: int
    width: float
    depth: float
    options: Options
    rows: tuple[Row, ...]
    tree: "Seq | None" = field(repr=False, compare=False)
    totals: Totals
    output: Shape
    aux_params: int = 0
    """The training-only params (``aux`` blocks), included in ``totals.params``."""

    @property
    def unknown(self) -> tuple[Row, ...]:
        """The layers of unknown cost (``type: unknown``, from an import with unknown ops
        allowed): the totals exclude their cost, which every output should say."""
        return tuple(r for r in self.rows if r.type == "unknown")

    def by_category(self) -> dict[str, Totals]:
        """Totals per MobileNet-Table-2 category, in CATEGORY_LABELS order."""
        groups: dict[str, list[Row]] = {c: [] for c in CATEGORY_LABELS}
        for r in self.rows:
            groups.setdefault(r.category, []).append(r)
        return {c: Totals(sum(r.flops for r in rs), sum(r.params for r in rs),
                          sum(r.mac for r in rs), max((r.activations for r in rs), default=0))
                for c, rs in groups.items() if rs}

    def to_dataframe(self):
        """The rows as a pandas DataFrame (pandas is imported here, not at start-up)."""
        import pandas as pd

        return pd.DataFrame([{
            "path": r.path, "type": r.type, "category": r.category, "stage": r.stage,
            "input": " + ".join(map(str, r.inputs)), "output": str(r.out),
            "flops": r.flops, "params": r.params, "mac": r.mac, "activations": r.activations,
        } for r in self.rows])


@dataclass(frozen=True, slots=True)
class Seq:
    """Layers applied in order: the model's layer list, or what a block expanded into.

    ``layer`` is the block (sequential, stage, repeat, or a composite block) that produced it;
    None for the model itself (path '')."""

    path: str
    children: tuple["Node", ...]
    layer: LayerSpec | None = field(default=None, compare=False, repr=False)

    @property
    def is_stage(self) -> bool:
        return bool(self.layer is not None and getattr(self.layer, "stage", False))


@dataclass(frozen=True, slots=True)
class Branch:
    """A branching node: ``split`` (a channel_split row, or None) feeds the branches, whose
    outputs ``merge`` (a concat/add/multiply row) joins. An empty branch is the identity."""

    path: str
    names: tuple[str, ...]
    branches: tuple[Seq, ...]
    merge: Row
    split: Row | None
    layer: LayerSpec = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Dag:
    """A ``graph`` node: named nodes, each with its inputs (names of earlier nodes, or
    ``input``), the merge row that joins them (None for one input) and its layers (a Seq at
    ``<path>.<name>``). Its output is its last node's (``Graph`` checks that every node is
    used, so the last one is the output)."""

    path: str
    names: tuple[str, ...]
    inputs: tuple[tuple[str, ...], ...]
    merges: tuple[Row | None, ...]
    seqs: tuple[Seq, ...]
    layer: LayerSpec = field(compare=False, repr=False)

    @property
    def branches(self) -> tuple[Seq, ...]:
        """Its nodes' layers (as a branching node's branches, for readers of both)."""
        return self.seqs

    @property
    def out(self) -> Shape:
        """Its output: its last node's (that node's last row, or its merge row)."""
        last = None
        for last in rows_of(self.seqs[-1]):
            pass
        return (last or self.merges[-1]).out


Node = Union[Row, Seq, Branch, Dag]
"""The evaluated network as a tree whose leaves are the rows; the torch builder walks it."""


# --- the walks over the tree (every reader of the tree uses these) ------------------------


def rows_of(node: Node) -> Iterator[Row]:
    """The rows under ``node``, in execution order (a branching node's split, its branches,
    its merge; a graph's nodes in order, each node's merge before its layers): the rows of ``result.tree`` are ``result.rows``."""
    if type(node) is Row:
        yield node
    elif type(node) is Seq:
        for child in node.children:
            yield from rows_of(child)
    elif type(node) is Dag:
        for merge, seq in zip(node.merges, node.seqs):
            if merge is not None:
                yield merge
            yield from rows_of(seq)
    else:
        if node.split is not None:
            yield node.split
        for seq in node.branches:
            yield from rows_of(seq)
        yield node.merge


def nodes(node: Node, *, ends: bool = True) -> Iterator[Node]:
    """Every node under ``node``, itself first, in execution order: a block (Seq) or a
    branching node (Branch, Dag) before what it holds. ``ends=False`` leaves out the split and
    merge rows of branching nodes (parts of their node: one torch module, one check)."""
    yield node
    if type(node) is Seq:
        for child in node.children:
            yield from nodes(child, ends=ends)
    elif type(node) is Branch:
        if ends and node.split is not None:
            yield node.split
        for seq in node.branches:
            yield from nodes(seq, ends=ends)
        if ends:
            yield node.merge
    elif type(node) is Dag:
        for merge, seq in zip(node.merges, node.seqs):
            if ends and merge is not None:
                yield merge
            yield from nodes(seq, ends=ends)


def name_of(path: str) -> str:
    """The last segment of a layer path (its module name)."""
    return path.rsplit(".", 1)[-1]
