"""The inverted residual (MobileNet V2), a.k.a. MBConv (MnasNet, MobileNet V3, EfficientNet,
FBNet's ``ir_*`` blocks), and EfficientNetV2's Fused-MBConv."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from costmodel.errors import ShapeError
from costmodel.layers.base import (STRICT, Block, Context, LayerSpec, Multiplier, Rounding,
                                   derived)
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, DepthwiseConv, PosInt
from costmodel.layers.elementwise import ActivationFn, StochasticDepth
from costmodel.layers.reshape import ChannelShuffle
from costmodel.layers.se import SqueezeExcite
from costmodel.layers.structure import Residual
from costmodel.shape import Shape


class SESettings(BaseModel):
    """Squeeze-and-excitation inside an MBConv block, after the depthwise conv.

    The squeeze width is ``ratio`` of the ``expanded`` channels (MobileNet V3: 1/4, rounded to
    a multiple of ``divisor`` = 8) or of the block's ``input`` channels (EfficientNet:
    max(1, C_in·0.25)).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, **STRICT)

    ratio: float = Field(default=0.25, gt=0, le=1)
    of: Literal["expanded", "input"] = "expanded"
    divisor: PosInt = 1
    activation: ActivationFn = "relu"
    gate: ActivationFn = "sigmoid"


class MBConv(Block):
    """1×1 expand → BN → act → k×k depthwise (stride) → BN → act → [SE] → 1×1 project → BN,
    plus the input when stride is 1 and C_in = ``out`` (and ``residual`` is true).

    The expanded width is ``expansion``·C_in (MobileNet V2's t, rounded to an integer), or
    ``expanded`` channels given outright (MobileNet V3's "exp size", scaled by the width
    multiplier like every ``out``). The expand conv is left out when it would not change the
    width (t = 1), as in torchvision, unless ``always_expand`` (FBNet's ``ir_k3_e1`` keeps it).
    ``groups`` > 1 makes both 1×1 convs grouped, with a channel shuffle after the expansion
    (FBNet's ``ir_k5_s2``). The projection is linear (no activation).

    Cost (MobileNet V2 §3.3, for t·C_in = m): h·w·C_in·m/g + (h/s)(w/s)·(k²·m + m·C_out/g),
    + 2·m·S for the SE's two 1×1 convs (S squeeze channels).
    """

    type: Literal["mbconv", "inverted_residual"] = "mbconv"
    out: PosInt
    expansion: Multiplier | None = None
    expanded: PosInt | None = None
    kernel: PosInt = 3
    stride: PosInt = 1
    activation: ActivationFn = "relu6"
    se: SESettings | None = None
    groups: PosInt = 1
    always_expand: bool = False
    residual: bool = True

    @model_validator(mode="after")
    def _one_width(self):
        if (self.expansion is None) == (self.expanded is None):
            raise ValueError("give exactly one of 'expansion' (t, times the input channels) or "
                             "'expanded' (channels)")
        return self

    def hidden_channels(self, c_in: int, ctx: Context) -> int:
        if self.expanded is not None:
            return ctx.channels(self.expanded)
        hidden = int(round(c_in * self.expansion))  # torchvision: int(round(inp * t))
        if hidden < 1:
            raise ShapeError(f"expansion {self.expansion} of {c_in} channels leaves none",
                             field="expansion")
        return hidden

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        out = ctx.channels(self.out)
        hidden = self.hidden_channels(x.c, ctx)
        g = self.groups
        layers: list[LayerSpec] = []
        if hidden != x.c or self.always_expand:
            layers += [derived(Conv, name="expand", out=hidden, kernel=1, groups=g,
                               channel_scaling="fixed"),
                       *norm_act("expand", self.activation)]
            if g > 1:
                layers.append(derived(ChannelShuffle, name="shuffle", groups=g))
        elif g > 1:
            raise ShapeError("grouped 1×1 convs need the expand conv (set always_expand)",
                             field="groups")
        layers += [derived(DepthwiseConv, name="dw", kernel=self.kernel, stride=self.stride),
                   *norm_act("dw", self.activation)]
        if self.se is not None:
            layers += self._se(x.c, hidden, ctx)
        layers += [derived(Conv, name="project", out=out, kernel=1, groups=g,
                           channel_scaling="fixed"),
                   *norm_act("project", None)]
        if self.residual and self.stride == 1 and x.c == out:
            return [derived(Residual, name="res", layers=layers)]
        return layers

    def _se(self, c_in: int, hidden: int, ctx: Context) -> list[LayerSpec]:
        se = self.se
        base = hidden if se.of == "expanded" else c_in
        squeeze = derived(SqueezeExcite, ratio=se.ratio, divisor=se.divisor).squeeze_channels(base)
        block = derived(SqueezeExcite, squeeze=squeeze, activation=se.activation, gate=se.gate)
        # expanded in place (paths read block.se.gate.fc1); the SE sees the expanded width
        return block.expand(Shape(hidden, 1, 1), ctx)


EXPANDED_ROUNDING = Rounding("divisible", divisor=8, min=8)
"""torchvision's ``_MBConvConfig.adjust_channels(C_in, expand_ratio)``: _make_divisible(C_in·e,
8), the nearest multiple of 8, never more than 10% below."""


class FusedMBConv(Block):
    """EfficientNetV2's Fused-MBConv (torchvision's FusedMBConv): MBConv's 1×1 expand and k×k
    depthwise fused into one dense k×k conv.

    With m = _make_divisible(``expansion``·C_in, 8) ≠ C_in: k×k conv (``stride``) C_in → m →
    BN → act, then 1×1 project m → ``out`` → BN (linear). With m = C_in (``expansion`` 1):
    one k×k conv (``stride``) C_in → ``out`` → BN → act. The input is added when stride is 1
    and C_in = ``out`` (and ``residual``); ``stochastic_depth`` (its p, torchvision's
    StochasticDepth "row") ends the residual branch, free at inference.

    Cost: (h/s)(w/s)·(k²·C_in·m + m·C_out), or (h/s)(w/s)·k²·C_in·C_out when m = C_in.
    """

    type: Literal["fused_mbconv"] = "fused_mbconv"
    out: PosInt
    expansion: Multiplier = 4
    kernel: PosInt = 3
    stride: PosInt = 1
    activation: ActivationFn = "silu"
    residual: bool = True
    stochastic_depth: float | None = Field(default=None, ge=0, le=1)

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        out = ctx.channels(self.out)
        hidden = EXPANDED_ROUNDING.apply(x.c, self.expansion)
        if hidden != x.c:
            layers: list[LayerSpec] = [
                derived(Conv, name="expand", out=hidden, kernel=self.kernel, stride=self.stride,
                        channel_scaling="fixed"),
                *norm_act("expand", self.activation),
                derived(Conv, name="project", out=out, kernel=1, channel_scaling="fixed"),
                *norm_act("project", None)]
        else:
            layers = [derived(Conv, name="conv", out=out, kernel=self.kernel, stride=self.stride,
                              channel_scaling="fixed"),
                      *norm_act("conv", self.activation)]
        if self.residual and self.stride == 1 and x.c == out:
            if self.stochastic_depth is not None:
                layers.append(derived(StochasticDepth, name="stochastic_depth",
                                      p=self.stochastic_depth))
            return [derived(Residual, name="res", layers=layers)]
        return layers
