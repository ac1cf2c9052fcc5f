"""An evaluated spec as a real ``torch.nn.Module``.

The module mirrors the evaluation tree (``Result.tree``): a ``Seq`` becomes an
``nn.Sequential``, a ``Branch`` a :class:`BranchModule`, a ``Dag`` (a graph) a
:class:`GraphModule`, an aux block an :class:`AuxModule`, a primitive row the torch module that
``@torch_module`` registered for its class. Every module is named by the last segment of its layer
path, so ``dict(model.named_modules())`` is keyed by the spec's layer paths. A branch's split
and merge are functional ops inside its BranchModule (their rows, ``<branch>.split`` and
``<branch>.<merge>``, belong to the branch's module); so are a graph's merges in its
GraphModule (rows ``<graph>.<node>.<merge>``; the node's layers are the submodule
``<graph>.<node>``). An aux block's modules are registered but run only in training mode.

A layer whose weights other layers share (SkipNet's recurrent gate controller, a shared LSTM
cell) runs an inner module, ``<layer>.rnn``: the layer that owns the weights registers it, so
its parameters count there; the others borrow it unregistered (see :class:`SharedWeights`).
Such inner modules are part of their layer, not layers of their own.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Callable, Hashable

import torch
import torch.nn.functional as F
from torch import nn

from costmodel.errors import CostModelError
from costmodel.engine import Branch, Dag, Node, Result, Row, Seq, name_of
from costmodel.layers import Primitive
from costmodel.layers.adaptive_pool import AdaptivePool
from costmodel.layers.aux import Aux
from costmodel.layers.conv import Conv, DepthwiseConv
from costmodel.layers.deconv import Deconv
from costmodel.layers.elementwise import Activation, Identity
from costmodel.layers.linear import Linear
from costmodel.layers.lstm import LSTM, lstm_cost
from costmodel.layers.merge import channel_split
from costmodel.layers.norm import BatchNorm, LayerNorm
from costmodel.layers.pool import GlobalPool, Pool
from costmodel.layers.prelu import PReLU
from costmodel.layers.reshape import ChannelShuffle, Flatten, Upsample
from costmodel.layers.skipnet import GateDecision as GateDecisionLayer
from costmodel.layers.skipnet import RNNGate as RNNGateLayer
from costmodel.layers.slicing import ChannelSlice as ChannelSliceLayer
from costmodel.layers.unknown import Unknown
from costmodel.layers.traits import tags
from costmodel.shape import Shape, pair, same_padding


class PaddedConv2d(nn.Conv2d):
    """A convolution with asymmetric zero padding (TensorFlow's 'same' when the total padding
    is odd: the extra row/column goes after). One module, so that its name is the layer's path
    and its parameters are the conv's own."""

    def __init__(self, *args, pad: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pad = pad  # F.pad order: (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}"


MERGES: dict[str, Callable[[list[torch.Tensor]], torch.Tensor]] = {
    "concat": lambda xs: torch.cat(xs, dim=1),
    "add": lambda xs: functools.reduce(torch.add, xs),
    # broadcasts C×1×1 gates (SE) and 1×1×1 gates over a whole map (SkipNet's decision)
    "multiply": lambda xs: functools.reduce(torch.mul, xs),
    # ESPNet's hierarchical feature fusion: the running sums b1, b1+b2, … concatenated
    "hff": lambda xs: torch.cat(list(itertools.accumulate(xs, torch.add)), dim=1),
}


class BranchModule(nn.Module):
    """Branches on the input (or on the parts of a channel split), joined by a merge."""

    def __init__(self, merge: str, split: list[int] | None):
        super().__init__()  # the branches are added as submodules, in order
        self.merge = merge
        self.split = split

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = list(self.children())
        parts = torch.split(x, self.split, dim=1) if self.split else [x] * len(branches)
        # parts indexed, not iterated: torch.fx (the importer) can trace indexing
        return MERGES[self.merge]([b(parts[i]) for i, b in enumerate(branches)])

    def extra_repr(self) -> str:
        return f"merge={self.merge}" + (f", split={self.split}" if self.split else "")


class GraphModule(nn.Module):
    """A graph's nodes run in order over a dict of tensors by node name (``input``: the
    module's input): each node's inputs merged (a functional op here, when more than one),
    then the node's layers (its submodule, named by the node). Returns the last node's."""

    def __init__(self, wiring: list[tuple[str, tuple[str, ...], str | None]]):
        super().__init__()  # the nodes' layers are added as submodules, by node name
        self.wiring = wiring

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = {"input": x}
        for name, inputs, merge in self.wiring:
            xs = [outputs[i] for i in inputs]
            outputs[name] = self._modules[name](xs[0] if merge is None else MERGES[merge](xs))
        return outputs[name]

    def extra_repr(self) -> str:
        return "; ".join(f"{name} <- {merge or ''}({', '.join(inputs)})"
                         for name, inputs, merge in self.wiring)


class AuxModule(nn.Sequential):
    """A training-only branch (torchvision's auxiliary classifiers): its layers are registered
    (their parameters count) and run only in training mode, where the output is kept in
    ``aux_output``; the main path always goes on with the input unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.aux_output = super().forward(x) if self.training else None
        return x


class ChannelSlice(nn.Module):
    """Channels [start, stop) of the input: x[:, start:stop] (a view)."""

    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]

    def extra_repr(self) -> str:
        return f"{self.start}:{self.stop}"


def _decide(p: torch.Tensor, training: bool) -> torch.Tensor:
    """SkipNet's execute/skip decision from P(execute): 1 where p > 0.5, else 0; in training
    the official straight-through estimator (the forward value is the same, the gradient
    is p's)."""
    hard = (p > 0.5).to(p.dtype)
    return hard - p.detach() + p if training else hard


class GateDecision(nn.Module):
    """A feed-forward gate's last step: N×2×1×1 logits (skip, execute) → softmax → P(execute)
    → the decision, N×1×1×1."""

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return _decide(torch.softmax(logits, dim=1)[:, 1:2], self.training)


class RecurrentController(nn.Module):
    """SkipNet's recurrent gate controller (RNNGatePolicy in ucbdrive/skipnet): one LSTM step
    (embed → hidden), a linear projection hidden → 1 and a sigmoid, run once per gated block.
    Its LSTM state runs on from one gate to the next and starts at zero in every forward pass
    (``reset``)."""

    def __init__(self, embed: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(embed, hidden)
        self.proj = nn.Linear(hidden, 1)
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset(self) -> None:
        self.state = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # N×E×1×1 → P(execute), N×1×1×1
        out, self.state = self.lstm(x.flatten(1).unsqueeze(0), self.state)  # 1 step, N, E
        return torch.sigmoid(self.proj(out[0])).view(-1, 1, 1, 1)


class SharedWeights:
    """The modules with shared weights in one build, by what they are (their kind and sizes).

    A layer that owns the weights takes the current module (making it if there is none, or
    a new one if another layer already owns it) and registers it; a layer that shares them
    borrows the current module without registering it, so that torch's parameter count,
    like the analytic one, counts the weights once, on their owner. Shared weights with no
    owner (every user marked shared) are counted nowhere, as analytically."""

    def __init__(self):
        self._current: dict[Hashable, tuple[nn.Module, bool]] = {}  # key → (module, owned)
        self.made: list[nn.Module] = []

    def get(self, key: Hashable, make: Callable[[], nn.Module], own: bool) -> nn.Module:
        module, owned = self._current.get(key, (None, False))
        if module is None or (own and owned):
            module, owned = make(), False
            self.made.append(module)
        self._current[key] = (module, owned or own)
        return module


class RecurrentLayer(nn.Module):
    """A layer running a recurrent module (``rnn``) that it owns (a submodule: its parameters
    count here) or borrows from its owner (hidden from nn.Module: counted there)."""

    def __init__(self, rnn: nn.Module, own: bool):
        super().__init__()
        self.own = own
        if own:
            self.rnn = rnn
        else:
            self.borrowed = (rnn,)  # in a tuple, so that nn.Module does not register it

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return (self.rnn if self.own else self.borrowed[0])(x)

    def extra_repr(self) -> str:
        return "own weights" if self.own else "shared weights"


class LSTMStep(RecurrentLayer):
    """One step of a single-layer nn.LSTM from a zero state, on N×C vectors or N×C×1×1 maps:
    returns the hidden state in the same form."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.run(x.flatten(1).unsqueeze(0))  # sequence of 1 step, batch N
        return out[0].view(x.shape[0], -1, *x.shape[2:])


class RNNGate(RecurrentLayer):
    """SkipNet's recurrent gate: the (shared) controller's P(execute) → the decision."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _decide(self.run(x), self.training)


# --- one torch module per primitive class ------------------------------------------------


@dataclass(frozen=True)
class TorchLayer:
    """How a primitive class runs in torch, and under which fvcore operator its FLOPs count.

    ``build`` makes the module from the layer's row (its spec and input shape), and also
    takes the build's :class:`SharedWeights` when ``shares_weights``; ``fvcore_op`` names the
    operator fvcore's by_operator() reports its FLOPs under (None: fvcore counts the module's
    ops as nothing); ``lstm_madds`` says how many of the layer's multiply-adds (paper scope)
    run inside an LSTM kernel, which a flop counter may not see (see verify)."""

    build: Callable[..., nn.Module]
    fvcore_op: Callable[[Row], str | None] = lambda row: None
    lstm_madds: Callable[[Row], int] = lambda row: 0
    shares_weights: bool = False

    def module(self, row: Row, shared: SharedWeights) -> nn.Module:
        return self.build(row, shared) if self.shares_weights else self.build(row)


TORCH_MODULES: dict[type[Primitive], TorchLayer] = {}
"""Every primitive class → how it runs in torch (filled by ``@torch_module`` below)."""


def torch_module(*classes: type[Primitive], fvcore_op: Callable[[Row], str | None] | None = None,
                 lstm_madds: Callable[[Row], int] | None = None, shares_weights: bool = False):
    """Registers the decorated ``build(row)`` as the torch module of ``classes``."""
    def register(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        layer = TorchLayer(build, shares_weights=shares_weights,
                           **({"fvcore_op": fvcore_op} if fvcore_op else {}),
                           **({"lstm_madds": lstm_madds} if lstm_madds else {}))
        for cls in classes:
            TORCH_MODULES[cls] = layer
        return build
    return register


TORCH_READERS: dict[type[nn.Module], Callable[[nn.Module, Shape], dict]] = {}
"""Every torch module class the importer (``costmodel import``) knows → how to read one back
into a spec layer: ``read(module, x)`` returns the layer's spec fields (a mapping with its
``type``) for input shape ``x``. Filled by ``@reads`` beside each build below: one table, read
both ways."""


def reads(*modules: type[nn.Module]):
    """Registers the decorated ``read(module, x) -> spec fields`` for torch module classes
    ``modules`` (exact classes; a subclass is looked up along its MRO by the importer)."""
    def register(read: Callable[[nn.Module, Shape], dict]) -> Callable[[nn.Module, Shape], dict]:
        for cls in modules:
            TORCH_READERS[cls] = read
        return read
    return register


def _side(v: tuple[int, int]) -> int | list[int]:
    """A torch (h, w) pair as a spec value: an int where both are equal."""
    h, w = pair(v)
    return h if h == w else [h, w]


def _unread(module: nn.Module, why: str) -> CostModelError:
    return CostModelError(f"{type(module).__name__} {why}: no spec layer has it")


TORCH_READERS_BY_NAME: dict[str, Callable[[nn.Module, Shape], dict]] = {}
"""Readers of torch module classes from packages that need not be importable here
(torchvision), by ``module.qualname`` of the class (``@reads_by_name``): looked up like
TORCH_READERS (``reader_for``)."""


def reads_by_name(*qualnames: str):
    """Registers the decorated reader for the classes named ``module.qualname``."""
    def register(read: Callable[[nn.Module, Shape], dict]) -> Callable[[nn.Module, Shape], dict]:
        for name in qualnames:
            TORCH_READERS_BY_NAME[name] = read
        return read
    return register


def reader_for(module: nn.Module) -> Callable[[nn.Module, Shape], dict] | None:
    """The reader of ``module``: of its class, in TORCH_READERS or by name in
    TORCH_READERS_BY_NAME, or of a class it derives from without changing its forward (a
    subclass with its own forward, as Swin v2's attention, is not that module: the importer
    traces into it); None if there is none."""
    cls = type(module)
    by_name = TORCH_READERS_BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
    if by_name is not None:
        return by_name
    for base in cls.__mro__:
        if base in TORCH_READERS:
            return TORCH_READERS[base] if cls.forward is base.forward else None
    return None


def _op(name: str) -> Callable[[Row], str]:
    return lambda row: name


@torch_module(Conv, DepthwiseConv, fvcore_op=_op("conv"))
def _conv(row: Row) -> nn.Module:
    layer, x = row.layer, row.inputs[0]
    kernel, stride, padding, dilation = layer.geometry
    groups = x.c if isinstance(layer, DepthwiseConv) else layer.groups
    args = dict(in_channels=x.c, out_channels=row.out.c, kernel_size=kernel, stride=stride,
                dilation=dilation, groups=groups, bias=layer.bias)
    if padding == "same":
        (top, bottom), (left, right) = (same_padding(size, k, s, d) for size, k, s, d in
                                        zip((x.h, x.w), kernel, stride, dilation))
        if top != bottom or left != right:
            return PaddedConv2d(**args, pad=(left, right, top, bottom))
        padding = (top, left)
    return nn.Conv2d(**args, padding=(0, 0) if padding == "valid" else pair(padding))


@reads(nn.Conv2d)
def _read_conv(m: nn.Conv2d, x: Shape) -> dict:
    """Depthwise where groups = C_in (``dwconv``, a multiplier where C_out = k·C_in), else a
    (grouped) ``conv``; padding left out where it is the default (d·(k−1)//2)."""
    if m.padding_mode != "zeros":
        raise _unread(m, f"padding_mode '{m.padding_mode}'")
    k, d = pair(m.kernel_size), pair(m.dilation)
    fields: dict = {"kernel": _side(k)}
    if pair(m.stride) != (1, 1):
        fields["stride"] = _side(m.stride)
    if isinstance(m.padding, str):
        fields["padding"] = m.padding
    elif pair(m.padding) != (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2):
        fields["padding"] = _side(m.padding)
    if d != (1, 1):
        fields["dilation"] = _side(d)
    if m.bias is not None:
        fields["bias"] = True
    if m.groups == m.in_channels > 1:
        mult = m.out_channels // m.in_channels
        return {"type": "dwconv", **fields, **({"multiplier": mult} if mult > 1 else {})}
    return {"type": "conv", "out": m.out_channels, **fields,
            **({"groups": m.groups} if m.groups > 1 else {})}


@reads(PaddedConv2d)
def _read_padded_conv(m: PaddedConv2d, x: Shape) -> dict:
    """The builder's own asymmetric padding: TensorFlow's 'same' (what it was built from)."""
    fields = _read_conv(m, x)
    fields["padding"] = "same"
    return fields


@torch_module(Deconv, fvcore_op=_op("conv"))  # fvcore's conv rule, transposed
def _deconv(row: Row) -> nn.Module:
    layer, x = row.layer, row.inputs[0]
    return nn.ConvTranspose2d(x.c, row.out.c, pair(layer.kernel), pair(layer.stride),
                              pair(layer.padding), pair(layer.output_padding), layer.groups,
                              layer.bias, pair(layer.dilation))


@reads(nn.ConvTranspose2d)
def _read_deconv(m: nn.ConvTranspose2d, x: Shape) -> dict:
    if m.padding_mode != "zeros":
        raise _unread(m, f"padding_mode '{m.padding_mode}'")
    return {"type": "deconv", "out": m.out_channels, "kernel": _side(m.kernel_size),
            "stride": _side(m.stride), "padding": _side(m.padding),
            "output_padding": _side(m.output_padding), "dilation": _side(m.dilation),
            "groups": m.groups, "bias": m.bias is not None}


@torch_module(Linear, fvcore_op=_op("linear"))
def _linear(row: Row) -> nn.Module:
    return nn.Linear(row.inputs[0].c, row.out.c, bias=row.layer.bias)


@reads(nn.Linear)
def _read_linear(m: nn.Linear, x: Shape) -> dict:
    if not x.flat:
        raise _unread(m, f"on a {x} map (channels-last)")
    return {"type": "linear", "out": m.out_features,
            **({} if m.bias is not None else {"bias": False})}


@torch_module(BatchNorm, fvcore_op=_op("batch_norm"))
def _batch_norm(row: Row) -> nn.Module:
    x = row.inputs[0]
    norm = nn.BatchNorm1d if x.flat else nn.BatchNorm2d
    return norm(x.c, affine=row.layer.affine)


@reads(nn.BatchNorm1d, nn.BatchNorm2d)
def _read_batch_norm(m: nn.modules.batchnorm._BatchNorm, x: Shape) -> dict:
    if not m.track_running_stats:
        raise _unread(m, "without running statistics (batch statistics at inference)")
    return {"type": "bn", **({} if m.affine else {"affine": False})}


ACTIVATIONS: dict[str, Callable[[Activation], nn.Module]] = {
    "relu": lambda layer: nn.ReLU(),
    "relu6": lambda layer: nn.ReLU6(),
    "leaky_relu": lambda layer: nn.LeakyReLU(layer.negative_slope),
    "hswish": lambda layer: nn.Hardswish(),
    "hsigmoid": lambda layer: nn.Hardsigmoid(),
    "swish": lambda layer: nn.SiLU(),
    "silu": lambda layer: nn.SiLU(),
    "sigmoid": lambda layer: nn.Sigmoid(),
    "tanh": lambda layer: nn.Tanh(),
    "gelu": lambda layer: nn.GELU(),
}
"""An activation's ``fn`` (``elementwise.ActivationFn``) → its torch module."""


@torch_module(Activation)
def _activation(row: Row) -> nn.Module:
    return ACTIVATIONS[row.layer.fn](row.layer)


ACTIVATION_READERS: dict[type[nn.Module], Callable[[nn.Module], dict]] = {
    nn.ReLU: lambda m: {"type": "relu"},
    nn.ReLU6: lambda m: {"type": "relu6"},
    nn.Hardswish: lambda m: {"type": "hswish"},
    nn.Hardsigmoid: lambda m: {"type": "hsigmoid"},
    nn.SiLU: lambda m: {"type": "silu"},
    nn.Sigmoid: lambda m: {"type": "sigmoid"},
    nn.Tanh: lambda m: {"type": "tanh"},
    nn.LeakyReLU: lambda m: {"type": "leaky_relu", "negative_slope": m.negative_slope},
}
"""ACTIVATIONS read back: a torch activation module → its spec layer (GELU: tanh
approximation refused, it is another function)."""


@reads(*ACTIVATION_READERS, nn.GELU)
def _read_activation(m: nn.Module, x: Shape) -> dict:
    if isinstance(m, nn.GELU):
        if m.approximate != "none":
            raise _unread(m, f"approximate='{m.approximate}'")
        return {"type": "gelu"}
    return ACTIVATION_READERS[type(m)](m)


class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm2d (ConvNeXt): nn.LayerNorm over the channels of each pixel of
    an N×C×H×W map (the permutes are free for fvcore: aten::permute is on its ignore list)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@torch_module(LayerNorm, fvcore_op=_op("layer_norm"))
def _layer_norm(row: Row) -> nn.Module:
    x = row.inputs[0]
    norm = nn.LayerNorm if x.flat or row.layer.channels_last else LayerNorm2d
    return norm(x.c, eps=1e-6, elementwise_affine=row.layer.affine)


@reads(LayerNorm2d, nn.LayerNorm)
def _read_layer_norm(m: nn.LayerNorm, x: Shape) -> dict:
    """Over the channels: LayerNorm2d on a map, nn.LayerNorm(C) on a vector."""
    channels_first = isinstance(m, LayerNorm2d)
    if tuple(m.normalized_shape) != (x.c,) or channels_first == x.flat:
        raise _unread(m, f"normalizing {tuple(m.normalized_shape)} of a {x} input")
    if m.elementwise_affine and m.bias is None:
        raise _unread(m, "with a weight but no bias")
    return {"type": "layer_norm", **({} if m.elementwise_affine else {"affine": False})}


@torch_module(Pool)
def _pool(row: Row) -> nn.Module:
    layer = row.layer
    kernel = pair(layer.kernel)
    stride = kernel if layer.stride is None else pair(layer.stride)
    pool = nn.MaxPool2d if layer.mode == "max" else nn.AvgPool2d
    return pool(kernel, stride, pair(layer.padding), ceil_mode=layer.ceil_mode)


@reads(nn.MaxPool2d, nn.AvgPool2d)
def _read_pool(m: nn.Module, x: Shape) -> dict:
    if isinstance(m, nn.MaxPool2d) and (pair(m.dilation) != (1, 1) or m.return_indices):
        raise _unread(m, "with dilation or return_indices")
    if isinstance(m, nn.AvgPool2d) and pair(m.padding) != (0, 0) and \
            (not m.count_include_pad or m.divisor_override):
        raise _unread(m, "with count_include_pad=False or divisor_override")
    kernel = _side(m.kernel_size)
    fields: dict = {"type": "max_pool" if isinstance(m, nn.MaxPool2d) else "avg_pool",
                    "kernel": kernel}
    stride = _side(m.stride or m.kernel_size)
    if stride != kernel:
        fields["stride"] = stride
    if pair(m.padding) != (0, 0):
        fields["padding"] = _side(m.padding)
    if m.ceil_mode:
        fields["ceil_mode"] = True
    return fields


def _adaptive_avg_op(row: Row) -> str | None:
    return "adaptive_avg_pool2d" if row.layer.mode == "avg" else None


@torch_module(GlobalPool, AdaptivePool, fvcore_op=_adaptive_avg_op)
def _adaptive_pool(row: Row) -> nn.Module:
    size = pair(row.layer.size) if isinstance(row.layer, AdaptivePool) else 1
    return nn.AdaptiveAvgPool2d(size) if row.layer.mode == "avg" else nn.AdaptiveMaxPool2d(size)


@reads(nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
def _read_adaptive_pool(m: nn.Module, x: Shape) -> dict:
    if getattr(m, "return_indices", False):
        raise _unread(m, "with return_indices")
    mode = "avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "max"
    size = tuple(x.h if s is None else s for s in
                 (m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * 2))
    if size == (1, 1):
        return {"type": "global_pool", **({"mode": mode} if mode == "max" else {})}
    return {"type": "adaptive_pool", "size": _side(size), "mode": mode}


@torch_module(PReLU)
def _prelu(row: Row) -> nn.Module:
    return nn.PReLU(1 if row.layer.shared else row.inputs[0].c)


@reads(nn.PReLU)
def _read_prelu(m: nn.PReLU, x: Shape) -> dict:
    if m.num_parameters not in (1, x.c):
        raise _unread(m, f"with {m.num_parameters} slopes for {x.c} channels")
    return {"type": "prelu", **({"shared": True} if m.num_parameters == 1 else {})}


@torch_module(LSTM, shares_weights=True, lstm_madds=lambda row: lstm_cost(
    row.inputs[0].c, row.layer.hidden, row.layer.bias).flops)
def _lstm(row: Row, shared: SharedWeights) -> nn.Module:
    layer, n_in = row.layer, row.inputs[0].c
    cell = shared.get(("lstm", n_in, layer.hidden, layer.bias),
                      lambda: nn.LSTM(n_in, layer.hidden, bias=layer.bias), not layer.shared)
    return LSTMStep(cell, own=not layer.shared)


# the LSTM step is fvcore's aten::lstm (no rule); the projection its linear
@torch_module(RNNGateLayer, fvcore_op=_op("linear"), shares_weights=True,
              lstm_madds=lambda row: lstm_cost(row.inputs[0].c, row.layer.hidden, True).flops)
def _rnn_gate(row: Row, shared: SharedWeights) -> nn.Module:
    layer, embed = row.layer, row.inputs[0].c
    controller = shared.get(("rnn_gate", embed, layer.hidden),
                            lambda: RecurrentController(embed, layer.hidden), not layer.shared)
    return RNNGate(controller, own=not layer.shared)


@torch_module(GateDecisionLayer)
def _gate_decision(row: Row) -> nn.Module:
    return GateDecision()


@torch_module(Upsample, fvcore_op=lambda row: f"upsample_{row.layer.mode}2d")
def _upsample(row: Row) -> nn.Module:
    sh, sw = pair(row.layer.scale)
    mode = row.layer.mode
    return nn.Upsample(scale_factor=(float(sh), float(sw)), mode=mode,
                       align_corners=False if mode == "bilinear" else None)


@reads(nn.Upsample)
def _read_upsample(m: nn.Upsample, x: Shape) -> dict:
    """By the integer scale the module applies to ``x`` (a ``size`` is read as its scale)."""
    if m.mode not in ("nearest", "bilinear") or (m.mode == "bilinear" and m.align_corners):
        raise _unread(m, f"mode '{m.mode}', align_corners={m.align_corners}")
    if m.size is not None:
        sh, sw = pair(m.size if not isinstance(m.size, int) else (m.size, m.size))
        scale = (sh // x.h, sw // x.w)
        if (scale[0] * x.h, scale[1] * x.w) != (sh, sw):
            raise _unread(m, f"to size {m.size}, not an integer scale of {x}")
    else:
        sf = m.scale_factor if isinstance(m.scale_factor, tuple) else (m.scale_factor,) * 2
        if any(float(s) != int(s) for s in sf):
            raise _unread(m, f"by a fractional scale {m.scale_factor}")
        scale = (int(sf[0]), int(sf[1]))
    return {"type": "upsample", "scale": _side(scale),
            **({"mode": m.mode} if m.mode != "nearest" else {})}


@torch_module(Flatten)
def _flatten(row: Row) -> nn.Module:
    return nn.Flatten(1)


@reads(nn.Flatten)
def _read_flatten(m: nn.Flatten, x: Shape) -> dict:
    if m.start_dim != 1 or m.end_dim != -1:
        raise _unread(m, f"from dim {m.start_dim} to {m.end_dim}")
    return {"type": "flatten"}


@torch_module(ChannelShuffle)
def _channel_shuffle(row: Row) -> nn.Module:
    return nn.ChannelShuffle(row.layer.groups)


@reads(nn.ChannelShuffle)
def _read_channel_shuffle(m: nn.ChannelShuffle, x: Shape) -> dict:
    return {"type": "channel_shuffle", "groups": m.groups}


@torch_module(Identity)
def _identity(row: Row) -> nn.Module:  # identity, or dropout (an identity in eval mode)
    return nn.Dropout(row.layer.p) if row.layer.type == "dropout" else nn.Identity()


@reads(nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
def _read_identity(m: nn.Module, x: Shape) -> dict:  # dropout: an identity in eval mode
    return {"type": "identity"} if isinstance(m, nn.Identity) else {"type": "dropout", "p": m.p}


@torch_module(ChannelSliceLayer)
def _slice(row: Row) -> nn.Module:
    return ChannelSlice(row.layer.start, row.layer.stop)


class UnknownOp(nn.Module):
    """A stand-in for an op of unknown cost (``type: unknown``): zeros of its recorded output
    shape, so that the rest of the network still runs (its own cost is unknown, not 0)."""

    def __init__(self, op: str, out: list[int]):
        super().__init__()
        self.op, self.out = op, list(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], *self.out)

    def extra_repr(self) -> str:
        return f"{self.op} → {self.out}"


@torch_module(Unknown)
def _unknown(row: Row) -> nn.Module:
    return UnknownOp(row.layer.op, row.layer.out)


def torch_layer(row: Row) -> TorchLayer:
    """How the primitive of ``row`` runs in torch (by its class, or a class it derives from)."""
    for cls in type(row.layer).__mro__:
        if cls in TORCH_MODULES:
            return TORCH_MODULES[cls]
    known = sorted(tags(c)[0] for c in TORCH_MODULES)
    raise CostModelError(f"layer type '{row.type}' has no torch module yet (known: "
                         f"{', '.join(known)})", path=row.path)


# --- the tree ---------------------------------------------------------------------------


def _add(container: nn.Module, name: str, module: nn.Module, path: str) -> None:
    try:
        container.add_module(name, module)
    except KeyError:  # torch refuses a submodule name that is already an attribute
        raise CostModelError(f"torch cannot name a submodule '{name}' (an attribute of "
                             f"{type(container).__name__}); rename the layer",
                             path=f"{path}.{name}" if path else name, field="name") from None


def build_node(node: Node, shared: SharedWeights) -> nn.Module:
    if isinstance(node, Row):
        return torch_layer(node).module(node, shared)
    if isinstance(node, Seq):
        module = AuxModule() if isinstance(node.layer, Aux) else nn.Sequential()
        for child in node.children:
            _add(module, name_of(child.path), build_node(child, shared), node.path)
        return module
    if isinstance(node, Branch):
        split = None
        if node.split is not None:
            parts, _ = channel_split(node.split.inputs[0], node.layer.branching()[3])
            split = [p.c for p in parts]
        module = BranchModule(node.merge.type, split)
        for name, seq in zip(node.names, node.branches):
            _add(module, name, build_node(seq, shared), node.path)
        return module
    if isinstance(node, Dag):
        module = GraphModule([(name, inputs, None if merge is None else merge.type)
                              for name, inputs, merge in zip(node.names, node.inputs,
                                                             node.merges)])
        for name, seq in zip(node.names, node.seqs):
            _add(module, name, build_node(seq, shared), node.path)
        return module
    raise TypeError(f"not a node: {node!r}")  # pragma: no cover


def build(result: Result) -> nn.Module:
    """The evaluated network as an ``nn.Module`` in eval mode, its submodules named by layer
    path. Recurrent controllers start every forward pass from a zero state."""
    shared = SharedWeights()
    model = build_node(result.tree, shared).eval()
    controllers = [m for m in shared.made if isinstance(m, RecurrentController)]

    def reset(module: nn.Module, args) -> None:
        for controller in controllers:
            controller.reset()

    if controllers:
        model.register_forward_pre_hook(reset)
    return model


def example_input(result: Result, batch: int = 1) -> torch.Tensor:
    """A random input of the evaluated size: N×C×H×W."""
    h, w = result.input
    return torch.randn(batch, result.in_channels, h, w)


# The torch modules and readers of the newer vocabulary live in their own modules (they
# register on the tables above when imported, here, once builder is whole): the modern CNNs'
# (channels-last layers, layer scale, mean, group norm…) and attention's.
from costmodel.crosscheck import modern_cnn as _modern_cnn  # noqa: E402,F401
from costmodel.crosscheck import attention as _attention  # noqa: E402,F401
from costmodel.crosscheck.modern_cnn import channels_last_paths, torch_shape  # noqa: E402,F401
from costmodel.crosscheck.attention import Attend  # noqa: E402,F401
