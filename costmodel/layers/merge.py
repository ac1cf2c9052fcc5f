"""Multi-input primitives: the merges of a ``parallel`` node (concat, add, multiply,
hierarchical feature fusion) and the channel split that can feed its branches."""

from __future__ import annotations

from typing import Callable, Literal

from costmodel.errors import ShapeError
from costmodel.layers.base import Cost
from costmodel.shape import Shape

MergeKind = Literal["concat", "add", "multiply", "hff"]


def _maps(xs: list[Shape], what: str) -> None:
    if any(x.flat for x in xs) and not all(x.flat for x in xs):
        raise ShapeError(f"cannot {what} a vector with a feature map: {', '.join(map(str, xs))}")


def concat_cost(xs: list[Shape]) -> Cost:
    """Channel concatenation.

    FLOPs = 0;  MAC = Σ inputs + output (a copy)
    """
    _maps(xs, "concat")
    if len({(x.h, x.w) for x in xs}) > 1:
        raise ShapeError("concat needs equal spatial sizes, got "
                         + ", ".join(str(x) for x in xs), field="merge")
    out = Shape(sum(x.c for x in xs), xs[0].h, xs[0].w, xs[0].flat)
    return Cost(out=out, mac=sum(x.numel for x in xs) + out.numel)


def add_cost(xs: list[Shape]) -> Cost:
    """Element-wise sum (residual connections).

    FLOPs = 0 (additions, not multiply-adds; fvcore does not count aten::add either)
    MAC   = Σ inputs + output
    """
    if len(set(xs)) > 1:
        raise ShapeError("add needs equal shapes, got " + ", ".join(str(x) for x in xs),
                         field="merge")
    return Cost(out=xs[0], mac=sum(x.numel for x in xs) + xs[0].numel)


def multiply_cost(xs: list[Shape]) -> Cost:
    """Element-wise product, broadcasting C×1×1 gates over C×H×W maps (SE gating) and 1×1×1
    gates over whole maps (SkipNet's execute/skip decision).

    FLOPs = 0 in the papers' scope (fvcore does not count aten::mul)
    MAC   = Σ inputs + output
    """
    _maps(xs, "multiply")
    out = max(xs, key=lambda x: x.numel)
    for x in xs:
        scalar = x.c == 1 and x.hw == 1
        if not scalar and (x.c != out.c or (x.hw != 1 and (x.h, x.w) != (out.h, out.w))):
            raise ShapeError("multiply needs equal shapes, a C×1×1 gate with the same C, or a "
                             "1×1×1 gate, got " + ", ".join(str(x) for x in xs), field="merge")
    return Cost(out=out, mac=sum(x.numel for x in xs) + out.numel)


def hff_cost(xs: list[Shape]) -> Cost:
    """Hierarchical feature fusion (ESPNet): the running sums b1, b1+b2, b1+b2+b3, … of the
    branches, concatenated.

    FLOPs = 0 (additions, not multiply-adds)
    MAC   = 3·(K−1)·s + Σ inputs + output, for K branches of s elements each: K−1 running
            sums (each reads two maps and writes one), then the concatenation (a copy)
    """
    _maps(xs, "fuse")
    if len(set(xs)) > 1:
        raise ShapeError("hff needs branches of equal shape, got "
                         + ", ".join(str(x) for x in xs), field="merge")
    s = xs[0].numel
    out = Shape(xs[0].c * len(xs), xs[0].h, xs[0].w)
    return Cost(out=out, mac=3 * (len(xs) - 1) * s + len(xs) * s + out.numel)


MERGES: dict[str, Callable[[list[Shape]], Cost]] = {
    "concat": concat_cost,
    "add": add_cost,
    "multiply": multiply_cost,
    "hff": hff_cost,
}

ELEMENTWISE_MERGES: dict[str, str] = {"add": "add", "multiply": "multiply"}
"""The merges ShuffleNet V2's G4 counts as element-wise operators (AddTensor), by their G4
group; concat is a copy. (hff's running sums are additions too; not counted yet, which keeps
ESPNet's G4 record as it was.)"""


def channel_split(x: Shape, sizes: list[int] | Literal["half"]) -> tuple[list[Shape], Cost]:
    """Split C channels into parts (ShuffleNet V2's channel split).

    FLOPs = 0;  MAC = 0 (the parts are views of the input)
    """
    if sizes == "half":
        if x.c % 2:
            raise ShapeError(f"cannot split {x.c} channels in half", field="split")
        sizes = [x.c // 2, x.c // 2]
    if sum(sizes) != x.c:
        raise ShapeError(f"split sizes {sizes} do not add up to the {x.c} input channels",
                         field="split")
    parts = [Shape(c, x.h, x.w, x.flat) for c in sizes]
    return parts, Cost(out=x)
