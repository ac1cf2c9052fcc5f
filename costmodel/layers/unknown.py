"""A layer of unknown cost: an op the importer (``costmodel.capture``) could not map, kept with
its output shape so that the network still evaluates — counted as 0 everywhere, but listed
(``Result.unknown``) so that every output can say what its totals leave out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from costmodel.layers.base import Context, Cost, PosInt, Primitive
from costmodel.shape import Shape


class Unknown(Primitive):
    """An op whose cost is not known: ``op`` names it (``aten::erf``, ``call_function
    torch.roll``), ``out`` is its output shape ([C, H, W], or [F] for a vector). Its FLOPs,
    params and MAC are 0 and flagged, never silently: ``Result.unknown`` lists it."""

    type: Literal["unknown"] = "unknown"
    op: str = Field(min_length=1)
    out: Annotated[list[PosInt], Field(min_length=1, max_length=3)]
    operator = "none"

    @model_validator(mode="after")
    def _vector_or_map(self):
        if len(self.out) == 2:
            raise ValueError("out is [C, H, W] for a map or [F] for a vector, not 2 numbers")
        return self

    def cost(self, x: Shape, ctx: Context) -> Cost:
        if len(self.out) == 1:
            return Cost(out=Shape(self.out[0], 1, 1, flat=True))
        return Cost(out=Shape(*self.out))

    def describe(self, x: Shape) -> str:
        return f"unknown {self.op}"
