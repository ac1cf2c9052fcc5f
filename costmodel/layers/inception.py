"""GoogLeNet's Inception module (Szegedy et al. 2015), as torchvision builds it, and the
original (BVLC/paper) form."""

from __future__ import annotations

from typing import Literal


from costmodel.layers.base import Block, Context, LayerSpec, NonNegInt, derived
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, PosInt, Size2
from costmodel.layers.elementwise import Activation
from costmodel.layers.pool import Pool
from costmodel.layers.structure import Parallel, Sequential
from costmodel.shape import Shape


def conv_unit(name: str, out: int, kernel, stride=1, padding=None, bn: bool = True
              ) -> list[LayerSpec]:
    """torchvision's BasicConv2d (conv without bias → BN → ReLU) when ``bn``, else the
    paper's conv with bias → ReLU."""
    conv = derived(Conv, name=name, out=out, kernel=kernel, stride=stride, padding=padding,
                   bias=not bn, channel_scaling="fixed")
    if bn:
        return [conv, *norm_act(name, "relu")]
    return [conv, derived(Activation, name=f"{name}_act", type="relu", fn="relu")]


class BasicConv(Block):
    """A conv followed by BN and ReLU (``bn: true``, torchvision's BasicConv2d; the conv has no
    bias) or by ReLU alone (``bn: false``; the conv has a bias, as in the paper and BVLC)."""

    type: Literal["basic_conv"] = "basic_conv"
    out: PosInt
    kernel: Size2 = 3
    stride: Size2 = 1
    padding: NonNegInt | None = None
    bn: bool = True

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        return conv_unit("conv", ctx.channels(self.out), self.kernel, self.stride, self.padding,
                         self.bn)


class Inception(Block):
    """Four branches, concatenated: 1×1 (``c1``); 1×1 (``c3_reduce``) → 3×3 (``c3``);
    1×1 (``c5_reduce``) → k×k (``c5``); 3×3/1 max pool (ceil mode) → 1×1 (``pool_proj``).

    torchvision's GoogLeNet uses k = 3 in the "5×5" branch (``c5_kernel: 3``, a known
    deviation kept for its pretrained weights); the paper uses 5. ``bn`` as in basic_conv.
    """

    type: Literal["inception"] = "inception"
    c1: PosInt
    c3_reduce: PosInt
    c3: PosInt
    c5_reduce: PosInt
    c5: PosInt
    pool_proj: PosInt
    c5_kernel: Literal[3, 5] = 3
    bn: bool = True

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        c = {k: ctx.channels(getattr(self, k)) for k in
             ("c1", "c3_reduce", "c3", "c5_reduce", "c5", "pool_proj")}
        k5 = self.c5_kernel

        def unit(name: str, out: int, kernel: int) -> LayerSpec:
            return derived(Sequential, name=name,
                           layers=conv_unit("conv", out, kernel, padding=kernel // 2, bn=self.bn))

        branches = [
            conv_unit("conv", c["c1"], 1, bn=self.bn),
            [unit("reduce", c["c3_reduce"], 1), unit("conv3x3", c["c3"], 3)],
            [unit("reduce", c["c5_reduce"], 1), unit(f"conv{k5}x{k5}", c["c5"], k5)],
            [derived(Pool, name="pool", type="max_pool", kernel=3, stride=1, padding=1,
                     ceil_mode=True), unit("proj", c["pool_proj"], 1)],
        ]
        return [derived(Parallel, name="branches", merge="concat", branches=branches,
                        branch_names=["branch1", "branch2", "branch3", "branch4"])]
