"""A traced module as a DAG of ops the spec language can say: layers (one input, a spec
layer's fields), merges (add / concat / multiply), channel splits and their parts.

torch.fx traces the module symbolically, stopping at the modules ``TORCH_READERS`` can read
(and at torch.nn's own, which it does not trace into); ShapeProp runs it once at the input
size to give every value its shape. Function and method calls map through ``FUNCTIONS``
(``costmodel.capture.ops``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from costmodel.crosscheck.builder import reader_for
from costmodel.errors import CostModelError
from costmodel.shape import Shape


@dataclass
class Op:
    """One op of the DAG. ``kind``: input, layer, merge, split, part. ``inputs`` are op ids;
    ``scope`` is the module path the op runs in ('' for the model's own forward), ``name``
    its name there (a leaf module's attribute name, or the fx node's name)."""

    id: int
    kind: str
    inputs: list[int]
    out: Shape | None
    scope: str = ""
    name: str = ""
    layer: dict | None = None  # layer: the spec fields
    merge: str | None = None  # merge: add, concat, multiply
    sizes: list[int] | None = None  # split: channel counts
    index: int = 0  # part: which part of its split
    where: str = ""  # the module path or op, for messages
    module: bool = False  # a leaf module's call (``where`` is its path), not a function's
    last: bool = False  # its torch value is N×H×W×C (after a permute to channels-last)
    sub_paths: dict[str, str] | None = None  # aux: its rows' module paths, relative
    users: list[int] = field(default_factory=list)


class Unmapped(CostModelError):
    """An op the importer cannot say in the spec language."""


@dataclass
class Pending:
    """A value in the middle of a multi-op pattern (the view → transpose → view of a channel
    shuffle): it becomes a layer when the pattern completes, an error otherwise."""

    source: int  # the op whose output it reshapes
    groups: int
    transposed: bool = False


@dataclass
class Packed:
    """The (output, weights) pair nn.MultiheadAttention returns: ``[0]`` is the op ``out``,
    ``[1]`` no tensor (``need_weights=False``)."""

    out: int


NONTENSOR = object()
"""The value of a node that is no tensor (x.size(0), a shape): it can feed view/reshape only."""


# --- which modules are leaves, and how one is read --------------------------------------

class LeafTracer(fx.Tracer):
    """Stops at every module a reader knows, and at torch.nn's own modules (whose forward
    fx would not trace anyway): those without a reader become an error naming them."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return reader_for(m) is not None or super().is_leaf_module(m, qualname)


# --- the DAG ---------------------------------------------------------------------------------


def _shape(meta: Any, where: str, last: bool = False) -> Shape:
    """The spec shape of a torch value; ``last``: an N×H×W×C value (channels-last), whose
    spec shape stays C×H×W."""
    if meta is None or not hasattr(meta, "shape"):
        raise Unmapped(f"{where} does not return one tensor")
    dims = list(meta.shape)[1:]  # per sample
    if len(dims) == 3:
        return Shape(dims[2], dims[0], dims[1]) if last else Shape(*dims)
    if len(dims) == 2:  # a sequence of L tokens: N×L×D channels-last, N×D×L before (ViT)
        return Shape(dims[1], dims[0], 1) if last else Shape(dims[0], dims[1], 1)
    if len(dims) == 1:
        return Shape(dims[0], 1, 1, flat=True)
    raise Unmapped(f"{where} makes a {len(dims) + 1}-D tensor {tuple(meta.shape)}; the spec "
                   "language has N×C×H×W maps, N×L×D token sequences and N×F vectors")


class Dag:
    """The ops of a traced module, in execution order (``ops[i].id == i``)."""

    def __init__(self, unknown: str):
        self.ops: list[Op] = []
        self.unknown = unknown
        self.unknowns: list[str] = []
        self.notes: list[str] = []

    def add(self, kind: str, inputs: list[int], out: Shape | None, **fields) -> int:
        op = Op(len(self.ops), kind, list(inputs), out, **fields)
        self.ops.append(op)
        for i in dict.fromkeys(inputs):
            self.ops[i].users.append(op.id)
        return op.id

    def ancestors(self, end: int) -> set[int]:
        """The ops value ``end`` depends on, itself included."""
        found, todo = set(), [end]
        while todo:
            i = todo.pop()
            if i not in found:
                found.add(i)
                todo.extend(self.ops[i].inputs)
        return found

    def unmapped(self, what: str, path: str, inputs: list[int], out: Shape | None,
                 scope: str, name: str, module: bool = False) -> int:
        """An op with no spec layer: an error naming it and its module path, or (unknown:
        allow) a ``type: unknown`` layer, listed."""
        where = f"{what} at '{path or '(model)'}'"
        if self.unknown != "allow" or len(inputs) != 1 or out is None:
            why = "" if self.unknown != "allow" or len(inputs) == 1 else \
                f" (it takes {len(inputs)} tensors: an unknown layer takes one)"
            raise Unmapped(f"cannot map {what} to a spec layer{why}; pass unknown='allow' "
                           "(--allow-unknown) to keep it as a layer of unknown cost", path=path)
        self.unknowns.append(where)
        return self.add("layer", inputs, out, scope=scope, name=name, where=path,
                        module=module,
                        layer={"type": "unknown", "op": what, "out": out.as_list()})


