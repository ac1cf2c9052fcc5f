"""Normalization: batch norm, and layer norm over the channels of each pixel."""

from __future__ import annotations

from typing import Literal

from costmodel.layers.base import Context, Cost, Primitive
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
    """Layer normalization over the channels at each position (channels-first, as
    torchvision's LayerNorm2d in ConvNeXt). Unlike batch norm it cannot be folded into the
    preceding conv, so its parameters always count."""

    type: Literal["layer_norm"] = "layer_norm"
    affine: bool = True
    operator = "normalization"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return layer_norm_cost(x, self.affine)
