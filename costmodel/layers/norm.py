"""Normalization: batch norm, layer norm over the channels of each pixel, group norm."""

from __future__ import annotations

from typing import Literal

from costmodel.errors import ShapeError
from costmodel.layers.base import Context, Cost, PosInt, Primitive
from costmodel.shape import Shape


def batch_norm_cost(x: Shape, affine: bool) -> Cost:
    """Cost of inference-mode batch norm.

    FLOPs  = 0 in the papers' scope (folded into the preceding conv at inference);
             fvcore (eval mode): C·H·W·(2 if affine else 1)
    params = 2·C (γ, β) if affine; the running mean and variance (2·C) are buffers
    MAC    = 2·C·H·W + 2·C·[affine] + 2·C   (map in and out, γ/β, running statistics)
    """
    params = 2 * x.c if affine else 0
    return Cost(out=x, fvcore_flops=x.numel * (2 if affine else 1), params=params,
                mac=2 * x.numel + params + 2 * x.c, weight_mac=params + 2 * x.c)


class BatchNorm(Primitive):
    """Batch normalization over channels (eval mode)."""

    type: Literal["bn", "batch_norm"] = "bn"
    affine: bool = True
    category = "bn"
    operator = "normalization"
    elementwise = "bn"  # G4 reports it beside the element-wise share (foldable into a conv)

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return batch_norm_cost(x, self.affine)


def layer_norm_cost(x: Shape, affine: bool) -> Cost:
    """Cost of a layer norm over the C channels of each pixel (torchvision's LayerNorm2d, as in
    ConvNeXt; on a vector, nn.LayerNorm(C)).

    FLOPs  = 0 in the papers' scope (no multiply-adds of a weight); fvcore (aten::layer_norm):
             C·H·W·(5 if affine else 4), its own rough estimate
    params = 2·C (γ, β) if affine; no running statistics (they are computed per input)
    MAC    = 2·C·H·W + params   (map in and out, γ/β)
    """
    params = 2 * x.c if affine else 0
    return Cost(out=x, fvcore_flops=x.numel * (5 if affine else 4), params=params,
                mac=2 * x.numel + params, weight_mac=params)


class LayerNorm(Primitive):
    """Layer normalization over the channels at each position. Unlike batch norm it cannot be
    folded into the preceding conv, so its parameters always count.

    ``channels_last: false`` (default): its torch module takes the N×C×H×W map (torchvision's
    LayerNorm2d, ConvNeXt's stem and downsampling). ``channels_last: true``: a plain
    nn.LayerNorm(C) over the last dim of an N×H×W×C tensor, i.e. after a ``permute`` to
    channels_last (ConvNeXt's CNBlock). The shape stays C×H×W and the cost is the same
    (``layer_norm_cost``): only the memory order differs."""

    type: Literal["layer_norm"] = "layer_norm"
    affine: bool = True
    channels_last: bool = False
    operator = "normalization"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return layer_norm_cost(x, self.affine)

    def latency_class(self) -> str:
        return "norm"  # statistics per position at inference, not batch norm's affine


def group_norm_cost(x: Shape, groups: int, affine: bool) -> Cost:
    """Cost of a group norm (nn.GroupNorm): the C channels in ``groups`` groups, each group
    normalized over its C/groups channels and every position; γ and β per channel.

    FLOPs  = 0 in the papers' scope; fvcore (aten::group_norm, the same rule as layer norm):
             C·H·W·(5 if affine else 4)
    params = 2·C (γ, β) if affine; no running statistics
    MAC    = 2·C·H·W + params
    """
    if x.c % groups:
        raise ShapeError(f"{x.c} channels are not divisible by groups={groups}", field="groups")
    return layer_norm_cost(x, affine)


class GroupNorm(Primitive):
    """Group normalization (Wu & He, 2018): ``groups`` = 1 normalizes over C·H·W (the
    channels and positions together), ``groups`` = C is instance norm with per-channel γ/β.
    Its torch module is nn.GroupNorm(groups, C, affine=affine), on a map or a vector."""

    type: Literal["group_norm"] = "group_norm"
    groups: PosInt
    affine: bool = True
    operator = "normalization"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return group_norm_cost(x, self.groups, self.affine)

    def latency_class(self) -> str:
        return "norm"  # statistics per group at inference, not batch norm's affine
