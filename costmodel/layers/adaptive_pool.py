"""Adaptive pooling to a fixed output size (torchvision's AlexNet and VGG heads)."""

from __future__ import annotations

from typing import Literal

from costmodel.layers.base import Context, Cost, Primitive, require_map
from costmodel.layers.conv import Size2
from costmodel.layers.pool import pool_cost
from costmodel.shape import Shape, pair


class AdaptivePool(Primitive):
    """torch's AdaptiveAvgPool2d(size) / AdaptiveMaxPool2d(size): C×H×W → C×h×w. ``global_pool``
    is the 1×1 case. fvcore counts the average as one FLOP per input element, even where the
    pool is an identity (torchvision's AlexNet pools 6×6 to 6×6 at 224)."""

    type: Literal["adaptive_pool"] = "adaptive_pool"
    size: Size2
    mode: Literal["avg", "max"] = "avg"
    operator = "pooling"  # a G3 operator, as global_pool (its 1×1 case) always was

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        h, w = pair(self.size)
        return pool_cost(x, Shape(x.c, h, w), x.numel if self.mode == "avg" else 0)

    def latency_class(self) -> str:
        return "global_pool"  # a reduction over the map, as its 1×1 case
