"""Transposed 2-D convolution (ESPNet's up-sampling)."""

from __future__ import annotations

from typing import Literal


from costmodel.errors import ShapeError
from costmodel.layers.base import (Channels, ChannelScaling, Context, Cost, Primitive,
                                   check_groups, require_map)
from costmodel.layers.conv import NonNeg2, PosInt, Size2
from costmodel.shape import Shape, pair


def deconv2d_cost(x: Shape, c_out: int, kernel: tuple[int, int], stride: tuple[int, int],
                  padding: tuple[int, int], output_padding: tuple[int, int],
                  dilation: tuple[int, int], groups: int, bias: bool) -> Cost:
    """Cost of a transposed convolution (torch's ConvTranspose2d).

    H_out  = (H−1)·s − 2p + d·(k−1) + output_padding + 1, per axis
    FLOPs  = C_in·(C_out/g)·k_h·k_w · H·W   (every input pixel scatters a k_h×k_w×C_out/g patch;
             fvcore's rule for a transposed conv: weights × input pixels; bias adds not counted)
    params = C_in·(C_out/g)·k_h·k_w + C_out·[bias]
    MAC    = C_in·H·W + C_out·H_out·W_out + params
    """
    require_map(x)
    check_groups(x.c, c_out, groups)
    size = []
    for axis, n in enumerate((x.h, x.w)):
        out = ((n - 1) * stride[axis] - 2 * padding[axis] + dilation[axis] * (kernel[axis] - 1)
               + output_padding[axis] + 1)
        if out < 1:
            raise ShapeError(f"the {'HW'[axis]} side shrinks below 1: input {x}, kernel "
                             f"{kernel[0]}×{kernel[1]}, padding {padding}")
        size.append(out)
    out = Shape(c_out, size[0], size[1])
    weights = x.c * (c_out // groups) * kernel[0] * kernel[1]  # each input channel's filters
    params = weights + (c_out if bias else 0)
    madds = weights * x.hw  # one multiply-add per weight per input pixel
    return Cost(out=out, flops=madds, fvcore_flops=madds, params=params,
                mac=x.numel + out.numel + params, weight_mac=params)


class Deconv(Primitive):
    """Transposed convolution to ``out`` channels; ``kernel: 2, stride: 2`` doubles H and W."""

    type: Literal["deconv", "conv_transpose"] = "deconv"
    out: Channels
    kernel: Size2 = 2
    stride: Size2 = 2
    padding: NonNeg2 = 0
    output_padding: NonNeg2 = 0
    dilation: Size2 = 1
    groups: PosInt = 1
    bias: bool = False
    channel_scaling: ChannelScaling = "scale"
    category = "conv"
    operator = "conv"  # a G3 operator, as a conv: a weighted kernel of its own

    def out_channels(self, ctx: Context) -> int:
        return ctx.channels(self.out, self.channel_scaling)

    def cost(self, x: Shape, ctx: Context) -> Cost:
        op, s, d = pair(self.output_padding), pair(self.stride), pair(self.dilation)
        if any(op[i] >= max(s[i], d[i]) for i in (0, 1)):  # torch's rule
            raise ShapeError(f"output_padding {op} must be smaller than the stride {s} or the "
                             f"dilation {d}", field="output_padding")
        return deconv2d_cost(x, self.out_channels(ctx), pair(self.kernel), s,
                             pair(self.padding), op, d, self.groups, self.bias)

    def latency_class(self) -> str:
        # torch runs it as a GEMM and a col2im scatter, not as a conv: measured 20→20 2×2/2 on
        # 256×512 at 1 G multiply-adds/s, where a 3×3 conv of as many runs at 30
        return "deconv"


