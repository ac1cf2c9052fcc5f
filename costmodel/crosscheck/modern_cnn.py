"""Torch modules and readers of the modern CNNs' vocabulary (#14): ``permute`` and the
channels-last ``linear`` / ``layer_norm``, ``layer_scale``, ``mean``, ``group_norm``,
``stochastic_depth`` — registered on ``costmodel.crosscheck.builder``'s tables (``@torch_module``
and ``@reads``), which imports this module once it is whole."""

from __future__ import annotations

import torch
from torch import nn

from costmodel.crosscheck.builder import (_op, reads,
                                          reads_by_name, torch_module)
from costmodel.engine import Result, Row, Seq, nodes
from costmodel.errors import CostModelError
from costmodel.shape import Shape


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


@reads_by_name("torchvision.ops.misc.Permute")  # ConvNeXt's CNBlock
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


@reads_by_name("torchvision.ops.stochastic_depth.StochasticDepth")
def _read_torchvision_stochastic_depth(module: nn.Module, x: Shape) -> dict:
    return {"type": "identity"}  # nothing at inference

