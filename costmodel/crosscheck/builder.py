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
from costmodel.engine import Branch, Dag, Node, Result, Row, Seq, name_of, nodes
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


# --- the vocabulary of modern CNNs (#14) ---------------------------------------------------
#
# A ``permute`` to channels_last makes the torch tensor N×H×W×C while the spec's shape stays
# C×H×W: the layers up to the permute back (``linear``/``layer_norm`` with channels_last,
# activations) run on that tensor, and verify compares their outputs as H×W×C
# (``channels_last_paths``, ``torch_shape``).

from costmodel.layers.elementwise import StochasticDepth as StochasticDepthLayer  # noqa: E402
from costmodel.layers.norm import GroupNorm  # noqa: E402
from costmodel.layers.reduce import Mean as MeanLayer  # noqa: E402
from costmodel.layers.reshape import Permute as PermuteLayer  # noqa: E402
from costmodel.layers.scale import LayerScale as LayerScaleLayer  # noqa: E402

CHANNELS_LAST, CHANNELS_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)
"""The dims of ``x.permute`` to N×H×W×C, and back to N×C×H×W."""


def channels_last_paths(result: Result) -> set[str]:
    """The paths of the layers (and branching nodes) whose torch output is N×H×W×C: those
    from a ``permute`` to channels_last up to the next ``permute``, in execution order."""
    last, found = False, set()
    for node in nodes(result.tree, ends=False):
        if isinstance(node, Row) and isinstance(node.layer, PermuteLayer):
            last = node.layer.to == "channels_last"
        if last and type(node) is not Seq:
            found.add(node.path)
    return found


def torch_shape(shape: Shape, channels_last: bool) -> list[int]:
    """The torch shape (without N) of a spec's shape: H×W×C for a channels-last map."""
    return [shape.h, shape.w, shape.c] if channels_last and not shape.flat else shape.as_list()


@torch_module(GroupNorm, fvcore_op=_op("group_norm"))
def _group_norm(row: Row) -> nn.Module:
    return nn.GroupNorm(row.layer.groups, row.inputs[0].c, affine=row.layer.affine)


@reads(nn.GroupNorm)
def _read_group_norm(module: nn.GroupNorm, x: Shape) -> dict:
    return {"type": "group_norm", "groups": module.num_groups, "affine": module.affine}


