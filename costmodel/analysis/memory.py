"""Peak memory by tensor lifetime: which feature maps a forward pass holds at once.

``Totals.peak_activation`` is the largest single feature map. A forward pass holds more: a
layer's input until the layer has run, a residual's shortcut through the main branch, a
concat's inputs until the merge. :func:`peak_memory` replays the evaluation tree
(``Result.tree``) in the order the torch builder's module runs it
(``costmodel.crosscheck.builder``), counting every tensor from the moment it is allocated to the
moment its last reference goes, as CPython and torch free it:

- ``Seq`` (an ``nn.Sequential``): children in order; the Seq's input is held by its caller for
  the whole Seq, each child's input until the child has returned.
- ``Branch`` (a ``BranchModule``): each branch runs on the input (or on a channel split's parts:
  views of the input); every branch's output stays alive until the merge has allocated its
  output; the input until the branching node returns. An empty branch is the input itself.
- Views cost nothing: flatten, channel slice, identity and eval-mode dropout, split parts.
- A conv with asymmetric 'same' padding pads into a temporary first (``PaddedConv2d``).
- Activations allocate their output (the builder's ``nn.ReLU()``); ``inplace_activations=True``
  counts them as torchvision's ``ReLU(inplace=True)``: no new tensor (for the activations
  torch can run in place, ``INPLACE_FNS``).
- The network's input counts: it is alive throughout.

Not counted: a kernel's own workspace (im2col columns of a CPU conv, oneDNN scratch), which
is the library's choice, not the network's (``costmodel.measure.memory`` measures it).

Everything is in elements (``Row.batch`` images); bytes are elements × the dtype's size.
No torch here: this runs on the analytic path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from costmodel.engine import Branch, Dag, Node, Result, Row, Seq, rows_of
from costmodel.errors import CostModelError
from costmodel.layers.aux import Aux
from costmodel.layers.conv import Conv, DepthwiseConv
from costmodel.layers.elementwise import Activation, Identity
from costmodel.layers.norm import BatchNorm
from costmodel.layers.reshape import Flatten
from costmodel.layers.slicing import ChannelSlice
from costmodel.render import Column, Table
from costmodel.shape import same_padding

Optimizer = Literal["sgd", "momentum", "adam"]
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "adam": 2}
"""Optimizer state per trainable parameter: plain SGD none, SGD with momentum one buffer,
Adam two (first and second moments)."""

VIEWS = (Flatten, ChannelSlice, Identity)
"""Layers whose torch module returns a view of its input, or the input itself (identity,
dropout in eval mode): no new tensor."""
INPLACE_FNS = frozenset({"relu", "relu6", "leaky_relu", "hswish", "hsigmoid", "swish", "silu"})
"""The activations whose torch module can run in place (``inplace=True``); sigmoid, tanh and
GELU cannot, and allocate their output even with ``inplace_activations``."""


@dataclass(frozen=True)
class Training:
    """A training step's memory, in elements: weights (and buffers), one gradient per
    trainable parameter, the optimizer's state, and the activations saved for backward."""

    optimizer: str
    gradients: int
    optimizer_state: int
    saved_activations: int


