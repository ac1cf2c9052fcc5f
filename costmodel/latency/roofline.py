"""Predicted latency of a layer and of a network, from a profile (no torch).

Each row belongs to one operator class (``op_class``: a dense k×k conv, a 1×1 conv, a grouped
conv, a depthwise conv, a transposed conv, a matrix product, batch norm, layer or group norm,
a piecewise-linear activation, an activation with exp or division, pooling, global pooling, a
merge, a data movement, a view), and costs, roofline-style,

    t = overhead_c + max(work / F_c, bytes / B_c) + large / L_c    (profile ``combine: max``)
    t = overhead_c + work / F_c + bytes / B_c + large / L_c        (``combine: sum``)

work is the row's multiply-adds (its FLOPs over the options' FLOPs per multiply-add; only the
conv and linear classes have them, whatever the scope) or, for windowed pooling, the elements
its windows read (outputs × kh·kw); bytes its MAC × the profile's dtype size; large the bytes of
its output and input tensors that are each at least the profile's ``large_tensor_bytes`` (none
for a view): an output that large is allocated fresh from the operating system on every pass,
its pages faulted in and zeroed as it is written, and an input that large was evicted from the
cache by the layers since — measured here, a relu writing a fresh 32 MiB output ran at 2 GB/s
where a 4 MiB one ran at 15, and ESPNet's 131→25 3×3 conv on a 17 MiB input took 2.4× as long
inside the network as alone. A network's latency is the sum over its rows: torch runs the
layers one after another (eval mode fuses nothing, so a batch norm after a conv costs its own
pass over the map). Each block below the network (a Seq of the tree: a stage, a block, a
branch) is one more module call: the ``container`` class's overhead, counted on the block's
first row (an empty branch, the identity shortcut, on the merge that follows it).
"""

from __future__ import annotations

import typing
from typing import Iterable, NamedTuple

from costmodel.latency.profile import Profile
from costmodel.layers.merge import MergeKind

_MERGES = frozenset(typing.get_args(MergeKind))
_KINDS = {"linear": "linear", "normalization": "bn", "elementwise": "activation",
          "pooling": "pool", "data_movement": "data_movement"}
_MADD_CLASSES = frozenset(("conv", "conv1x1", "grouped_conv", "depthwise", "deconv", "linear"))


_DECLARING: dict[type, bool] = {}


def _declares(cls: type) -> bool:
    """Whether a layer class overrides ``latency_class`` (kept per class: a sweep asks 10⁴
    times a second, and most classes leave it to their operator)."""
    known = _DECLARING.get(cls)
    if known is None:
        from costmodel.layers.base import Primitive

        own = getattr(cls, "latency_class", None)
        known = _DECLARING[cls] = own is not None and own is not Primitive.latency_class
    return known


def op_class(row) -> str:
    """The operator class a row is timed as (one of ``costmodel.latency.profile.CLASSES``):
    the layer's own ``latency_class()`` where it declares one, else its operator's."""
    if row.type in _MERGES:
        return "merge"
    layer = row.layer
    if _declares(type(layer)) and (c := layer.latency_class()) is not None:
        return c
    kind = getattr(type(layer), "operator", None)
    if kind == "conv":
        if row.category == "depthwise":
            return "depthwise"
        if getattr(layer, "groups", 1) > 1:
            return "grouped_conv"
        return "conv1x1" if row.category == "conv1x1" else "conv"
    if kind == "linear" and not row.inputs[0].flat and row.inputs[0].hw > 1:
        # a product at each of H·W positions (a channels-last linear, attention's products of
        # tokens): the GEMM of a 1×1 conv, not the thin one of a classifier on a vector
        return "conv1x1"
    return _KINDS.get(kind, "view")  # a view, an identity, a channel split: no copy


class Work(NamedTuple):
    """What a row's predicted time is made of (see the module's docstring)."""

    cls: str
    madds: float
    """Multiply-adds (conv and linear classes) or window reads (windowed pooling)."""
    nbytes: float
    """MAC × the dtype's size."""
    large: float = 0.0
    """The bytes of its tensors that are large (``large_bytes``)."""


def tensor_bytes(row, dtype_bytes: int = 4) -> tuple[float, ...]:
    """The bytes of a row's output and of each of its inputs (none for a view: it moves
    nothing)."""
    if op_class(row) == "view":
        return ()
    return (float(row.out.numel * dtype_bytes), *(float(t.numel * dtype_bytes)
                                                  for t in row.inputs))