class Permute(nn.Module):
    """``x.permute(*dims)`` (as torchvision.ops.Permute): a view, no parameters."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


@torch_module(PermuteLayer)
def _permute(row: Row) -> nn.Module:
    return Permute(CHANNELS_LAST if row.layer.to == "channels_last" else CHANNELS_FIRST)


@reads(Permute)
def _read_permute(module: nn.Module, x: Shape) -> dict:
    dims = tuple(module.dims)
    if dims not in (CHANNELS_LAST, CHANNELS_FIRST):
        raise CostModelError(f"permute to dims {list(dims)} is not a change of channel order "
                             f"(only {list(CHANNELS_LAST)} and {list(CHANNELS_FIRST)} are)",
                             field="dims")
    return {"type": "permute", "to": "channels_last" if dims == CHANNELS_LAST else "channels_first"}


class LayerScale(nn.Module):
    """A learned multiply per channel (ConvNeXt's layer scale): its parameter, named
    ``layer_scale`` as in torchvision's CNBlock, is C×1×1 on a map, C on a vector."""

    def __init__(self, shape: tuple[int, ...], init: float):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full(shape, init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * x


@torch_module(LayerScaleLayer)
def _layer_scale(row: Row) -> nn.Module:
    x = row.inputs[0]
    return LayerScale((x.c,) if x.flat else (x.c, 1, 1), row.layer.init)


@reads(LayerScale)
def _read_layer_scale(module: LayerScale, x: Shape) -> dict:
    init = float(module.layer_scale.detach().flatten()[0])
    return {"type": "layer_scale", "init": float(f"{init:.7g}")}  # float32's digits: 1e-06


class Mean(nn.Module):
    """``x.mean(axes, keepdim)`` as a module (fvcore: aten::mean, which it does not count)."""

    def __init__(self, axes: list[int], keepdim: bool):
        super().__init__()
        self.axes, self.keepdim = list(axes), keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.axes, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"axes={self.axes}, keepdim={self.keepdim}"


@torch_module(MeanLayer)
def _mean(row: Row) -> nn.Module:
    return Mean(row.layer.axes, row.layer.keepdim)


@reads(Mean)
def _read_mean(module: Mean, x: Shape) -> dict:
    return {"type": "mean", "axes": list(module.axes), "keepdim": module.keepdim}


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth (torchvision is not a dependency): in training, zero
    each sample (``row``) or the whole batch (``batch``) with probability ``p`` and scale the
    survivors by 1/(1−p); the identity in eval mode."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


@torch_module(StochasticDepthLayer)
def _stochastic_depth(row: Row) -> nn.Module:
    return StochasticDepth(row.layer.p, row.layer.mode)


@reads(StochasticDepth)
def _read_stochastic_depth(module: StochasticDepth, x: Shape) -> dict:
    return {"type": "stochastic_depth", "p": float(module.p), "mode": module.mode}


# --- attention (#14) -----------------------------------------------------------------------
#
# Tokens run channels last, as after a ``permute``: a ViT sequence of L tokens is N×L×1×D
# (the spec's D×L×1), a Swin map N×H×W×C. ``attention`` is a block: its ``qkv`` and ``proj``
# rows are channels-last ``linear`` layers (nn.Linear), its ``attend`` row the module below.

from costmodel.layers.attention import Attend as AttendLayer  # noqa: E402
from costmodel.layers.attention import relative_bias_params  # noqa: E402
from costmodel.layers.tokens import ClassToken as ClassTokenLayer  # noqa: E402
from costmodel.layers.tokens import Crop as CropLayer  # noqa: E402
from costmodel.layers.tokens import WindowPad as WindowPadLayer  # noqa: E402
from costmodel.layers.tokens import PatchMerge as PatchMergeLayer  # noqa: E402
from costmodel.layers.tokens import PosEmbed as PosEmbedLayer  # noqa: E402
from costmodel.layers.tokens import SelectToken as SelectTokenLayer  # noqa: E402
from costmodel.layers.tokens import Tokens as TokensLayer  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402


class Tokens(nn.Module):
    """N×C×H×W → N×C×(H·W)×1 (a view; the permute to channels last follows)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).unsqueeze(-1)


@torch_module(TokensLayer)
def _tokens(row: Row) -> nn.Module:
    return Tokens()


@reads(Tokens)
def _read_tokens(module: nn.Module, x: Shape) -> dict:
    return {"type": "tokens"}


class ClassToken(nn.Module):
    """Prepends a learned token to an N×L×1×D sequence (ViT's ``class_token``, zeros)."""

    def __init__(self, d: int):
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, 1, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.class_token.expand(x.shape[0], -1, -1, -1), x], dim=1)


@torch_module(ClassTokenLayer)
def _class_token(row: Row) -> nn.Module:
    return ClassToken(row.inputs[0].c)


@reads(ClassToken)
def _read_class_token(module: nn.Module, x: Shape) -> dict:
    return {"type": "class_token"}


class PosEmbed(nn.Module):
    """Adds a learned embedding (ViT's ``pos_embedding``, normal with std 0.02) to an
    N×H×W×C channels-last tensor (N×L×1×D for a sequence)."""

    def __init__(self, h: int, w: int, c: int):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, h, w, c).normal_(std=0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding


@torch_module(PosEmbedLayer)
def _pos_embed(row: Row) -> nn.Module:
    x = row.inputs[0]
    return PosEmbed(x.h, x.w, x.c)


@reads(PosEmbed)
def _read_pos_embed(module: nn.Module, x: Shape) -> dict:
    return {"type": "pos_embed"}


class SelectToken(nn.Module):
    """``x[:, index]`` of an N×L×1×D sequence: N×D."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index, 0]


@torch_module(SelectTokenLayer)
def _select_token(row: Row) -> nn.Module:
    return SelectToken(row.layer.index)


@reads(SelectToken)
def _read_select_token(module: SelectToken, x: Shape) -> dict:
    return {"type": "select_token", "index": module.index}


class PatchMerge(nn.Module):
    """Swin's patch merging without its norm and linear (torchvision's
    ``_patch_merging_pad``): N×H×W×C → N×⌈H/2⌉×⌈W/2⌉×4C."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
                          x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)


