"""Layer scale (CaiT, ConvNeXt): a learnable multiply per channel."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from costmodel.layers.base import Context, Cost, Primitive
from costmodel.shape import Shape


def layer_scale_cost(x: Shape) -> Cost:
    """Cost of multiplying each channel by its own learned scale γ_c.

    FLOPs  = 0 in the papers' scope (a multiply, not a multiply-add of a weight matrix); fvcore
             0 too (aten::mul has no rule)
    params = C
    MAC    = 2·C·H·W + C   (map in and out, γ)
    """
    return Cost(out=x, params=x.c, mac=2 * x.numel + x.c, weight_mac=x.c)


class LayerScale(Primitive):
    """ConvNeXt's layer scale: y = γ ⊙ x with γ of C learned values (torchvision's CNBlock
    holds γ as its ``layer_scale`` parameter, C×1×1, multiplied after the permute back to
    channels first). ``init`` is γ's starting value (1e-6 in ConvNeXt), kept for the torch
    builder. On a vector, γ has shape C."""

    type: Literal["layer_scale"] = "layer_scale"
    init: float = Field(default=1e-6, allow_inf_nan=False)
    operator = "elementwise"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return layer_scale_cost(x)

    def latency_class(self) -> str:
        return "relu"  # one multiply per element: as cheap as a clamp, no exp
