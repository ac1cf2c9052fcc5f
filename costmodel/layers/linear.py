"""Fully connected layer."""

from __future__ import annotations

from typing import Literal

from costmodel.errors import ShapeError
from costmodel.layers.base import Channels, ChannelScaling, Context, Cost, Primitive
from costmodel.shape import Shape


def linear_cost(n_in: int, n_out: int, bias: bool) -> Cost:
    """Cost of a fully connected layer on a vector.

    FLOPs  = n_in·n_out            (bias adds not counted, as in the papers and fvcore)
    params = n_in·n_out + n_out·[bias]
    MAC    = n_in + n_out + params
    """
    if n_out < 1:
        raise ShapeError(f"would have {n_out} outputs", field="out")
    params = n_in * n_out + (n_out if bias else 0)
    return Cost(out=Shape(n_out, 1, 1, flat=True), flops=n_in * n_out, fvcore_flops=n_in * n_out,
                params=params, mac=n_in + n_out + params, weight_mac=params)


def pixelwise_linear_cost(x: Shape, n_out: int, bias: bool) -> Cost:
    """Cost of a fully connected layer applied at every position of a C×H×W map (channels
    last: ConvNeXt's pointwise layers, the same arithmetic as a 1×1 conv).

    FLOPs  = C_in·C_out·H·W   (fvcore's aten::linear: every input element times C_out)
    params = C_in·C_out + C_out·[bias]
    MAC    = C_in·H·W + C_out·H·W + params
    """
    if n_out < 1:
        raise ShapeError(f"would have {n_out} outputs", field="out")
    out = Shape(n_out, x.h, x.w)
    params = x.c * n_out + (n_out if bias else 0)
    madds = x.c * n_out * x.hw
    return Cost(out=out, flops=madds, fvcore_flops=madds, params=params,
                mac=x.numel + out.numel + params, weight_mac=params)


class Linear(Primitive):
    """Fully connected layer on a flattened vector; ``out`` defaults to the model's classes.

    ``channels_last: true`` applies it at every position of a C×H×W map instead (the output is
    ``out``×H×W): its torch module is a plain nn.Linear, which acts on the last dim, so at
    run time it takes the N×H×W×C tensor of a ``permute`` to channels_last (and a ``permute``
    to channels_first must follow before any conv). Without it a map is refused, which catches
    a forgotten ``flatten``."""

    type: Literal["linear"] = "linear"
    out: Channels = "classes"
    bias: bool = True
    channels_last: bool = False
    channel_scaling: ChannelScaling = "scale"
    category = "fc"
    operator = "linear"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        n_out = ctx.channels(self.out, self.channel_scaling)
        if not x.flat:
            if self.channels_last:
                return pixelwise_linear_cost(x, n_out, self.bias)
            raise ShapeError(f"needs a flattened vector, got a {x} feature map: add a 'flatten' "
                             "layer (after a 'global_pool') before it, or set channels_last: "
                             "true for a linear at every position (after a 'permute')")
        return linear_cost(x.c, n_out, self.bias)
