"""SqueezeNext's block (Gholami et al. 2018), as in osmr/imgclsmob's SqnxtUnit (the port of
the official Caffe models)."""

from __future__ import annotations

from typing import Literal

from costmodel.layers.base import Block, Context, LayerSpec, derived
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, PosInt
from costmodel.layers.elementwise import Activation
from costmodel.layers.structure import Residual
from costmodel.shape import Shape


def _conv(name: str, out: int, kernel, stride: int = 1) -> list[LayerSpec]:
    """conv with bias → BN → ReLU (imgclsmob's ConvBlock with bias=True)."""
    return [derived(Conv, name=name, out=out, kernel=kernel, stride=stride, bias=True,
                    channel_scaling="fixed"), *norm_act(name, "relu")]


class SqueezeNextUnit(Block):
    """Two-stage bottleneck with low-rank filters and a shortcut:

    1×1 conv to C/r (stride) → 1×1 conv to C/2r → 1×3 conv to C/r → 3×1 conv to C/r →
    1×1 conv to ``out``, each conv with bias → BN → ReLU; plus the input, or a 1×1 conv
    (stride) → BN → ReLU projection; added, then ReLU. C is the input width; r = 1 for a
    stride-2 unit, 4 when the unit narrows (C > out), else 2. The 1×3 and 3×1 convs stand for
    a 3×3 conv (2k instead of k² weights per filter: the paper's low-rank filters).
    """

    type: Literal["sqnxt_unit"] = "sqnxt_unit"
    out: PosInt
    stride: Literal[1, 2] = 1

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        out = ctx.channels(self.out)
        if self.stride == 2:
            r, project = 1, True
        elif x.c > out:
            r, project = 4, True
        else:
            r, project = 2, False
        c = x.c
        main = [*_conv("conv1", c // r, 1, self.stride), *_conv("conv2", c // (2 * r), 1),
                *_conv("conv3", c // r, [1, 3]), *_conv("conv4", c // r, [3, 1]),
                *_conv("conv5", out, 1)]
        shortcut = _conv("conv", out, 1, self.stride) if project else []
        return [derived(Residual, name="res", layers=main, shortcut=shortcut, merge="add"),
                derived(Activation, name="relu", type="relu", fn="relu")]
