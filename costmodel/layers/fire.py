"""SqueezeNet's Fire module (Iandola et al. 2016), as torchvision builds it."""

from __future__ import annotations

from typing import Literal

from costmodel.layers.base import Block, Context, LayerSpec, derived
from costmodel.layers.conv import Conv, PosInt
from costmodel.layers.elementwise import Activation
from costmodel.layers.structure import Parallel
from costmodel.shape import Shape


def _conv_relu(name: str, out: int, kernel: int, bias: bool) -> list[LayerSpec]:
    return [derived(Conv, name=name, out=out, kernel=kernel, bias=bias, channel_scaling="fixed"),
            derived(Activation, name=f"{name}_act", type="relu", fn="relu")]


class Fire(Block):
    """squeeze: 1×1 conv to ``squeeze`` channels → ReLU, then expand: a 1×1 conv
    (``expand1x1``) and a 3×3 conv (``expand3x3``, padding 1) side by side, each → ReLU,
    concatenated. Convs have a bias (torchvision, Caffe).

    params = (C_in + 1)·s + (s + 1)·e1 + (9s + 1)·e3 — fire2: (96+1)·16 + (16+1)·64 +
    (9·16+1)·64 = 11,920.
    """

    type: Literal["fire"] = "fire"
    squeeze: PosInt
    expand1x1: PosInt
    expand3x3: PosInt
    bias: bool = True

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        s, e1, e3 = (ctx.channels(c) for c in (self.squeeze, self.expand1x1, self.expand3x3))
        return [
            *_conv_relu("squeeze", s, 1, self.bias),
            derived(Parallel, name="expand", merge="concat",
                    branch_names=["expand1x1", "expand3x3"],
                    branches=[_conv_relu("conv", e1, 1, self.bias),
                              _conv_relu("conv", e3, 3, self.bias)]),
        ]