@dataclass(frozen=True)
class Memory:
    """Inference memory of one evaluated model at its batch size, in elements.

    ``peak`` is the most elements of feature maps alive at once (the network's input
    included), reached when ``peak_layer`` allocates its output; ``largest_map`` is the
    largest single feature map (``Totals.peak_activation``); ``weights`` the parameters and
    buffers (batch norm's running statistics) a forward pass reads; ``timeline`` each
    allocation in execution order: (layer path, elements alive just after it)."""

    model: str
    batch: int
    dtype: str
    dtype_bytes: int
    inplace_activations: bool
    input: int
    peak: int
    peak_layer: str
    largest_map: int
    largest_layer: str
    weights: int
    trainable: int
    timeline: tuple[tuple[str, int], ...]
    saved: int
    """Elements of the distinct tensors that some layer reads (the training rule's saved
    activations)."""

    @property
    def peak_bytes(self) -> int:
        return self.peak * self.dtype_bytes

    @property
    def weights_bytes(self) -> int:
        return self.weights * self.dtype_bytes

    @property
    def largest_map_bytes(self) -> int:
        return self.largest_map * self.dtype_bytes

    def training(self, optimizer: Optimizer = "sgd") -> Training:
        """Training estimate: gradients = trainable parameters; optimizer state = 0, 1 or 2 ×
        them (sgd, momentum, adam); saved activations = every distinct tensor a layer reads
        (each layer's input is kept for its backward; a tensor read by several layers once;
        views and identities keep nothing of their own). Weights come on top (``weights``).
        An upper-bound rule: torch saves less for some layers (an add saves nothing, a ReLU
        its output instead of its input)."""
        if optimizer not in OPTIMIZER_STATE:
            raise CostModelError(f"unknown optimizer {optimizer!r} "
                                 f"({', '.join(OPTIMIZER_STATE)})", field="optimizer")
        return Training(optimizer, self.trainable, OPTIMIZER_STATE[optimizer] * self.trainable,
                        self.saved)

    def training_total(self, optimizer: Optimizer = "sgd") -> int:
        t = self.training(optimizer)
        return self.weights + t.gradients + t.optimizer_state + t.saved_activations


# --- the replay --------------------------------------------------------------------------


class _Tensor:
    """A storage: its size and how many references hold it (views share their base's)."""

    __slots__ = ("size", "refs")

    def __init__(self, size: int):
        self.size, self.refs = size, 1


class _Replay:
    """The allocator's view of the forward pass: the elements alive, and their peak."""

    def __init__(self, inplace_activations: bool):
        self.inplace = inplace_activations
        self.alive = 0
        self.peak, self.peak_layer = 0, ""
        self.timeline: list[tuple[str, int]] = []
        # every tensor a layer read, by id (holding it keeps the ids unique)
        self.read: dict[int, _Tensor] = {}

    def alloc(self, size: int, path: str) -> _Tensor:
        t = _Tensor(size)
        self.alive += size
        self.timeline.append((path, self.alive))
        if self.alive > self.peak:
            self.peak, self.peak_layer = self.alive, path
        return t

    def hold(self, t: _Tensor) -> _Tensor:
        t.refs += 1
        return t

    def drop(self, t: _Tensor) -> None:
        t.refs -= 1
        if t.refs == 0:
            self.alive -= t.size

    def reads(self, t: _Tensor) -> None:
        self.read[id(t)] = t


# One function per node kind: each takes the replay, the node and its input (borrowed: the
# caller keeps its reference for the call) and returns its output (a reference it owns).
Walk = Callable[[_Replay, Node, _Tensor], _Tensor]


def _padded_input(row: Row) -> int:
    """Elements of the temporary a 'same'-padded conv pads into when its padding is
    asymmetric (the builder's PaddedConv2d), else 0."""
    if not isinstance(row.layer, (Conv, DepthwiseConv)):
        return 0
    x = row.inputs[0]
    kernel, stride, padding, dilation = row.layer.geometry
    if padding != "same":
        return 0
    (top, bottom), (left, right) = (same_padding(size, k, s, d) for size, k, s, d in
                                    zip((x.h, x.w), kernel, stride, dilation))
    if top == bottom and left == right:
        return 0
    return row.batch * x.c * (x.h + top + bottom) * (x.w + left + right)


def walk_row(replay: _Replay, row: Row, x: _Tensor) -> _Tensor:
    if isinstance(row.layer, VIEWS) or (replay.inplace and isinstance(row.layer, Activation)
                                        and row.layer.fn in INPLACE_FNS):
        return replay.hold(x)
    replay.reads(x)
    padded = _padded_input(row)
    if padded:
        pad = replay.alloc(padded, f"{row.path} (padding)")
        out = replay.alloc(row.activations, row.path)
        replay.drop(pad)
        return out
    return replay.alloc(row.activations, row.path)


