"""2-D convolution: dense, grouped, depthwise (with a depth multiplier)."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal, Union

from pydantic import Field

from costmodel.errors import ShapeError
from costmodel.layers.base import (Channels, ChannelScaling, Context, Cost, NonNegInt, PosInt,
                                   Primitive, check_groups)
from costmodel.layers.traits import kernel_text, stride_text
from costmodel.shape import Shape, pair, spatial_out

Size2 = Union[PosInt, Annotated[list[PosInt], Field(min_length=2, max_length=2)]]
"""An int, or [h, w] for a per-axis value (kernel 1×3 is ``[1, 3]``)."""
NonNeg2 = Union[NonNegInt, Annotated[list[NonNegInt], Field(min_length=2, max_length=2)]]
Padding = Union[NonNeg2, Literal["same", "valid"], None]
"""Symmetric padding per axis (int or [ph, pw]); ``same`` is TensorFlow's (output =
ceil(input/stride), the odd extra pixel after); ``valid`` is 0. Left out, it is
dilation·(kernel−1)//2 per axis, which keeps the size of odd kernels at stride 1."""


def default_padding(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    return (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2)


def conv2d_cost(x: Shape, c_out: int, kernel: tuple[int, int], stride: tuple[int, int],
                padding, dilation: tuple[int, int], groups: int, bias: bool) -> Cost:
    """Cost of a 2-D convolution.

    FLOPs  = C_out·H_out·W_out · (C_in/g)·k_h·k_w   (one multiply-add per weight per output pixel;
             bias adds are not counted, as in the papers and fvcore)
    params = C_out·(C_in/g)·k_h·k_w + C_out·[bias]
    MAC    = C_in·H·W + C_out·H_out·W_out + params   (ShuffleNet V2: for a 1×1 conv without
             bias, hw(c1+c2) + c1c2/g)
    """
    if c_out < 1:
        raise ShapeError(f"would have {c_out} output channels", field="out")
    check_groups(x.c, c_out, groups)
    h_out, w_out = spatial_out(x, kernel, stride, padding, dilation)
    out = Shape(c_out, h_out, w_out)
    weights = c_out * (x.c // groups) * kernel[0] * kernel[1]  # each filter sees C_in/g channels
    params = weights + (c_out if bias else 0)
    madds = out.numel * (x.c // groups) * kernel[0] * kernel[1]  # per output element: a filter
    return Cost(out=out, flops=madds, fvcore_flops=madds, params=params,
                mac=x.numel + out.numel + params, weight_mac=params)


def conv_category(c_in: int, groups: int, kernel: tuple[int, int]) -> str:
    """MobileNet's Table 2 groups: depthwise, 1×1 (pointwise, grouped or not), k×k."""
    if groups == c_in and c_in > 1:
        return "depthwise"
    if kernel == (1, 1):
        return "conv1x1"
    return "conv"


class _ConvFields(Primitive):
    operator = "conv"
    kernel: Size2 = 3
    stride: Size2 = 1
    padding: Padding = None
    dilation: Size2 = 1
    bias: bool = False
    """Convolutions default to no bias: in these networks a batch norm follows each one."""

    @cached_property
    def geometry(self) -> tuple[tuple[int, int], tuple[int, int], Any, tuple[int, int]]:
        """(kernel, stride, padding, dilation) as pairs, the default padding filled in."""
        k, d = pair(self.kernel), pair(self.dilation)
        p = default_padding(k, d) if self.padding is None else self.padding
        return k, pair(self.stride), p, d


class Conv(_ConvFields):
    """Standard or grouped convolution, ``out`` output channels."""

    type: Literal["conv"] = "conv"
    out: Channels
    groups: PosInt = 1
    channel_scaling: ChannelScaling = "scale"

    def out_channels(self, ctx: Context) -> int:
        return ctx.channels(self.out, self.channel_scaling)

    def cost(self, x: Shape, ctx: Context) -> Cost:
        k, s, p, d = self.geometry
        return conv2d_cost(x, self.out_channels(ctx), k, s, p, d, self.groups, self.bias)

    def category_of(self, x: Shape, ctx: Context) -> str:
        return conv_category(x.c, self.groups, self.geometry[0])

    def describe(self, x: Shape) -> str:
        """'conv 3×3/2', 'gconv 1×1 g4', or 'dw 3×3' where groups = C_in."""
        k, s = kernel_text(self.kernel), stride_text(self.stride)
        if conv_category(x.c, self.groups, self.geometry[0]) == "depthwise":
            return f"dw {k}{s}"
        g = self.groups
        return f"gconv {k}{s} g{g}" if g > 1 else f"conv {k}{s}"


class DepthwiseConv(_ConvFields):
    """Depthwise convolution: one k_h×k_w filter per input channel, ``multiplier`` outputs each
    (groups = C_in, C_out = multiplier·C_in)."""

    type: Literal["dwconv"] = "dwconv"
    multiplier: PosInt = 1
    elementwise = "depthwise"  # ShuffleNet V2 counts depthwise convs as element-wise (G4)

    def cost(self, x: Shape, ctx: Context) -> Cost:
        k, s, p, d = self.geometry
        return conv2d_cost(x, x.c * self.multiplier, k, s, p, d, x.c, self.bias)

    def category_of(self, x: Shape, ctx: Context) -> str:
        return "depthwise"

    def describe(self, x: Shape) -> str:
        mult = f" ×{self.multiplier}" if self.multiplier > 1 else ""
        return f"dw {kernel_text(self.kernel)}{stride_text(self.stride)}{mult}"