def _scope(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


AuxReader = Callable[[nn.Module, Shape, str], tuple[list[dict], dict[str, str]]]
"""Imports a training-only module at its input shape: (its layers, its rows' module paths)."""


def trace(module: nn.Module, x: torch.Tensor, unknown: str,
          aux: AuxReader | None = None) -> tuple[Dag, int]:
    """The module's DAG at input ``x``, and the op its output is. With ``aux``, modules the
    trace does not reach become ``aux`` layers where a training-mode trace shows they tap
    the main path (``costmodel.capture.aux``)."""
    from costmodel.capture.aux import taps, unreached
    from costmodel.capture.ops import map_call  # the function table

    try:
        graph = LeafTracer().trace(module)
    except Exception as e:  # fx raises many kinds (TraceError, TypeError on control flow…)
        raise CostModelError(f"torch.fx cannot trace {type(module).__name__}: "
                             f"{type(e).__name__}: {e}") from None
    missing = unreached(module, graph) if aux is not None else []
    tapped = taps(module, missing, LeafTracer) if missing else {}
    gm = fx.GraphModule(module, graph)
    # one real forward pass for the shapes: ShapeProp's fake-tensor mode would skip the
    # arithmetic, but its first use in a process costs ~10 s of set-up (measured, torch 2.13)
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(x)
    except Exception as e:  # the user's module fails at this size: their error, said as such
        cause = e.__cause__ or e  # ShapeProp wraps the module's own error
        raise CostModelError(f"{type(module).__name__} fails on a "
                             f"{'×'.join(map(str, x.shape))} input: {type(cause).__name__}: "
                             f"{str(cause).splitlines()[0] if str(cause) else ''}") from None
    dag, env = Dag(unknown), {}
    out = None
    for node in graph.nodes:
        meta = node.meta.get("tensor_meta")
        if node.op == "placeholder":
            if env:
                raise CostModelError(f"{type(module).__name__}.forward takes more than one "
                                     "input")
            env[node] = dag.add("input", [], _shape(meta, "the input"), where="input")
        elif node.op == "get_attr":
            env[node] = NONTENSOR  # a parameter or buffer used directly: refused where used
        elif node.op == "call_module":
            env[node] = _call_module(dag, gm, node, env, meta)
        elif node.op in ("call_function", "call_method"):
            env[node] = map_call(dag, node, env, meta, _scope(node))
        if node.name in tapped and isinstance(env.get(node), int) and \
                tapped[node.name][:2] == (node.op, node.target):
            for path in tapped[node.name][2]:
                env[node] = _add_aux(dag, env[node], module, path, aux)
                missing.remove(path)
        if node.op == "output":
            out = env.get(node.args[0]) if isinstance(node.args[0], fx.Node) else None
            if not isinstance(out, int):
                raise Unmapped("the module's output is not one tensor")
    if missing:
        sizes = [sum(p.numel() for p in module.get_submodule(m).parameters()) for m in missing]
        dag.notes.append("parameters of modules the trace never calls are not counted: "
                         + ", ".join(f"{m} ({n:,})" for m, n in zip(missing, sizes)))
    _no_dead_ops(dag, out)
    return dag, out


def _add_aux(dag: Dag, at: int, model: nn.Module, path: str, aux: AuxReader) -> int:
    """An ``aux`` layer on value ``at`` holding the import of the training-only module
    ``path``; the main path goes on from it unchanged."""
    x = dag.ops[at].out
    if x.flat or dag.ops[at].last:
        raise Unmapped(f"training-only module '{path}' taps a {x} value; an aux branch taps "
                       "a channels-first map", path=path)
    layers, sub_paths = aux(model.get_submodule(path), x, path)
    scope, _, name = path.rpartition(".")
    return dag.add("layer", [at], x, scope=scope, name=name, where=path, module=True,
                   layer={"type": "aux", "layers": layers}, sub_paths=sub_paths)


def _call_module(dag: Dag, gm: fx.GraphModule, node: fx.Node, env: dict, meta: Any) -> int:
    path = str(node.target)
    scope, _, name = path.rpartition(".")
    sub = gm.get_submodule(path)
    ins = [env[a] for a in node.args if isinstance(a, fx.Node)]
    if isinstance(sub, nn.MultiheadAttention):
        return Packed(_self_attention(dag, sub, node, ins, path, scope, name))
    if len(ins) != 1 or not isinstance(ins[0], int) or node.kwargs:
        how = "on a parameter or buffer, not on a value of the input" if ins == [NONTENSOR] \
            else f"with {len(node.args)} arguments"
        raise Unmapped(f"module {type(sub).__name__} is called {how}; a layer takes one "
                       "tensor", path=path)
    last = dag.ops[ins[0]].last
    out = _shape(meta, f"module {type(sub).__name__} at '{path}'", last)
    read = reader_for(sub)
    if read is None:
        return dag.unmapped(f"module {type(sub).__name__}", path, ins, out, scope, name,
                            module=True)
    x = dag.ops[ins[0]].out
    try:
        if last:
            fields = _read_channels_last(sub, read, x, path)
        else:
            fields = read(sub, x)
    except CostModelError as e:
        e.path = path
        raise
    if fields["type"] == "permute":  # the value after it is (or is no longer) channels-last
        if (fields["to"] == "channels_last") == last:
            raise Unmapped(f"module {type(sub).__name__} permutes a value that is "
                           f"{'already' if last else 'not'} channels-last", path=path)
        last = not last
        out = _shape(meta, f"module {type(sub).__name__} at '{path}'", last)
    elif last and out.flat:  # a token selected (ViT's x[:, 0]): a vector has no layout
        last = False
    return dag.add("layer", ins, out, scope=scope, name=name, layer=fields, where=path,
                   module=True, last=last)


def _self_attention(dag: Dag, sub: nn.MultiheadAttention, node: fx.Node, ins: list,
                    path: str, scope: str, name: str) -> int:
    """``attn(x, x, x, need_weights=False)`` on an N×L×D sequence (torchvision's ViT
    EncoderBlock): the ``attention`` block, its output the input's shape."""
    kwargs = {k: v for k, v in node.kwargs.items() if v is not None}
    if len(ins) != 3 or len(set(map(id, node.args))) != 1 or not isinstance(ins[0], int) \
            or kwargs.get("need_weights", True) or set(kwargs) - {"need_weights"}:
        raise Unmapped("nn.MultiheadAttention is known as self-attention only: attn(x, x, x, "
                       "need_weights=False), no mask", path=path)
    x = dag.ops[ins[0]]
    if not sub.batch_first or not x.last or x.out.w != 1:
        raise Unmapped("nn.MultiheadAttention is known on a batch-first N×L×D token sequence "
                       "(batch_first=True, after a permute to channels-last)", path=path)
    try:
        fields = reader_for(sub)(sub, x.out)
    except CostModelError as e:
        e.path = path
        raise
    return dag.add("layer", ins[:1], x.out, scope=scope, name=name, layer=fields, where=path,
                   module=True, last=True)


def _read_channels_last(sub: nn.Module, read: Callable, x: Shape, path: str) -> dict:
    """A module on an N×H×W×C value (between permutes): nn.Linear and nn.LayerNorm act on
    each position's C values (read as on a vector of C, then ``channels_last: true``); an
    element-wise module is read as usual; anything else is refused."""
    from costmodel.crosscheck.classic_cnn import LayerNorm2d

    if isinstance(sub, (nn.Linear, nn.LayerNorm)) and not isinstance(sub, LayerNorm2d):
        return {**read(sub, Shape(x.c, 1, 1, flat=True)), "channels_last": True}
    fields = read(sub, x)
    if not (elementwise(fields["type"]) or fields["type"] == "permute"
            or _runs_channels_last(fields["type"])):
        raise Unmapped(f"module {type(sub).__name__} on a channels-last (N×H×W×C) tensor: "
                       "only linear, layer norm, element-wise layers and the token and "
                       "attention layers run between permutes", path=path)
    return fields


def _runs_channels_last(layer_type: str) -> bool:
    """Whether a layer type's torch module runs on N×H×W×C (its ``runs_channels_last``)."""
    from costmodel.layers import type_names

    return bool(getattr(type_names().get(layer_type), "runs_channels_last", False))


def elementwise(layer_type: str) -> bool:
    """Whether a layer type acts on each element alone (so also on a channels-last value)."""
    from costmodel.layers import type_names
    from costmodel.layers.elementwise import Activation, Identity

    cls = type_names().get(layer_type)  # identity's tags include dropout
    return cls is not None and issubclass(cls, (Activation, Identity)) or \
        layer_type == "stochastic_depth"


def _no_dead_ops(dag: Dag, out: int) -> None:
    """Every op must lead to the output: fvcore counts an op whose value is unused, a spec
    cannot say one."""
    live = dag.ancestors(out)
    for op in dag.ops:
        if op.id not in live and op.kind in ("layer", "merge"):
            raise Unmapped(f"{op.where or op.name} computes a value the output does not use; "
                           "a spec cannot say that", path=op.where or None)
        if op.id not in live:
            for i in op.inputs:  # an unused part of a split: not a user
                dag.ops[i].users = [u for u in dag.ops[i].users if u != op.id]


__all__ = ["Dag", "Op", "NONTENSOR", "Pending", "Unmapped", "reader_for", "trace"]