@torch_module(PatchMergeLayer)
def _patch_merge(row: Row) -> nn.Module:
    return PatchMerge()


@reads(PatchMerge)
def _read_patch_merge(module: nn.Module, x: Shape) -> dict:
    return {"type": "patch_merge"}


class WindowPad(nn.Module):
    """Zero-pads an N×H×W×C map at the bottom and right to whole M×M windows."""

    def __init__(self, window: int):
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1:3]
        m = self.window
        return F.pad(x, (0, 0, 0, (m - w % m) % m, 0, (m - h % m) % m))


@torch_module(WindowPadLayer)
def _window_pad(row: Row) -> nn.Module:
    return WindowPad(row.layer.window)


@reads(WindowPad)
def _read_window_pad(module: WindowPad, x: Shape) -> dict:
    return {"type": "window_pad", "window": module.window}


class Crop(nn.Module):
    """The top-left h×w of an N×H×W×C map, made contiguous (a copy)."""

    def __init__(self, h: int, w: int):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :self.h, :self.w, :].contiguous()


@torch_module(CropLayer)
def _crop(row: Row) -> nn.Module:
    return Crop(row.layer.h, row.layer.w)


@reads(Crop)
def _read_crop(module: Crop, x: Shape) -> dict:
    return {"type": "crop", "h": module.h, "w": module.w}


