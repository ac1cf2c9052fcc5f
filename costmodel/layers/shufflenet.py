"""ShuffleNet V1's unit (Zhang et al. 2017, Fig. 2 b/c)."""

from __future__ import annotations

from typing import Literal

from costmodel.errors import ShapeError
from costmodel.layers.base import Block, Context, LayerSpec, derived
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, DepthwiseConv, PosInt
from costmodel.layers.elementwise import Activation
from costmodel.layers.pool import Pool
from costmodel.layers.reshape import ChannelShuffle
from costmodel.layers.structure import Parallel, Residual
from costmodel.shape import Shape


class ShuffleUnit(Block):
    """1×1 group conv → BN → ReLU → channel shuffle → k×k depthwise (stride) → BN →
    1×1 group conv → BN, then

    - stride 1: add the input (needs C_in = ``out``), ReLU;
    - stride 2: concat with a 3×3/2 average pool of the input (the main branch makes
      ``out`` − C_in channels), ReLU.

    The bottleneck has ``out`` // ``bottleneck_ratio`` channels (1/4 in the paper). The first
    1×1 conv is dense when ``group_first_pw`` is false (the paper's first unit of Stage 2).
    Cost per unit (the paper's §3.2): hw(2cm/g + 9m) multiply-adds.
    """

    type: Literal["shufflenet_unit"] = "shufflenet_unit"
    out: PosInt
    groups: PosInt = 3
    stride: Literal[1, 2] = 1
    kernel: PosInt = 3
    group_first_pw: bool = True
    bottleneck_ratio: PosInt = 4
    parts = {"pw1": "gconv1", "dw": "dw", "pw2": "gconv2"}
    """The first 1×1 (group) conv, the depthwise conv, the second 1×1 group conv."""

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        out = ctx.channels(self.out)
        mid = out // self.bottleneck_ratio
        if self.stride == 2:
            if out <= x.c:
                raise ShapeError(f"a stride-2 unit concatenates its {x.c} input channels, so "
                                 f"'out' ({out}) must be larger", field="out")
            main_out = out - x.c
        else:
            if out != x.c:
                raise ShapeError(f"a stride-1 unit adds its input, so 'out' ({out}) must equal "
                                 f"the {x.c} input channels (use stride 2 to change width)",
                                 field="out")
            main_out = out
        g1 = self.groups if self.group_first_pw else 1
        pw1, dw, pw2 = (self.parts[k] for k in ("pw1", "dw", "pw2"))
        main = [
            derived(Conv, name=pw1, out=mid, kernel=1, groups=g1, channel_scaling="fixed"),
            *norm_act(pw1, "relu"),
            *([derived(ChannelShuffle, name="shuffle", groups=self.groups)]
              if self.groups > 1 else []),
            derived(DepthwiseConv, name=dw, kernel=self.kernel, stride=self.stride),
            *norm_act(dw, None),
            derived(Conv, name=pw2, out=main_out, kernel=1, groups=self.groups,
                    channel_scaling="fixed"),
            *norm_act(pw2, None),
        ]
        if self.stride == 1:
            merge: LayerSpec = derived(Residual, name="res", layers=main)
        else:
            shortcut = [derived(Pool, name="pool", type="avg_pool", kernel=3, stride=2, padding=1)]
            merge = derived(Parallel, name="res", branches=[main, shortcut], merge="concat",
                            branch_names=["main", "shortcut"])
        return [merge, derived(Activation, name="relu", type="relu", fn="relu")]