def walk_seq(replay: _Replay, seq: Seq, x: _Tensor) -> _Tensor:
    if isinstance(seq.layer, Aux):  # training-only: not run in eval (builder.AuxModule)
        return replay.hold(x)
    current = replay.hold(x)  # nn.Sequential's `input`
    for child in seq.children:
        out = walk(replay, child, current)
        replay.drop(current)
        current = out
    return current


def _merge(replay: _Replay, merge: Row, outs: list[_Tensor]) -> _Tensor:
    """The merge's allocations (builder.MERGES): concat one output; add and multiply a
    running reduction (each step a new tensor, the previous one freed); hff the running sums,
    then their concat."""
    for t in outs:
        replay.reads(t)
    kind = merge.type
    if kind == "concat":
        return replay.alloc(merge.activations, merge.path)
    if kind == "hff":
        sums = [replay.hold(outs[0])]
        for t in outs[1:]:
            sums.append(replay.alloc(t.size, merge.path))
        out = replay.alloc(merge.activations, merge.path)
        for t in sums:
            replay.drop(t)
        return out
    acc = replay.hold(outs[0])  # add, multiply: functools.reduce
    for _ in outs[1:]:
        new = replay.alloc(merge.activations, merge.path)
        replay.drop(acc)
        acc = new
    return acc


def walk_branch(replay: _Replay, node: Branch, x: _Tensor) -> _Tensor:
    parts = [replay.hold(x) for _ in node.branches]  # the input, or views of it (a split)
    outs = [walk(replay, seq, part) for seq, part in zip(node.branches, parts)]
    out = _merge(replay, node.merge, outs)
    for t in outs + parts:
        replay.drop(t)
    return out


def walk_dag(replay: _Replay, node: Dag, x: _Tensor) -> _Tensor:
    """builder.GraphModule keeps every node's output in a dict until the graph returns (as
    torchvision's DenseNet keeps its list of features): nothing is freed before the end."""
    outputs = {"input": replay.hold(x)}
    for name, inputs, merge, seq in zip(node.names, node.inputs, node.merges, node.seqs):
        xs = [outputs[i] for i in inputs]
        y = xs[0] if merge is None else _merge(replay, merge, xs)
        outputs[name] = walk(replay, seq, y)
        if merge is not None:
            replay.drop(y)
    out = replay.hold(outputs[node.names[-1]])
    for t in outputs.values():
        replay.drop(t)
    return out


NODE_WALKS: dict[type, Walk] = {Row: walk_row, Seq: walk_seq, Branch: walk_branch,
                                Dag: walk_dag}
"""How each node kind of the evaluation tree runs; a new kind registers its walk here."""


def walk(replay: _Replay, node: Node, x: _Tensor) -> _Tensor:
    return NODE_WALKS[type(node)](replay, node, x)


def _weights(row: Row) -> tuple[int, int]:
    """(parameters and buffers, trainable parameters) of a row's module: batch norm has its
    running mean and variance besides γ/β (whatever ``bn_params`` says about counting them)."""
    if isinstance(row.layer, BatchNorm):
        c = row.inputs[0].c
        trainable = 2 * c if row.layer.affine else 0
        return trainable + 2 * c, trainable
    return row.params, row.params


def peak_memory(result: Result, inplace_activations: bool = False) -> Memory:
    """Peak inference memory of ``result`` at its batch size (``result.options.batch``)."""
    batch = result.options.batch
    h, w = result.input
    replay = _Replay(inplace_activations)
    x = replay.alloc(batch * result.in_channels * h * w, "input")
    out = walk(replay, result.tree, x)
    replay.drop(out)
    rows = list(rows_of(result.tree))
    largest = max(rows, key=lambda r: r.activations, default=None)
    weights = [_weights(r) for r in rows]
    return Memory(
        model=result.model, batch=batch, dtype=result.options.dtype,
        dtype_bytes=result.options.dtype_bytes, inplace_activations=inplace_activations,
        input=x.size, peak=replay.peak, peak_layer=replay.peak_layer,
        largest_map=result.totals.peak_activation,
        largest_layer=largest.path if largest else "",
        weights=sum(w for w, _ in weights), trainable=sum(t for _, t in weights),
        timeline=tuple(replay.timeline), saved=sum(t.size for t in replay.read.values()))


