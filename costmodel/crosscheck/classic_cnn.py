"""Torch modules and readers of the classic CNNs' vocabulary: convs (and asymmetric 'same'
padding), transposed convs, linear, batch and layer norm, activations, pooling, PReLU,
upsampling, flatten, channel shuffle, identity and dropout, channel slices, SkipNet's LSTM
steps and gates, and the stand-in for an unknown op — each ``@torch_module`` beside its
``@reads``, registered on ``costmodel.crosscheck.builder``'s tables, which imports this module
once it is whole."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from costmodel.crosscheck.builder import (SharedWeights, _op, _side, _unread, reads,
                                          reads_by_name, torch_module)
from costmodel.engine import Row
from costmodel.layers.adaptive_pool import AdaptivePool
from costmodel.layers.conv import Conv, DepthwiseConv
from costmodel.layers.deconv import Deconv
from costmodel.layers.elementwise import Activation, Identity
from costmodel.layers.linear import Linear
from costmodel.layers.lstm import LSTM, lstm_cost
from costmodel.layers.norm import BatchNorm, LayerNorm
from costmodel.layers.pool import GlobalPool, Pool
from costmodel.layers.prelu import PReLU
from costmodel.layers.reshape import ChannelShuffle, Flatten, Upsample
from costmodel.layers.skipnet import GateDecision as GateDecisionLayer
from costmodel.layers.skipnet import RNNGate as RNNGateLayer
from costmodel.layers.slicing import ChannelSlice as ChannelSliceLayer
from costmodel.layers.unknown import Unknown
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


@reads_by_name("torchvision.models.convnext.LayerNorm2d")
def _read_torchvision_layer_norm_2d(m: nn.LayerNorm, x: Shape) -> dict:
    """nn.LayerNorm over the channels of each pixel, as LayerNorm2d above."""
    return _read_layer_norm(LayerNorm2d(m.normalized_shape, m.eps, m.elementwise_affine,
                                        bias=m.bias is not None), x)


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