def _shift_mask(h: int, w: int, window: int, shift: tuple[int, int]) -> torch.Tensor:
    """Swin's mask for shifted windows (torchvision's ``shifted_window_attention``): −100
    between two positions of a window that came from different regions before the cyclic
    shift, 0 elsewhere; nW×M²×M²."""
    region = torch.zeros(h, w)
    h_cuts = ((0, -window), (-window, -shift[0]), (-shift[0], None))
    w_cuts = ((0, -window), (-window, -shift[1]), (-shift[1], None))
    label = 0
    for h0, h1 in h_cuts:
        for w0, w1 in w_cuts:
            region[h0:h1, w0:w1] = label
            label += 1
    region = region.view(h // window, window, w // window, window).permute(0, 2, 1, 3)
    region = region.reshape(-1, window * window)
    diff = region.unsqueeze(1) - region.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class Attend(nn.Module):
    """Multi-head attention on q, k, v packed in the last dim of an N×H×W×3D tensor (as a
    ``qkv`` linear or nn.MultiheadAttention's in-projection packs them): all H·W tokens at
    once, or in M×M windows cyclically shifted by ``shift`` (Swin) with a learned relative
    position bias (``relative_position_bias_table``, (2M−1)²×heads, as torchvision names it).

    ``impl: matmul`` computes ``(q/√d) @ kᵀ`` and ``attn @ v`` as torchvision's Swin does
    (fvcore: aten::matmul); ``impl: sdpa`` calls F.scaled_dot_product_attention as
    nn.MultiheadAttention does (fvcore: unsupported, 0)."""

    def __init__(self, heads: int, window: int | None, shift: int, relative_bias: bool,
                 impl: str, partition: str = "window"):
        super().__init__()
        self.heads, self.window, self.shift, self.impl = heads, window, shift, impl
        self.partition = partition
        if relative_bias and window:
            m = window
            self.relative_position_bias_table = nn.Parameter(
                torch.empty(relative_bias_params(m, heads) // heads, heads).normal_(std=0.02))
            coords = torch.stack(torch.meshgrid(torch.arange(m), torch.arange(m),
                                                indexing="ij")).flatten(1)  # 2×M²
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (m - 1)
            self.register_buffer("relative_position_index",
                                 (rel[..., 0] * (2 * m - 1) + rel[..., 1]).flatten(),
                                 persistent=False)
        else:
            self.relative_position_bias_table = None

    def _bias(self, n: int, h: int, w: int, shift: tuple[int, int]) -> torch.Tensor | None:
        """The additive bias on the (N·nW)×heads×M²×M² scores, where there is one: the
        relative position bias (1×heads×M²×M²) plus the shift mask ((N·nW)×1×M²×M²)."""
        bias, m = None, self.window
        if self.relative_position_bias_table is not None:
            table = self.relative_position_bias_table[self.relative_position_index]
            bias = table.view(m * m, m * m, -1).permute(2, 0, 1).unsqueeze(0)
        if any(shift):
            mask = _shift_mask(h, w, m, shift).unsqueeze(1).repeat(n, 1, 1, 1)
            bias = mask if bias is None else bias + mask
        return bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c3 = x.shape
        d, m = c3 // 3, self.window
        # Swin: no shift along a side the window covers (torchvision's rule)
        shift = (self.shift if m and m < h else 0, self.shift if m and m < w else 0)
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        if m and self.partition == "grid":  # MaxViT: the tokens H/M, W/M apart together
            x = x.view(n, m, h // m, m, w // m, c3).permute(0, 2, 4, 1, 3, 5)
            x = x.reshape(-1, m * m, c3)
        elif m:  # N×H×W×3D → (N·nW)×M²×3D
            x = x.view(n, h // m, m, w // m, m, c3).permute(0, 1, 3, 2, 4, 5)
            x = x.reshape(-1, m * m, c3)
        else:
            x = x.reshape(n, h * w, c3)
        b, t = x.shape[:2]
        q, k, v = x.reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        bias = self._bias(n, h, w, shift)
        if self.impl == "matmul":
            scores = (q * (d // self.heads) ** -0.5).matmul(k.transpose(-2, -1))
            if bias is not None:
                scores = scores + bias
            out = scores.softmax(-1).matmul(v)
        elif self.impl == "einsum":  # as MaxViT's RelativePositionalMultiHeadAttention
            scores = torch.einsum("bhid,bhjd->bhij", q, k * (d // self.heads) ** -0.5)
            if bias is not None:
                scores = scores + bias
            out = torch.einsum("bhij,bhjd->bhid", scores.softmax(-1), v)
        else:
            # torch's math backend: its CPU flash kernel has no FlopCounterMode formula; the
            # math one runs (and so is counted as) the two matmuls. fvcore sees one op either way
            with sdpa_kernel(SDPBackend.MATH):
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.transpose(1, 2).reshape(b, t, d)
        if not m:
            return out.view(n, h, w, d)
        if self.partition == "grid":
            return out.view(n, h // m, w // m, m, m, d).permute(0, 3, 1, 4, 2, 5).reshape(
                n, h, w, d)
        out = out.view(n, h // m, w // m, m, m, d).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, d)
        return torch.roll(out, shifts=shift, dims=(1, 2)) if any(shift) else out

    def extra_repr(self) -> str:
        return f"heads={self.heads}, window={self.window}, shift={self.shift}, impl={self.impl}"


def _attend_op(row: Row) -> str | None:
    return {"matmul": "matmul", "einsum": "einsum"}.get(row.layer.impl)


@torch_module(AttendLayer, fvcore_op=_attend_op)
def _attend(row: Row) -> nn.Module:
    layer = row.layer
    return Attend(layer.heads, layer.window, layer.shift, layer.relative_position_bias,
                  layer.impl, layer.partition)


@reads(Attend)
def _read_attend(module: Attend, x: Shape) -> dict:
    return {"type": "attend", "heads": module.heads, "window": module.window,
            "shift": module.shift, "impl": module.impl, "partition": module.partition,
            "relative_position_bias": module.relative_position_bias_table is not None}


@reads(nn.MultiheadAttention)
def _read_multihead_attention(module: nn.MultiheadAttention, x: Shape) -> dict:
    """Self-attention as torchvision's ViT runs it (``attn(x, x, x, need_weights=False)``):
    in-projection, SDPA, out-projection — the ``attention`` block with ``impl: sdpa``."""
    if not module._qkv_same_embed_dim or module.bias_k is not None or module.add_zero_attn:
        raise CostModelError("only plain self-attention is known (no kdim/vdim, add_bias_kv or "
                             "add_zero_attn)", field="attention")
    return {"type": "attention", "heads": module.num_heads,
            "qkv_bias": module.in_proj_bias is not None,
            "proj_bias": module.out_proj.bias is not None, "impl": "sdpa"}


def _read_shifted_window_attention(module: nn.Module, x: Shape) -> dict:
    """torchvision's ShiftedWindowAttention (Swin v1): window attention with a relative
    position bias, computed as explicit matmuls."""
    window, shift = list(module.window_size), list(module.shift_size)
    if window[0] != window[1] or shift[0] != shift[1]:
        raise CostModelError(f"only square windows and shifts are known, got window {window} "
                             f"and shift {shift}", field="window_size")
    return {"type": "attention", "heads": module.num_heads, "window": window[0],
            "shift": shift[0], "relative_position_bias": True, "impl": "matmul",
            "qkv_bias": module.qkv.bias is not None, "proj_bias": module.proj.bias is not None}


def _read_partition_attention(module: nn.Module, x: Shape) -> dict:
    """torchvision's PartitionAttentionLayer (MaxViT): on an N×C×H×W map, a pre-norm
    attention residual and a pre-norm MLP residual over 7×7 partitions (window: neighbours;
    grid: tokens H/7, W/7 apart), einsum products with a relative position bias. torchvision
    runs them on the partitioned tokens; each per-token layer costs the same on the map
    (channels last), so only the attention partitions it (as specs/maxvit_t.yaml says)."""
    norm, attn, drop = module.attn_layer
    mlp = list(module.mlp_layer)
    kinds = [type(m).__name__ for m in mlp]
    if kinds[:2] != ["LayerNorm", "Linear"] or kinds[-2:] != ["Linear", "Dropout"] \
            or len(mlp) != 5 or type(attn).__name__ != "RelativePositionalMultiHeadAttention":
        raise CostModelError(f"a PartitionAttentionLayer of {kinds} is not torchvision's MaxViT "
                             "layer", field="mlp_layer")
    window = module.p if module.partition_type == "window" else module.g
    token = Shape(x.c, 1, 1, flat=True)

    def per_token(m: nn.Module, at: Shape = token) -> dict:
        fields = reader_for(m)(m, at)
        return {**fields, "channels_last": True} if fields["type"] in ("linear", "layer_norm") \
            else fields

    hidden = Shape(mlp[1].out_features, 1, 1, flat=True)
    return {"type": "sequential", "layers": [
        {"name": "to_channels_last", "type": "permute", "to": "channels_last"},
        {"name": "attn_layer", "type": "residual", "layers": [
            {"name": "0", **per_token(norm)},
            {"name": "1", "type": "attention", "heads": attn.n_heads, "window": window,
             "partition": module.partition_type, "relative_position_bias": True,
             "impl": "einsum", "pad": False, "qkv_bias": attn.to_qkv.bias is not None,
             "proj_bias": attn.merge.bias is not None},
            {"name": "2", **per_token(drop)}]},
        {"name": "mlp_layer", "type": "residual", "layers": [
            {"name": str(i), **per_token(m, hidden if i in (2, 3) else token)}
            for i, m in enumerate(mlp)]},
        {"name": "to_channels_first", "type": "permute", "to": "channels_first"}]}


TORCH_READERS_BY_NAME: dict[str, Callable[[nn.Module, Shape], dict]] = {
    "torchvision.models.swin_transformer.ShiftedWindowAttention": _read_shifted_window_attention,
    "torchvision.models.maxvit.PartitionAttentionLayer": _read_partition_attention,
}
"""Readers of torch module classes from packages that need not be importable here
(torchvision), by ``module.qualname`` of the class: looked up like TORCH_READERS
(``reader_for``)."""


def reader_for(module: nn.Module) -> Callable[[nn.Module, Shape], dict] | None:
    """The reader of ``module``: by its class or a class it derives from, in TORCH_READERS
    or, by name, in TORCH_READERS_BY_NAME; None if there is none."""
    for cls in type(module).__mro__:
        if cls in TORCH_READERS:
            return TORCH_READERS[cls]
        found = TORCH_READERS_BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
        if found is not None:
            return found
    return None
