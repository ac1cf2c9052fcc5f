"""Squeeze-and-excitation (Hu et al.), as MobileNet V3 and EfficientNet use it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from costmodel.errors import ShapeError
from costmodel.layers.base import Block, Context, LayerSpec, Rounding, derived
from costmodel.layers.conv import Conv, PosInt
from costmodel.layers.elementwise import Activation, ActivationFn
from costmodel.layers.pool import GlobalPool
from costmodel.layers.structure import Parallel
from costmodel.shape import Shape


class SqueezeExcite(Block):
    """x · gate(fc2(act(fc1(avgpool(x))))), the FCs being 1×1 convs with bias (torchvision's
    SqueezeExcitation).

    The squeeze width is ``squeeze`` channels, or ``ratio`` of C channels (rounded to a
    multiple of ``divisor`` like torchvision's _make_divisible when divisor > 1, else
    max(1, int(C·ratio))). C is the SE's own input (``of: own``, MobileNet V3's expanded
    width), or with ``of: block`` the input of the block it is in — the nearest enclosing
    ``sequential`` or ``stage``, which a use of a ``blocks`` definition and a copy of a
    several-layer ``repeat`` are — as EfficientNet sizes it (max(1, C_in // 4)).
    Cost: 2·C·S multiply-adds (+ C·H·W in fvcore's scope for the pool).
    """

    type: Literal["se"] = "se"
    squeeze: PosInt | None = None
    ratio: float | None = Field(default=None, gt=0, le=1)
    divisor: PosInt = 1
    of: Literal["own", "block"] = "own"
    activation: ActivationFn = "relu"
    gate: ActivationFn = "sigmoid"

    @model_validator(mode="after")
    def _one_width(self):
        if (self.squeeze is None) == (self.ratio is None):
            raise ValueError("give exactly one of 'squeeze' (channels) or 'ratio'")
        if self.of == "block" and self.ratio is None:
            raise ValueError("'of: block' sizes the squeeze by 'ratio' (not 'squeeze')")
        return self

    @property
    def needs_block_input(self) -> bool:
        """Whether the enclosing block must give its input's channels (``for_block_input``)."""
        return self.of == "block"

    def for_block_input(self, c: int) -> SqueezeExcite:
        """This SE with its squeeze fixed from the enclosing block's ``c`` input channels."""
        return derived(SqueezeExcite, name=self.name, squeeze=self.squeeze_channels(c),
                       activation=self.activation, gate=self.gate)

    def squeeze_channels(self, c: int) -> int:
        if self.squeeze is not None:
            return self.squeeze
        if self.divisor > 1:
            return Rounding("divisible", self.divisor, self.divisor).apply(c, self.ratio)
        return max(1, int(c * self.ratio))

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        if self.of == "block":  # a sequential around it sets the squeeze (for_block_input)
            raise ShapeError("an 'se' with 'of: block' is sized from the input of the block it "
                             "is in, and needs one: put it in a sequential, a stage or a "
                             "'blocks' definition", field="of")
        s = self.squeeze_channels(x.c)
        gate = [
            derived(GlobalPool, name="pool"),
            derived(Conv, name="fc1", out=s, kernel=1, bias=True, channel_scaling="fixed"),
            derived(Activation, name="act", type=self.activation, fn=self.activation),
            derived(Conv, name="fc2", out=x.c, kernel=1, bias=True, channel_scaling="fixed"),
            derived(Activation, name="gate", type=self.gate, fn=self.gate),
        ]
        return [derived(Parallel, name="se", branches=[[], gate], merge="multiply",
                        branch_names=["x", "gate"])]
