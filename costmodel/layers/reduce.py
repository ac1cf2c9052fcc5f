"""Reductions over axes: ``mean`` (``x.mean([2, 3])``, as MNASNet and ShuffleNet V2 end in
torchvision)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from costmodel.layers.base import Context, Cost, Primitive, require_map
from costmodel.shape import Shape

SPATIAL = {2, 3}
"""The axes of N×C×H×W a ``mean`` may reduce: H and W (negative axes count from the end)."""


def mean_cost(x: Shape, keepdim: bool) -> Cost:
    """Cost of the mean of each channel over its H×W positions.

    FLOPs  = 0 in the papers' scope (no multiply-adds of a weight; MobileNet's and ShuffleNet's
             tables count none for the global pooling). fvcore: 0 as well, because aten::mean
             has no rule in fvcore (it lists it as an unsupported op), whereas ``global_pool``
             (nn.AdaptiveAvgPool2d(1), the same arithmetic) is aten::adaptive_avg_pool2d,
             which fvcore counts as C·H·W, 1 per input element. Which of the two a model
             uses therefore changes its fvcore count by C·H·W.
    params = 0
    MAC    = C·H·W + C   (the map in, C means out)
    """
    out = Shape(x.c, 1, 1) if keepdim else Shape(x.c, 1, 1, flat=True)
    return Cost(out=out, mac=x.numel + x.c)


class Mean(Primitive):
    """The mean over the spatial ``axes`` of an N×C×H×W map, torch's ``x.mean(axes,
    keepdim)``: ``axes`` [2, 3] (or [-2, -1], in any order; both H and W, the only
    reduction a C×H×W shape can hold); the output is a vector of C, or C×1×1 with
    ``keepdim: true``."""

    type: Literal["mean"] = "mean"
    axes: Annotated[list[Literal[-2, -1, 2, 3]], Field(min_length=2, max_length=2)] = [2, 3]
    keepdim: bool = False
    operator = "pooling"

    @field_validator("axes")
    @classmethod
    def _spatial(cls, axes: list[int]) -> list[int]:
        if {a % 4 for a in axes} != SPATIAL:
            raise ValueError(f"must be the two spatial axes, [2, 3] or [-2, -1], got {axes}")
        return axes

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        return mean_cost(x, self.keepdim)

    def latency_class(self) -> str:
        return "global_pool"  # the same reduction as a global average pool
