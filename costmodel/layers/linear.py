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


class Linear(Primitive):
    """Fully connected layer on a flattened vector; ``out`` defaults to the model's classes."""

    type: Literal["linear"] = "linear"
    out: Channels = "classes"
    bias: bool = True
    channel_scaling: ChannelScaling = "scale"
    category = "fc"
    operator = "linear"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        if not x.flat:
            raise ShapeError(f"needs a flattened vector, got a {x} feature map: add a 'flatten' "
                             "layer (after a 'global_pool') before it")
        return linear_cost(x.c, ctx.channels(self.out, self.channel_scaling), self.bias)
