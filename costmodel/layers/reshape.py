"""Layers that reshape or move the map rather than compute on it: flatten and permute (views),
channel shuffle (a copy) and upsampling (a copy; bilinear interpolates, 4 multiply-adds per output
element, which the papers do not count and fvcore does)."""

from __future__ import annotations

from typing import Literal


from costmodel.errors import ShapeError
from costmodel.layers.base import Context, Cost, PosInt, Primitive, require_map
from costmodel.layers.conv import Size2
from costmodel.shape import Shape, pair


class Flatten(Primitive):
    """C×H×W → a vector of C·H·W. A view: MAC 0."""

    type: Literal["flatten"] = "flatten"
    operator = "view"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return Cost(out=Shape(x.numel, 1, 1, flat=True))


class Permute(Primitive):
    """Moves the channels to the last dim (``to: channels_last``, torch's
    ``x.permute(0, 2, 3, 1)``: N×C×H×W → N×H×W×C) or back (``to: channels_first``,
    ``x.permute(0, 3, 1, 2)``), as ConvNeXt does around its pointwise layers.

    The spec's shape stays C×H×W (there are still C channels at H×W positions; only the memory
    order differs), and the layers between the two permutes run in torch on the N×H×W×C
    tensor: ``linear`` and ``layer_norm`` with ``channels_last: true``, activations, and
    anything else element-wise. A view (torch's permute copies nothing; fvcore ignores
    aten::permute): FLOPs 0, MAC 0.
    """

    type: Literal["permute"] = "permute"
    to: Literal["channels_last", "channels_first"] = "channels_last"
    operator = "view"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        return Cost(out=x)

    def describe(self, x: Shape) -> str:
        return f"permute → {self.to.replace('_', '-')}"


def channel_shuffle_cost(x: Shape, groups: int) -> Cost:
    """ShuffleNet's channel shuffle (reshape g×(C/g) → transpose → flatten).

    FLOPs  = 0
    MAC    = 2·C·H·W (the transpose is a copy; ShuffleNet V2 counts it as element-wise)
    """
    if x.c % groups:
        raise ShapeError(f"{x.c} channels are not divisible by groups={groups}", field="groups")
    return Cost(out=x, mac=2 * x.numel)


class ChannelShuffle(Primitive):
    """Interleaves the channels of ``groups`` groups."""

    type: Literal["channel_shuffle", "shuffle"] = "channel_shuffle"
    groups: PosInt
    operator = "data_movement"
    elementwise = "channel_shuffle"  # ShuffleNet V2 counts the shuffle's copy in G4

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        return channel_shuffle_cost(x, self.groups)


class Upsample(Primitive):
    """Spatial upsampling by an integer ``scale`` per axis.

    FLOPs: 0 in the papers' scope; fvcore counts 1 per output element (nearest) or 4
    (bilinear). MAC: C·H·W + C·H_out·W_out.
    """

    type: Literal["upsample"] = "upsample"
    scale: Size2 = 2
    mode: Literal["nearest", "bilinear"] = "nearest"
    operator = "data_movement"
    # not a G3 operator: no weights, no reduction; like the channel shuffle it reads and writes
    # the map once (memory-bound), the kind of op G3 leaves to G4. G4 does not count it yet:
    # its groups are ShuffleNet V2's, and a new group would change every model's G4 record.

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        sh, sw = pair(self.scale)
        out = Shape(x.c, x.h * sh, x.w * sw)
        per_out = 1 if self.mode == "nearest" else 4
        return Cost(out=out, fvcore_flops=out.numel * per_out, mac=x.numel + out.numel)
