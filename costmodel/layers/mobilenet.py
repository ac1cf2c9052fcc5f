"""MobileNet V1's depthwise-separable block."""

from __future__ import annotations

from typing import Literal


from costmodel.layers.base import Block, Context, LayerSpec, derived
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, DepthwiseConv, PosInt
from costmodel.layers.elementwise import ActivationFn
from costmodel.shape import Shape


class DepthwiseSeparable(Block):
    """k×k depthwise conv (stride) → BN → act → 1×1 conv to ``out`` → BN → act.

    Cost (MobileNet eq. 5): Dk²·M·Df² + M·N·Df², i.e. 1/N + 1/Dk² of a standard conv.
    """

    type: Literal["dwsep", "mobilenet_block"] = "dwsep"
    out: PosInt
    kernel: PosInt = 3
    stride: PosInt = 1
    activation: ActivationFn = "relu"

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        return [
            derived(DepthwiseConv, name="dw", kernel=self.kernel, stride=self.stride),
            *norm_act("dw", self.activation),
            derived(Conv, name="pw", out=ctx.channels(self.out), kernel=1, channel_scaling="fixed"),
            *norm_act("pw", self.activation),
        ]
