"""Pooling: windowed max/avg (kh×kw windows, per-axis stride) and global pooling."""

from __future__ import annotations

from typing import Literal

from costmodel.errors import ShapeError
from costmodel.layers.base import Context, Cost, Primitive, require_map
from costmodel.layers.conv import NonNeg2, Size2
from costmodel.layers.traits import kernel_text, stride_text
from costmodel.shape import Shape, pair, spatial_out


def pool_cost(x: Shape, out: Shape, fvcore_flops: int = 0) -> Cost:
    """Cost of a pooling layer.

    FLOPs  = 0 in the papers' scope (no multiply-adds); fvcore counts only adaptive average
             pooling, as one FLOP per input element
    params = 0
    MAC    = C·H·W + C·H_out·W_out
    """
    return Cost(out=out, fvcore_flops=fvcore_flops, mac=x.numel + out.numel)


class Pool(Primitive):
    """``max_pool`` / ``avg_pool`` over kh×kw windows; ``stride`` defaults to the window, so
    ``kernel: [2, 1]`` halves H alone (EffNet's separable pooling)."""

    type: Literal["max_pool", "avg_pool"]
    kernel: Size2 = 2
    stride: Size2 | None = None
    padding: NonNeg2 = 0
    ceil_mode: bool = False
    operator = "pooling"

    @property
    def mode(self) -> Literal["max", "avg"]:
        return "max" if self.type == "max_pool" else "avg"

    def describe(self, x: Shape) -> str:
        """'max_pool 2×1'; the stride shown where it is not the window."""
        s = "" if self.stride is None or self.stride == self.kernel else stride_text(self.stride)
        return f"{self.type} {kernel_text(self.kernel)}{s}"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        k = pair(self.kernel)
        s = k if self.stride is None else pair(self.stride)
        pad = pair(self.padding)
        if pad[0] > k[0] // 2 or pad[1] > k[1] // 2:
            # torch refuses this (padding would make windows of padding alone)
            raise ShapeError(f"padding {pad[0]}×{pad[1]} is more than half the "
                             f"{k[0]}×{k[1]} window", field="padding")
        h, w = spatial_out(x, k, s, self.padding, ceil_mode=self.ceil_mode)
        return pool_cost(x, Shape(x.c, h, w))

    def window(self) -> int:
        """Elements each output reads (kh·kw): the latency model's work per output."""
        kh, kw = pair(self.kernel)
        return kh * kw


class GlobalPool(Primitive):
    """Pools each channel to 1×1 (torch's AdaptiveAvgPool2d(1) / AdaptiveMaxPool2d(1))."""

    type: Literal["global_pool"] = "global_pool"
    mode: Literal["avg", "max"] = "avg"
    operator = "pooling"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        return pool_cost(x, Shape(x.c, 1, 1), x.numel if self.mode == "avg" else 0)

    def latency_class(self) -> str:
        return "global_pool"
