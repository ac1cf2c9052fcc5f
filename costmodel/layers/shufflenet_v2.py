"""ShuffleNet V2's unit (Ma et al. 2018, Fig. 3 c/d)."""

from __future__ import annotations

from typing import Literal

from costmodel.errors import ShapeError
from costmodel.layers.base import Block, Context, LayerSpec, derived
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, DepthwiseConv, PosInt
from costmodel.layers.reshape import ChannelShuffle
from costmodel.layers.structure import Parallel
from costmodel.shape import Shape


def _right(mid: int, out: int, kernel: int, stride: int) -> list[LayerSpec]:
    """1×1 conv → BN → ReLU → k×k depthwise (stride) → BN → 1×1 conv → BN → ReLU."""
    return [derived(Conv, name="pw1", out=mid, kernel=1, channel_scaling="fixed"),
            *norm_act("pw1", "relu"),
            derived(DepthwiseConv, name="dw", kernel=kernel, stride=stride), *norm_act("dw", None),
            derived(Conv, name="pw2", out=out, kernel=1, channel_scaling="fixed"),
            *norm_act("pw2", "relu")]


class ShuffleV2Unit(Block):
    """Two branches, concatenated, then a channel shuffle with 2 groups.

    - stride 1 (Fig. 3c): channel split in halves; the left half passes through, the right
      goes through 1×1 → 3×3 dw → 1×1, all C/2 wide (needs C_in = ``out``).
    - stride 2 (Fig. 3d): both branches see the whole input. Left: 3×3 dw (stride 2) → 1×1;
      right: 1×1 to ``out``/2 → 3×3 dw (stride 2) → 1×1. With ``stride2_left: half``
      (torchvision) each branch makes ``out``/2 channels; with ``input`` (the authors' code,
      megvii-model/ShuffleNet-Series) the left keeps C_in and the right makes ``out`` − C_in.

    Every 1×1 conv is followed by BN and ReLU, every depthwise conv by BN only. Cost of a
    stride-1 unit with c = C/2: h·w·(2c² + 9c) multiply-adds.
    """

    type: Literal["shufflenet_v2_unit"] = "shufflenet_v2_unit"
    out: PosInt
    stride: Literal[1, 2] = 1
    kernel: PosInt = 3
    stride2_left: Literal["half", "input"] = "half"

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        out = ctx.channels(self.out)
        if self.stride == 1:
            if out != x.c:
                raise ShapeError(f"a stride-1 unit keeps its width, so 'out' ({out}) must equal "
                                 f"the {x.c} input channels (use stride 2 to change width)",
                                 field="out")
            if x.c % 2:
                raise ShapeError(f"a stride-1 unit splits its channels in halves; {x.c} is odd",
                                 field="out")
            half = x.c // 2
            branches = [[], _right(half, half, self.kernel, 1)]
            unit = derived(Parallel, name="branches", split="half", branches=branches,
                           merge="concat", branch_names=["left", "right"])
        else:
            if self.stride2_left == "half":
                if out % 2:
                    raise ShapeError(f"a stride-2 unit makes out/2 channels per branch; 'out' "
                                     f"({out}) is odd", field="out")
                left_out = out // 2
            else:
                if out <= x.c:
                    raise ShapeError(f"with stride2_left: input the left branch keeps the {x.c} "
                                     f"input channels, so 'out' ({out}) must be larger",
                                     field="out")
                left_out = x.c
            left = [derived(DepthwiseConv, name="dw", kernel=self.kernel, stride=2),
                    *norm_act("dw", None),
                    derived(Conv, name="pw", out=left_out, kernel=1, channel_scaling="fixed"),
                    *norm_act("pw", "relu")]
            right = _right(out // 2, out - left_out, self.kernel, 2)
            unit = derived(Parallel, name="branches", branches=[left, right], merge="concat",
                           branch_names=["left", "right"])
        return [unit, derived(ChannelShuffle, name="shuffle", groups=2)]
