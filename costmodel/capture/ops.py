"""Function and method calls → spec layers, merges and splits: the importer's one table of
them (modules are read by ``costmodel.crosscheck.builder.TORCH_READERS``).

Each entry of ``FUNCTIONS`` takes a :class:`Call` and returns an op id (a layer, merge, split
or part it added), the id of an input (a no-op: ``contiguous``, dropout in eval mode), a
:class:`Pending` step of a pattern, or ``NONTENSOR``; None means it cannot map the call.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F

from costmodel.capture.graph import (NONTENSOR, Dag, Packed, Pending, Unmapped, _runs_channels_last,
                                     _shape, elementwise)
from costmodel.errors import CostModelError
from costmodel.shape import Shape, pair


@dataclass
class Call:
    dag: Dag
    node: fx.Node
    env: dict
    meta: Any
    scope: str

    def value(self, a: Any) -> Any:
        return self.env[a] if isinstance(a, fx.Node) else a

    def arg(self, i: int, name: str, default: Any = None) -> Any:
        """Positional argument i or keyword ``name`` (after the tensor the call is on)."""
        if i < len(self.node.args):
            return self.value(self.node.args[i])
        return self.value(self.node.kwargs.get(name, default))

    @property
    def tensors(self) -> list[int]:
        """The op ids of the tensors among the arguments, in order."""
        return [v for v in self.values() if isinstance(v, int) and not isinstance(v, bool)]

    def values(self) -> list[Any]:
        return [self.env[a] for a in _leaves(self.node.args)
                + _leaves(list(self.node.kwargs.values()))]

    @property
    def what(self) -> str:
        t = self.node.target
        if self.node.op == "call_method":
            return f"Tensor.{t}"
        return getattr(t, "__module__", "") + "." + getattr(t, "__name__", str(t))

    @property
    def last(self) -> bool:
        """Whether a tensor argument is channels-last (N×H×W×C, after a permute)."""
        return any(self.dag.ops[t].last for t in self.tensors)

    def out(self) -> Shape:
        return _shape(self.meta, self.what, self.last)

    def x(self) -> Shape:
        return self.dag.ops[self.tensors[0]].out

    def layer(self, fields: dict, last: bool | None = None, name: str | None = None) -> int:
        """A layer on the first tensor argument, named ``name`` (else the fx node's name)."""
        last = self.last if last is None else last
        return self.dag.add("layer", self.tensors[:1], _shape(self.meta, self.what, last),
                            scope=self.scope, name=name or self.node.name, layer=fields,
                            where=self._path(), last=last)

    def _path(self) -> str:
        return f"{self.scope}.{self.node.name}" if self.scope else self.node.name


def _leaves(args: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(args, lambda n: found.append(n) or n)
    return found


# --- the entries --------------------------------------------------------------------------


def _activation(kind: str) -> Callable[[Call], int]:
    return lambda c: c.layer({"type": kind})


def _leaky(c: Call) -> int:
    return c.layer({"type": "leaky_relu", "negative_slope": c.arg(1, "negative_slope", 0.01)})


def _gelu(c: Call) -> int | None:
    return c.layer({"type": "gelu"}) if c.arg(1, "approximate", "none") == "none" else None


def _merge(kind: str) -> Callable[[Call], int | None]:
    def merge(c: Call) -> int | None:
        ts = c.tensors
        others = [a for a in _leaves(c.node.args) if not isinstance(c.env[a], int)]
        if len(ts) < 2 or others or any(not isinstance(a, fx.Node) for a in c.node.args[:2]):
            return None  # a tensor with a number or a parameter: no merge
        return c.dag.add("merge", ts, c.out(), scope=c.scope, name=c.node.name, merge=kind,
                         where=c._path(), last=c.last)
    return merge


def _mul(c: Call) -> int | None:
    """A multiply of two tensors (a merge), or of a tensor by a parameter of C×1×1 (C on a
    vector) read straight from its module: a ``layer_scale`` (ConvNeXt's CNBlock)."""
    scale = _parameter_scale(c)
    if scale is not None:
        return c.layer({"type": "layer_scale", "init": scale})
    return _merge("multiply")(c)


def _parameter(c: Call, a: Any) -> torch.nn.Parameter | None:
    """The parameter node ``a`` reads (get_attr), or expands (ViT's
    ``class_token.expand(n, -1, -1)``); None for anything else, a buffer included."""
    while isinstance(a, fx.Node) and a.op == "call_method" and a.target == "expand":
        a = a.args[0]
    owner = c.node.graph.owning_module
    if not isinstance(a, fx.Node) or a.op != "get_attr" or owner is None:
        return None
    try:
        return owner.get_parameter(str(a.target))
    except AttributeError:  # a buffer or plain tensor attribute: no parameter to count
        return None


def _attr_name(a: fx.Node) -> str:
    """The attribute name of the parameter node ``a`` reads (through an expand)."""
    while a.op == "call_method":
        a = a.args[0]
    return str(a.target).rpartition(".")[2]


def _ndim(a: Any) -> int | None:
    """How many dims the torch value of node ``a`` has (batch included)."""
    meta = a.meta.get("tensor_meta") if isinstance(a, fx.Node) else None
    return len(meta.shape) if hasattr(meta, "shape") else None


def _parameter_scale(c: Call) -> float | None:
    """The first value of a per-channel parameter multiplying the one tensor argument."""
    attrs = [a for a in c.node.args if isinstance(a, fx.Node) and a.op == "get_attr"]
    if len(attrs) != 1 or len(c.tensors) != 1 or len(c.node.args) != 2 or c.last:
        return None
    param = _parameter(c, attrs[0])
    x = c.x()
    if param is None or tuple(param.shape) != ((x.c,) if x.flat else (x.c, 1, 1)):
        return None
    return float(f"{float(param.detach().flatten()[0]):.7g}")  # float32's digits: 1e-06


def _add(c: Call) -> int | None:
    """A sum of tensors (a merge), or a token sequence plus a parameter of its own shape
    (ViT's ``x + self.pos_embedding``): ``pos_embed``."""
    attrs = [a for a in c.node.args if isinstance(a, fx.Node) and a.op == "get_attr"]
    if len(attrs) == 1 and len(c.tensors) == 1 and len(c.node.args) == 2 and c.last:
        param = _parameter(c, attrs[0])
        src = next(a for a in c.node.args if a is not attrs[0])
        shape = src.meta["tensor_meta"].shape if isinstance(src, fx.Node) else None
        if param is not None and shape is not None and param.dim() == len(shape) \
                and param.shape[0] == 1 and tuple(param.shape[1:]) == tuple(shape[1:]):
            return c.layer({"type": "pos_embed"}, name=_attr_name(attrs[0]))
        return None
    return _merge("add")(c)


def _mean(c: Call) -> int | None:
    """x.mean([2, 3]) / torch.mean(x, (2, 3), keepdim): the ``mean`` layer."""
    axes = c.arg(1, "dim")
    axes = [axes] if isinstance(axes, int) else list(axes or [])
    if c.x().flat or c.last or sorted(a % 4 for a in axes) != [2, 3] or \
            c.node.kwargs.get("dtype") is not None:
        return None
    keepdim = bool(c.arg(2, "keepdim", False))
    return c.layer({"type": "mean", "axes": axes, "keepdim": keepdim})


def _permute(c: Call) -> int | None:
    """x.permute(0, 2, 3, 1) to channels-last, x.permute(0, 3, 1, 2) back: ``permute``."""
    dims = c.node.args[1:] if c.node.op == "call_method" else (c.arg(1, "dims"),)
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    n = _ndim(c.node.args[0])
    dims = tuple(d % n if isinstance(d, int) and n else d for d in dims)
    x = c.x()
    if x.flat:
        return None
    if n == 3 and dims == (0, 2, 1):  # a token sequence N×D×L ⇄ N×L×D (ViT)
        return _sequence_permute(c)
    if dims == (0, 2, 3, 1) and not c.last:
        return c.layer({"type": "permute", "to": "channels_last"}, last=True)
    if dims == (0, 3, 1, 2) and c.last:
        return c.layer({"type": "permute", "to": "channels_first"}, last=False)
    return None


def _sequence_permute(c: Call) -> int:
    """N×D×L → N×L×D (to channels-last) or back: ``permute`` of the D×L×1 tokens."""
    to = "channels_first" if c.last else "channels_last"
    return c.layer({"type": "permute", "to": to}, last=not c.last)


def _class_token(c: Call, items: list, dim: Any) -> int | None:
    """``torch.cat([class_token.expand(n, -1, -1), x], dim=1)`` on an N×L×D sequence (ViT):
    a learned token of D prepended, ``class_token``."""
    if len(items) != 2 or not isinstance(c.value(items[1]), int) or not isinstance(dim, int):
        return None
    x, param = c.dag.ops[c.value(items[1])], _parameter(c, items[0])
    n = _ndim(items[1])
    if param is None or not x.last or x.out.w != 1 or not n or dim % n != 1 \
            or param.numel() != x.out.c:
        return None
    return c.layer({"type": "class_token"}, name=_attr_name(items[0]))


def _cat(c: Call) -> int | None:
    dim = c.arg(1, "dim", 0)
    ts = c.tensors
    items = c.node.args[0] if c.node.args else c.node.kwargs.get("tensors")
    if isinstance(items, (list, tuple)) and \
            any(not isinstance(c.value(a), int) for a in items):
        return _class_token(c, list(items), dim)
    if len(ts) == 1:
        return ts[0]
    x = c.dag.ops[ts[0]].out
    if dim not in (1, -3 if not x.flat else -1):
        return None
    return c.dag.add("merge", ts, c.out(), scope=c.scope, name=c.node.name, merge="concat",
                     where=c._path())


def _to_flat(c: Call) -> int | Pending | None:
    """flatten(1) / view(N, -1) / reshape: to a vector (``flatten``), or the steps of a
    channel shuffle (view N×g×C/g×H×W, transpose(1, 2), view back)."""
    src = c.value(c.node.args[0])
    out_meta = list(c.meta.shape) if c.meta is not None and hasattr(c.meta, "shape") else []
    if isinstance(src, Pending):
        if src.transposed and len(out_meta) == 4:
            x = c.dag.ops[src.source].out
            if Shape(*out_meta[1:]) == x:
                return c.dag.add("layer", [src.source], x, scope=c.scope, name=c.node.name,
                                 layer={"type": "channel_shuffle", "groups": src.groups},
                                 where=c._path())
        return None
    if not isinstance(src, int):
        return None
    x = c.dag.ops[src].out
    if len(out_meta) == 5 and not x.flat and out_meta[1] * out_meta[2] == x.c \
            and out_meta[3:] == [x.h, x.w]:
        return Pending(src, out_meta[1])
    out = c.out()
    if len(out_meta) == 3 and _ndim(c.node.args[0]) == 4 and not c.last \
            and out_meta[1:] == [x.c, x.h * x.w]:  # N×C×H×W → N×C×(H·W) (ViT)
        return c.layer({"type": "tokens"})
    if out == x:
        return src
    if out.flat and out.c == x.numel:
        return c.layer({"type": "flatten"})
    return None


def _transpose(c: Call) -> int | Pending | None:
    src = c.value(c.node.args[0])
    if isinstance(src, int) and _ndim(c.node.args[0]) == 3 and c.dag.ops[src].out.w == 1:
        if sorted(d % 3 for d in (c.arg(1, "dim0"), c.arg(2, "dim1"))) == [1, 2]:
            return _sequence_permute(c)  # x.flatten(2).transpose(1, 2): to tokens
        return None
    dims = sorted(d % 5 for d in (c.arg(1, "dim0"), c.arg(2, "dim1")))
    if isinstance(src, Pending) and not src.transposed and dims == [1, 2]:
        return Pending(src.source, src.groups, transposed=True)
    return None


def _same(c: Call) -> int | Pending | None:
    """contiguous(), clone(), eval-mode dropout: the input itself."""
    src = c.value(c.node.args[0])
    if c.node.target in (F.dropout, F.dropout2d) and c.arg(2, "training", True):
        return None
    return src if isinstance(src, (int, Pending)) else None


def _global(mode: str) -> Callable[[Call], int | None]:
    def pool(c: Call) -> int | None:
        size = pair(c.arg(1, "output_size"))
        if size == (1, 1):
            return c.layer({"type": "global_pool", **({"mode": mode} if mode == "max" else {})})
        return c.layer({"type": "adaptive_pool", "size": list(size), "mode": mode})
    return pool


def _pool(kind: str) -> Callable[[Call], int | None]:
    def pool(c: Call) -> int | None:
        kernel = pair(c.arg(1, "kernel_size"))
        stride = c.arg(2, "stride")
        stride = kernel if stride in (None, []) else pair(stride)
        padding = pair(c.arg(3, "padding", 0))
        fields: dict = {"type": kind, "kernel": _side(kernel)}
        if stride != kernel:
            fields["stride"] = _side(stride)
        if padding != (0, 0):
            fields["padding"] = _side(padding)
        ceil = c.arg(4 if kind == "avg_pool" else 5, "ceil_mode", False)
        if ceil:
            fields["ceil_mode"] = True
        if kind == "max_pool" and pair(c.arg(4, "dilation", 1)) != (1, 1):
            return None
        return c.layer(fields)
    return pool


def _side(v: tuple[int, int]) -> int | list[int]:
    return v[0] if v[0] == v[1] else list(v)


def _split(c: Call) -> int | None:
    """chunk(n, dim=1) / split(size | sizes, dim=1): a channel split (its parts are getitems)."""
    x = c.x()
    method = c.node.target in ("chunk", torch.chunk)
    dim = c.arg(2, "dim", 0)
    if dim not in (1, -3) or x.flat:
        return None
    spec = c.arg(1, "chunks") if method else \
        c.arg(1, "split_size_or_sections", c.node.kwargs.get("split_size"))
    if method:
        each = -(-x.c // spec)
        sizes = [min(each, x.c - i) for i in range(0, x.c, each)]
    elif isinstance(spec, int):
        sizes = [min(spec, x.c - i) for i in range(0, x.c, spec)]
    else:
        sizes = list(spec)
    return c.dag.add("split", c.tensors[:1], x, scope=c.scope, name=c.node.name, sizes=sizes,
                     where=c._path())


def _getitem(c: Call) -> Any:
    src, index = c.value(c.node.args[0]), c.node.args[1]
    if isinstance(src, Packed):  # nn.MultiheadAttention's (output, None)
        return src.out if index == 0 else NONTENSOR
    if src is NONTENSOR or not isinstance(src, int):
        return NONTENSOR if src is NONTENSOR else None
    op = c.dag.ops[src]
    if op.kind == "split" and isinstance(index, int):
        part = Shape(op.sizes[index], op.out.h, op.out.w)
        return c.dag.add("part", [src], part, scope=c.scope, name=c.node.name, index=index,
                         where=c._path())
    x = op.out
    if op.last and x.w == 1 and isinstance(index, tuple) and len(index) == _ndim(
            c.node.args[0]) - 1 and index[0] == slice(None) and isinstance(index[1], int) \
            and all(i == 0 for i in index[2:]) and -x.h <= index[1] < x.h:
        # x[:, 0] of an N×L×D sequence (N×L×1×D: x[:, 0, 0]): one token, a vector of D
        return c.layer({"type": "select_token", "index": index[1] % x.h}, last=False)
    if isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None) \
            and isinstance(index[1], slice) and index[1].step in (None, 1) and not x.flat:
        start, stop, _ = index[1].indices(x.c)
        return c.layer({"type": "slice", "start": start, "stop": stop})
    return None


def _nontensor(c: Call) -> Any:
    return NONTENSOR


FUNCTIONS: dict[Any, Callable[[Call], Any]] = {
    # activations
    **{f: _activation("relu") for f in (F.relu, torch.relu, torch.relu_, "relu", "relu_")},
    F.relu6: _activation("relu6"),
    **{f: _activation("hswish") for f in (F.hardswish, "hardswish")},
    **{f: _activation("hsigmoid") for f in (F.hardsigmoid, "hardsigmoid")},
    **{f: _activation("silu") for f in (F.silu,)},
    **{f: _activation("sigmoid") for f in (torch.sigmoid, F.sigmoid, "sigmoid", "sigmoid_")},
    **{f: _activation("tanh") for f in (torch.tanh, F.tanh, "tanh")},
    F.leaky_relu: _leaky,
    F.gelu: _gelu,
    # merges
    **{f: _add for f in (operator.add, operator.iadd, torch.add, "add", "add_")},
    **{f: _mul for f in (operator.mul, operator.imul, torch.mul, "mul", "mul_")},
    torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat,
    # views
    **{f: _to_flat for f in (torch.flatten, "flatten", "view", "reshape", torch.reshape)},
    **{f: _transpose for f in (torch.transpose, "transpose")},
    **{f: _same for f in ("contiguous", "clone", torch.clone, F.dropout, F.dropout2d)},
    # pooling
    F.adaptive_avg_pool2d: _global("avg"), F.adaptive_max_pool2d: _global("max"),
    F.max_pool2d: _pool("max_pool"), F.avg_pool2d: _pool("avg_pool"),
    torch.max_pool2d: _pool("max_pool"),
    **{f: _permute for f in (torch.permute, "permute")},
    # reductions
    **{f: _mean for f in (torch.mean, "mean")},
    # splits
    **{f: _split for f in (torch.chunk, "chunk", torch.split, "split")},
    operator.getitem: _getitem,
    # values that are no tensors
    **{f: _nontensor for f in ("size", "dim", getattr, len)},
}
"""Every function and method (by name) the importer maps."""

FUNCTIONS_BY_NAME: dict[str, Callable[[Call], Any]] = {
    # Swin's PatchMerging pads and gathers the 2×2 neighbours (fx.wrap'd: one call)
    "torchvision.models.swin_transformer._patch_merging_pad":
        lambda c: c.layer({"type": "patch_merge"}) if c.last else None,
}
"""Functions of packages that need not be importable here (torchvision), by qualified name."""


def map_call(dag: Dag, node: fx.Node, env: dict, meta: Any, scope: str) -> Any:
    call = Call(dag, node, env, meta, scope)
    values = call.values()
    if not any(isinstance(v, (int, Pending, Packed)) and not isinstance(v, bool)
               for v in values):
        return NONTENSOR  # arithmetic on sizes, attributes of parameters
    entry = FUNCTIONS.get(node.target)
    if entry is None and callable(node.target):
        entry = FUNCTIONS_BY_NAME.get(f"{getattr(node.target, '__module__', '')}."
                                      f"{getattr(node.target, '__qualname__', '')}")
    try:
        found = entry(call) if entry is not None else None
    except CostModelError as e:
        e.path = e.path or call._path()
        raise
    except (TypeError, ValueError, IndexError):  # an argument known only at run time (a size
        found = None  # read from the tensor): not a call the table can read
    if isinstance(found, int) and call.last and found >= len(dag.ops) - 1 \
            and found not in call.tensors:
        _check_channels_last(dag.ops[found], call)
    if found is None:
        if any(isinstance(v, Pending) for v in values):
            raise Unmapped(f"{call.what} on a reshaped tensor that is not a channel shuffle "
                           "(view to N×g×C/g×H×W, transpose(1, 2), view back)",
                           path=call._path())
        try:
            out = _shape(meta, call.what) if hasattr(meta, "shape") else None
        except CostModelError as e:
            e.path = call._path()
            raise
        return dag.unmapped(call.what, call._path(), call.tensors, out, scope, node.name)
    return found


def _check_channels_last(op, call: Call) -> None:
    """Only merges, element-wise layers and the permute back run on a channels-last value."""
    if op.kind == "merge" or (op.kind == "layer" and (
            op.layer["type"] == "permute" or elementwise(op.layer["type"])
            or _runs_channels_last(op.layer["type"]))):
        return
    raise Unmapped(f"{call.what} on a channels-last (N×H×W×C) tensor: only linear, layer "
                   "norm, element-wise, token and attention layers run between permutes",
                   path=call._path())
