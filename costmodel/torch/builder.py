"""An evaluated spec as a real ``torch.nn.Module``.

The module mirrors the evaluation tree (``Result.tree``): a ``Seq`` becomes an
``nn.Sequential``, a ``Branch`` a :class:`BranchModule`, a primitive row the torch module that
``PRIMITIVES`` builds for its type. Every module is named by the last segment of its layer
path, so ``dict(model.named_modules())`` is keyed by the spec's layer paths. A branch's split
and merge are functional ops inside its BranchModule (their rows, ``<branch>.split`` and
``<branch>.<merge>``, belong to the branch's module).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from costmodel.errors import CostModelError
from costmodel.evaluate import Branch, Node, Result, Row, Seq, name_of
from costmodel.layers.merge import channel_split
from costmodel.shape import pair, same_padding


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
    "multiply": lambda xs: functools.reduce(torch.mul, xs),  # broadcasts C×1×1 gates (SE)
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
        return MERGES[self.merge]([b(p) for b, p in zip(branches, parts)])

    def extra_repr(self) -> str:
        return f"merge={self.merge}" + (f", split={self.split}" if self.split else "")


# --- one torch module per primitive type -------------------------------------------------


def _conv(row: Row) -> nn.Module:
    layer, x = row.layer, row.inputs[0]
    kernel, stride, padding, dilation = layer.geometry
    groups = x.c if row.type == "dwconv" else layer.groups
    args = dict(in_channels=x.c, out_channels=row.out.c, kernel_size=kernel, stride=stride,
                dilation=dilation, groups=groups, bias=layer.bias)
    if padding == "same":
        (top, bottom), (left, right) = (same_padding(size, k, s, d) for size, k, s, d in
                                        zip((x.h, x.w), kernel, stride, dilation))
        if top != bottom or left != right:
            return PaddedConv2d(**args, pad=(left, right, top, bottom))
        padding = (top, left)
    return nn.Conv2d(**args, padding=(0, 0) if padding == "valid" else pair(padding))


def _linear(row: Row) -> nn.Module:
    return nn.Linear(row.inputs[0].c, row.out.c, bias=row.layer.bias)


def _batch_norm(row: Row) -> nn.Module:
    x = row.inputs[0]
    norm = nn.BatchNorm1d if x.flat else nn.BatchNorm2d
    return norm(x.c, affine=row.layer.affine)


def _pool(row: Row) -> nn.Module:
    layer = row.layer
    kernel = pair(layer.kernel)
    stride = kernel if layer.stride is None else pair(layer.stride)
    pool = nn.MaxPool2d if row.type == "max_pool" else nn.AvgPool2d
    return pool(kernel, stride, pair(layer.padding), ceil_mode=layer.ceil_mode)


def _global_pool(row: Row) -> nn.Module:
    return nn.AdaptiveAvgPool2d(1) if row.layer.mode == "avg" else nn.AdaptiveMaxPool2d(1)


def _upsample(row: Row) -> nn.Module:
    sh, sw = pair(row.layer.scale)
    mode = row.layer.mode
    return nn.Upsample(scale_factor=(float(sh), float(sw)), mode=mode,
                       align_corners=False if mode == "bilinear" else None)


def _leaky_relu(row: Row) -> nn.Module:
    return nn.LeakyReLU(row.layer.negative_slope)


def _fixed(module: Callable[[], nn.Module]) -> Callable[[Row], nn.Module]:
    return lambda row: module()


@dataclass(frozen=True)
class TorchLayer:
    """How a primitive type runs in torch, and under which fvcore operator its FLOPs count.

    ``build`` makes the module from the layer's row (its spec and input shape); ``fvcore_op``
    names the operator fvcore's by_operator() reports its FLOPs under (None: fvcore counts the
    module's ops as nothing)."""

    build: Callable[[Row], nn.Module]
    fvcore_op: Callable[[Row], str | None] = lambda row: None


PRIMITIVES: dict[str, TorchLayer] = {
    "conv": TorchLayer(_conv, lambda row: "conv"),
    "dwconv": TorchLayer(_conv, lambda row: "conv"),
    "linear": TorchLayer(_linear, lambda row: "linear"),
    "bn": TorchLayer(_batch_norm, lambda row: "batch_norm"),
    "batch_norm": TorchLayer(_batch_norm, lambda row: "batch_norm"),
    "relu": TorchLayer(_fixed(nn.ReLU)),
    "relu6": TorchLayer(_fixed(nn.ReLU6)),
    "leaky_relu": TorchLayer(_leaky_relu),
    "hswish": TorchLayer(_fixed(nn.Hardswish)),
    "hsigmoid": TorchLayer(_fixed(nn.Hardsigmoid)),
    "swish": TorchLayer(_fixed(nn.SiLU)),
    "silu": TorchLayer(_fixed(nn.SiLU)),
    "sigmoid": TorchLayer(_fixed(nn.Sigmoid)),
    "tanh": TorchLayer(_fixed(nn.Tanh)),
    "max_pool": TorchLayer(_pool),
    "avg_pool": TorchLayer(_pool),
    "global_pool": TorchLayer(
        _global_pool, lambda row: "adaptive_avg_pool2d" if row.layer.mode == "avg" else None),
    "flatten": TorchLayer(_fixed(lambda: nn.Flatten(1))),
    "channel_shuffle": TorchLayer(lambda row: nn.ChannelShuffle(row.layer.groups)),
    "shuffle": TorchLayer(lambda row: nn.ChannelShuffle(row.layer.groups)),
    "upsample": TorchLayer(_upsample, lambda row: f"upsample_{row.layer.mode}2d"),
    "dropout": TorchLayer(lambda row: nn.Dropout(row.layer.p)),
    "identity": TorchLayer(_fixed(nn.Identity)),
}
"""Every primitive's row type (an activation's row type is its ``fn``) → its torch module."""


def torch_layer(row: Row) -> TorchLayer:
    try:
        return PRIMITIVES[row.type]
    except KeyError:
        raise CostModelError(f"layer type '{row.type}' has no torch module yet (known: "
                             f"{', '.join(sorted(PRIMITIVES))})", path=row.path) from None


# --- the tree ---------------------------------------------------------------------------


def _add(container: nn.Module, name: str, module: nn.Module, path: str) -> None:
    try:
        container.add_module(name, module)
    except KeyError:  # torch refuses a submodule name that is already an attribute
        raise CostModelError(f"torch cannot name a submodule '{name}' (an attribute of "
                             f"{type(container).__name__}); rename the layer",
                             path=f"{path}.{name}" if path else name, field="name") from None


def build_node(node: Node) -> nn.Module:
    if isinstance(node, Row):
        return torch_layer(node).build(node)
    if isinstance(node, Seq):
        module = nn.Sequential()
        for child in node.children:
            _add(module, name_of(child.path), build_node(child), node.path)
        return module
    if isinstance(node, Branch):
        split = None
        if node.split is not None:
            parts, _ = channel_split(node.split.inputs[0], node.layer.branching()[3])
            split = [p.c for p in parts]
        module = BranchModule(node.merge.type, split)
        for name, seq in zip(node.names, node.branches):
            _add(module, name, build_node(seq), node.path)
        return module
    raise TypeError(f"not a node: {node!r}")  # pragma: no cover


def build(result: Result) -> nn.Module:
    """The evaluated network as an ``nn.Module`` in eval mode, its submodules named by layer
    path."""
    return build_node(result.tree).eval()


def example_input(result: Result, batch: int = 1) -> torch.Tensor:
    """A random input of the evaluated size: N×C×H×W."""
    h, w = result.input
    return torch.randn(batch, result.in_channels, h, w)