def large_bytes(tensors: tuple[float, ...], threshold: float | None) -> float:
    """Σ of the tensors' bytes, of those of at least ``threshold`` bytes (0 without one)."""
    return sum(b for b in tensors if b >= threshold) if threshold else 0.0


def features(row, flops_per_madd: int = 1, dtype_bytes: int = 4,
             large_tensor_bytes: int | None = None) -> Work:
    """The Work of a row (its large bytes from ``large_tensor_bytes``; 0 without)."""
    c = op_class(row)
    if c in _MADD_CLASSES:
        madds = row.flops / flops_per_madd
    elif c == "pool" and hasattr(row.layer, "window"):
        madds = float(row.out.numel * row.layer.window())
    else:
        madds = 0.0
    large = 0
    if large_tensor_bytes and c != "view":
        # large_bytes(tensor_bytes(row)), unrolled: a latency sweep predicts 10⁵ rows a second
        limit = large_tensor_bytes / dtype_bytes
        n = row.out.numel
        if n >= limit:
            large = n
        for t in row.inputs:
            n = t.numel
            if n >= limit:
                large += n
    return Work(c, madds, float(row.mac * dtype_bytes), float(large * dtype_bytes))


def seconds(work: Work, profile: Profile) -> float:
    """Predicted seconds of one layer (0 for a class the profile lacks)."""
    fit = profile.classes.get(work.cls)
    if fit is None:
        return 0.0
    compute = work.madds / (fit.gmadds_per_s * 1e9) if fit.gmadds_per_s else 0.0
    memory = work.nbytes / (fit.gbytes_per_s * 1e9) if fit.gbytes_per_s else 0.0
    t = max(compute, memory) if profile.combine == "max" else compute + memory
    if fit.large_gbytes_per_s and work.large:
        t += work.large / (fit.large_gbytes_per_s * 1e9)
    return fit.overhead_us * 1e-6 + t


def _bytes_per_element(profile: Profile) -> int:
    from costmodel.options import DTYPE_BYTES

    return DTYPE_BYTES[profile.dtype]


def row_seconds(rows: Iterable, profile: Profile, flops_per_madd: int = 1) -> list[float]:
    """Predicted seconds of each row; 0 for a training-only row (an aux block's layers are
    not run at inference)."""
    size, large = _bytes_per_element(profile), profile.large_tensor_bytes
    return [0.0 if getattr(r, "training_only", False)
            else seconds(features(r, flops_per_madd, size, large), profile) for r in rows]


def _containers(tree) -> dict[int, int]:
    """How many block modules each row opens: id(row) → count. The root is not counted: the
    microbenchmarks' own root module is in every class's overhead."""
    from costmodel.engine.result import Branch, Dag, Seq
    from costmodel.layers.aux import Aux

    opens: dict[int, int] = {}

    def walk(node, pending: int) -> int:
        """Walk ``node`` with ``pending`` blocks waiting for their first row; returns how many
        still wait (the node was an empty block)."""
        if type(node) is Seq and isinstance(node.layer, Aux):
            return pending  # not run at inference
        if type(node) is Dag:  # the graph's module, then per node its merge (if any), its layers
            pending += 1
            for merge, seq in zip(node.merges, node.seqs):
                if merge is not None:
                    pending = walk(merge, pending)
                pending = walk(seq, pending)
            return pending
        if type(node) is Seq:
            pending += 1
            for child in node.children:
                pending = walk(child, pending)
            return pending
        if type(node) is Branch:
            if node.split is not None:
                pending = walk(node.split, pending)
            for seq in node.branches:
                pending = walk(seq, pending)
            return walk(node.merge, pending)
        if pending:
            opens[id(node)] = opens.get(id(node), 0) + pending
        return 0

    if tree is not None:
        pending = 0
        for child in tree.children:
            pending = walk(child, pending)
    return opens


def predict(result, profile: Profile) -> tuple[list[float], float]:
    """(seconds per row, total seconds) of an evaluated network (``Result`` with rows)."""
    per_row = row_seconds(result.rows, profile, result.options.flops_per_madd)
    container = profile.classes.get("container")
    if container is not None and container.overhead_us:
        opens = _containers(result.tree)
        per_row = [s + opens.get(id(r), 0) * container.overhead_us * 1e-6
                   for s, r in zip(per_row, result.rows)]
    return per_row, sum(per_row)
