"""Keeping a range of channels (GhostNet's out[:, :oup], ESPNet's decoder skip)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from costmodel.errors import ShapeError
from costmodel.layers.base import Context, Cost, NonNegInt, PosInt, Primitive
from costmodel.shape import Shape


def channel_slice_cost(x: Shape, start: int, stop: int) -> Cost:
    """Channels [start, stop) of the input.

    FLOPs = 0;  MAC = 0 (a view of the input, like a channel split)
    """
    if stop > x.c:
        raise ShapeError(f"cannot keep channels {start}:{stop} of {x.c}", field="stop")
    return Cost(out=Shape(stop - start, x.h, x.w, x.flat))


class ChannelSlice(Primitive):
    """Keeps channels ``start`` (inclusive) to ``stop`` (exclusive); torch's x[:, start:stop]."""

    type: Literal["slice"] = "slice"
    start: NonNegInt = 0
    stop: PosInt
    operator = "view"

    @model_validator(mode="after")
    def _range(self):
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        return self

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return channel_slice_cost(x, self.start, self.stop)
