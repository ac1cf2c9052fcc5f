"""GhostNet's Ghost module and Ghost bottleneck (Han et al. 2020), as in huawei-noah's
official ghostnet.py."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field

from costmodel.layers.base import Block, ChannelScaling, Context, LayerSpec, derived
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, DepthwiseConv, PosInt
from costmodel.layers.se import SqueezeExcite
from costmodel.layers.slicing import ChannelSlice
from costmodel.layers.structure import Parallel, Residual
from costmodel.shape import Shape


def ghost_layers(out: int, ratio: int, kernel: int, dw_kernel: int, stride: int,
                 relu: bool) -> list[LayerSpec]:
    """primary: k×k conv to m = ceil(out/ratio) channels → BN (→ ReLU); cheap: a dw_k×dw_k
    depthwise conv with depth multiplier ratio−1 on the primary maps → BN (→ ReLU);
    both concatenated, then the first ``out`` channels kept."""
    act = "relu" if relu else None
    init = math.ceil(out / ratio)
    layers: list[LayerSpec] = [
        derived(Conv, name="primary", out=init, kernel=kernel, stride=stride,
                channel_scaling="fixed"), *norm_act("primary", act),
        derived(Parallel, name="ghost", merge="concat", branch_names=["primary", "cheap"],
                branches=[[], [derived(DepthwiseConv, name="dw", kernel=dw_kernel,
                                       multiplier=ratio - 1), *norm_act("dw", act)]]),
    ]
    if init * ratio != out:
        layers.append(derived(ChannelSlice, name="slice", start=0, stop=out))
    return layers


class GhostModule(Block):
    """The Ghost module: ``out`` maps of which only ceil(out/s) come from an ordinary conv
    and the rest from cheap depthwise "ghost" operations (s = ``ratio``).

    FLOPs on an h×w output (paper eq. 2–4): m·h·w·k²·C_in + (s−1)·m·h·w·d² with m = ⌈out/s⌉,
    against out·h·w·k²·C_in for the ordinary conv — about s× fewer.
    """

    type: Literal["ghost_module"] = "ghost_module"
    out: PosInt
    ratio: Annotated[PosInt, Field(ge=2)] = 2
    kernel: PosInt = 1
    dw_kernel: PosInt = 3
    stride: PosInt = 1
    relu: bool = True
    channel_scaling: ChannelScaling = "scale"

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        return ghost_layers(ctx.channels(self.out, self.channel_scaling), self.ratio,
                            self.kernel, self.dw_kernel, self.stride, self.relu)


class GhostBottleneck(Block):
    """Ghost module (expansion to ``mid``, ReLU) → [k×k depthwise conv, stride 2 → BN] →
    [squeeze-excite] → Ghost module (to ``out``, no ReLU), plus a shortcut: the identity, or
    (when the stride or the width changes) k×k depthwise conv (stride) → BN → 1×1 conv → BN.
    No activation after the addition.

    SE (``se_ratio`` > 0): squeeze to _make_divisible(mid·se_ratio, 4), ReLU, hard-sigmoid
    gate, as the official code's SqueezeExcite.
    """

    type: Literal["ghost_bottleneck"] = "ghost_bottleneck"
    mid: PosInt
    out: PosInt
    kernel: PosInt = 3
    stride: Literal[1, 2] = 1
    se_ratio: float = Field(default=0.0, ge=0, le=1)

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        mid, out = ctx.channels(self.mid), ctx.channels(self.out)
        main: list[LayerSpec] = [derived(GhostModule, name="ghost1", out=mid,
                                         channel_scaling="fixed")]
        if self.stride > 1:
            main += [derived(DepthwiseConv, name="dw", kernel=self.kernel, stride=self.stride),
                     *norm_act("dw", None)]
        if self.se_ratio > 0:
            main.append(derived(SqueezeExcite, name="se", ratio=self.se_ratio, divisor=4,
                                activation="relu", gate="hsigmoid"))
        main.append(derived(GhostModule, name="ghost2", out=out, relu=False,
                            channel_scaling="fixed"))
        shortcut: list[LayerSpec] = []
        if self.stride != 1 or x.c != out:
            shortcut = [derived(DepthwiseConv, name="dw", kernel=self.kernel, stride=self.stride),
                        *norm_act("dw", None),
                        derived(Conv, name="pw", out=out, kernel=1, channel_scaling="fixed"),
                        *norm_act("pw", None)]
        return [derived(Residual, name="res", layers=main, shortcut=shortcut, merge="add")]