# --- outputs -----------------------------------------------------------------------------


def memory_table(memories: list[Memory], optimizer: Optimizer | None = None,
                 measured: list | None = None) -> Table:
    """One row per model: the peak by lifetime beside the largest feature map, the weights;
    with ``optimizer``, the training estimate too; with ``measured`` (one
    ``costmodel.measure.memory.MeasuredMemory`` a model), what torch's allocator held."""
    cols = [Column("model", "model"), Column("batch", "batch", "int"),
            Column("peak", "peak alive", "si"), Column("peak_bytes", "peak bytes", "si"),
            Column("peak_layer", "at layer"),
            Column("largest_map", "largest map", "si"),
            Column("largest_map_bytes", "largest map bytes", "si", drop=1),
            Column("ratio", "peak / largest", "ratio", drop=1),
            Column("weights_bytes", "weights bytes", "si"),
            Column("total_bytes", "inference bytes", "si")]
    if optimizer:
        cols.append(Column("training_bytes", f"training bytes ({optimizer})", "si"))
    if measured:
        cols += [Column("measured_tensor_peak", "measured tensors bytes", "si"),
                 Column("measured_peak", "measured total bytes", "si"),
                 Column("measured_workspace", "workspace at peak bytes", "si", drop=1)]
    notes = [_assumptions(memories[0] if memories else None)]
    if optimizer:
        notes.append(f"Training = weights + gradients + {optimizer} state "
                     f"({OPTIMIZER_STATE[optimizer]}× trainable params) + saved activations "
                     "(every distinct tensor a layer reads; an upper bound).")
    if measured:
        notes.append("Measured: one forward pass of the torch builder's module (eval, inference "
                     "mode, float32) under torch's profiler; tensors = allocations that outlive "
                     "their operator, total = with the kernels' workspace (im2col, oneDNN).")
    rows = [memory_record(m, optimizer, measured[i] if measured else None)
            for i, m in enumerate(memories)]
    return Table("Peak memory by tensor lifetime", cols, rows, notes=notes)


def _assumptions(m: Memory | None) -> str:
    dtype, size = (m.dtype, m.dtype_bytes) if m else ("float32", 4)
    activations = ("activations in place (ReLU(inplace=True))" if m and m.inplace_activations
                   else "activations allocate their output (nn.ReLU())")
    return (f"Feature maps alive at once, in {dtype} ({size} B an element), in the torch "
            f"builder's execution order; the input counts; {activations}; kernel workspace not "
            "counted. Inference bytes = peak + weights (and buffers).")


def memory_record(m: Memory, optimizer: Optimizer | None = None, measured=None) -> dict:
    rec = {"model": m.model, "batch": m.batch, "dtype": m.dtype,
           "inplace_activations": m.inplace_activations, "input": m.input,
           "peak": m.peak, "peak_bytes": m.peak_bytes, "peak_layer": m.peak_layer,
           "largest_map": m.largest_map, "largest_map_bytes": m.largest_map_bytes,
           "largest_layer": m.largest_layer,
           "ratio": m.peak / m.largest_map if m.largest_map else None,
           "weights": m.weights, "weights_bytes": m.weights_bytes,
           "total_bytes": m.peak_bytes + m.weights_bytes}
    if optimizer:
        t = m.training(optimizer)
        rec.update(optimizer=optimizer, gradients=t.gradients,
                   optimizer_state=t.optimizer_state, saved_activations=t.saved_activations,
                   training_bytes=m.training_total(optimizer) * m.dtype_bytes)
    if measured is not None:
        rec.update(measured_tensor_peak=measured.tensor_peak, measured_peak=measured.peak,
                   measured_workspace=measured.workspace, measured_peak_op=measured.peak_op)
    return rec
