"""ResNet's residual blocks (He et al. 2016), as torchvision builds them."""

from __future__ import annotations

from typing import Literal


from costmodel.layers.base import Block, Context, LayerSpec, derived
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, PosInt
from costmodel.layers.elementwise import Activation
from costmodel.layers.structure import Residual
from costmodel.shape import Shape


def projection(c_out: int, stride: int) -> list[LayerSpec]:
    """The shortcut of a block that changes shape: 1×1 conv (stride) → BN."""
    return [derived(Conv, name="conv", out=c_out, kernel=1, stride=stride, channel_scaling="fixed"),
            *norm_act("conv", None)]


class ResidualBlock(Block):
    """A residual block: ``main`` layers plus a shortcut (identity, or a 1×1 projection when
    the stride or the width changes), added, then ReLU."""

    stride: PosInt = 1

    def out_channels(self, ctx: Context) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def main(self, x: Shape, ctx: Context) -> list[LayerSpec]:  # pragma: no cover - abstract
        raise NotImplementedError

    def parts(self, x: Shape, ctx: Context) -> tuple[list[LayerSpec], list[LayerSpec]]:
        """(main layers, shortcut layers); the shortcut is [] for the identity."""
        c_out = self.out_channels(ctx)
        shortcut = projection(c_out, self.stride) if (self.stride != 1 or x.c != c_out) else []
        return self.main(x, ctx), shortcut

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        main, shortcut = self.parts(x, ctx)
        return [derived(Residual, name="res", layers=main, shortcut=shortcut, merge="add"),
                derived(Activation, name="relu", type="relu", fn="relu")]


class BasicBlock(ResidualBlock):
    """3×3 conv (stride) → BN → ReLU → 3×3 conv → BN, plus the shortcut (ResNet-18/34,
    the CIFAR ResNets). ``planes`` output channels."""

    type: Literal["basic_block"] = "basic_block"
    planes: PosInt

    def out_channels(self, ctx: Context) -> int:
        return ctx.channels(self.planes)

    def main(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        c = self.out_channels(ctx)
        return [derived(Conv, name="conv1", out=c, kernel=3, stride=self.stride,
                        channel_scaling="fixed"), *norm_act("conv1", "relu"),
                derived(Conv, name="conv2", out=c, kernel=3, channel_scaling="fixed"),
                *norm_act("conv2", None)]


class Bottleneck(ResidualBlock):
    """1×1 conv → BN → ReLU → 3×3 conv (``groups``) → BN → ReLU → 1×1 conv to
    ``planes``·``expansion`` → BN, plus the shortcut (ResNet-50/101/152).

    The inner width is int(planes·base_width/64)·groups, as in torchvision (ResNeXt, wide
    ResNets). ``stride_on: 3x3`` puts the stride on the 3×3 conv (torchvision, "ResNet v1.5");
    ``1x1`` on the first 1×1 conv, as in the original Caffe ResNet.
    """

    type: Literal["bottleneck"] = "bottleneck"
    planes: PosInt
    expansion: PosInt = 4
    groups: PosInt = 1
    base_width: PosInt = 64
    stride_on: Literal["3x3", "1x1"] = "3x3"

    def out_channels(self, ctx: Context) -> int:
        return ctx.channels(self.planes) * self.expansion

    def main(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        width = int(ctx.channels(self.planes) * self.base_width / 64) * self.groups
        s1, s3 = (self.stride, 1) if self.stride_on == "1x1" else (1, self.stride)
        return [derived(Conv, name="conv1", out=width, kernel=1, stride=s1,
                        channel_scaling="fixed"),
                *norm_act("conv1", "relu"),
                derived(Conv, name="conv2", out=width, kernel=3, stride=s3, groups=self.groups,
                        channel_scaling="fixed"), *norm_act("conv2", "relu"),
                derived(Conv, name="conv3", out=self.out_channels(ctx), kernel=1,
                        channel_scaling="fixed"), *norm_act("conv3", None)]
