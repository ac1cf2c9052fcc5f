"""EffNet's block (Freeman et al. 2018), as in the keras-effnet reference implementation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from costmodel.layers.base import Block, Context, LayerSpec, derived
from costmodel.layers.compose import PostOrder, norm_act
from costmodel.layers.conv import Conv, DepthwiseConv, PosInt
from costmodel.layers.elementwise import ActivationFn
from costmodel.layers.pool import Pool
from costmodel.shape import Shape


class EffNetBlock(Block):
    """1×1 conv to the bottleneck → dw 1×3 → 2×1 max pool (halves H) → dw 3×1 →
    2×1 conv to ``out`` with stride (1, 2) (halves W), each conv followed by act and BN.

    The bottleneck has ``out`` // ``bottleneck`` channels (the paper's bottleneck factor 2);
    the first depthwise conv multiplies them by ``depth_multiplier``. Separable pooling makes
    the depthwise part cost 3·Df²·M + 3·(Df²/2)·M = 1.5·(3·Df²·M), half a 3×3 depthwise conv.
    Defaults follow keras-effnet: LeakyReLU (Keras' slope 0.3) then batch norm.
    """

    type: Literal["effnet_block"] = "effnet_block"
    out: PosInt
    bottleneck: PosInt = 2
    depth_multiplier: PosInt = 1
    activation: ActivationFn = "leaky_relu"
    negative_slope: float = Field(default=0.3, ge=0)
    order: PostOrder = "act_bn"
    parts = {"pw": "pw", "dw1": "dw1", "dw2": "dw2", "conv": "conv"}
    """The 1×1 bottleneck conv, the 1×3 and 3×1 depthwise convs, the final 2×1 conv."""

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        out = ctx.channels(self.out)
        mid = max(out // self.bottleneck, 1)

        def after(prefix: str) -> list[LayerSpec]:
            return norm_act(prefix, self.activation, self.order, self.negative_slope)

        pw, dw1, dw2, conv = (self.parts[k] for k in ("pw", "dw1", "dw2", "conv"))
        return [
            derived(Conv, name=pw, out=mid, kernel=1, channel_scaling="fixed"), *after(pw),
            derived(DepthwiseConv, name=dw1, kernel=[1, 3], multiplier=self.depth_multiplier),
            *after(dw1),
            derived(Pool, name="pool", type="max_pool", kernel=[2, 1], stride=[2, 1]),
            derived(DepthwiseConv, name=dw2, kernel=[3, 1]), *after(dw2),
            derived(Conv, name=conv, out=out, kernel=[2, 1], stride=[1, 2], padding="same",
                    channel_scaling="fixed"),
            *after(conv),
        ]
