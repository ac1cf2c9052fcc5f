"""Token sequences for transformers (ViT, Swin): a map made into tokens, a learned class
token and position embedding, one token picked out, and Swin's patch merging.

A sequence of L tokens of D values is the Shape(D, L, 1): channels are the embedding, H the
tokens, W 1. The spec's shape stays C×H×W as everywhere else, so every per-position layer
applies to tokens unchanged (``linear`` and ``layer_norm`` with ``channels_last: true``,
activations, residual adds). In torch the sequence runs channels last, N×L×1×D, as
after any ``permute`` to channels_last; ViT's ``x.reshape(n, c, h·w).permute(0, 2, 1)`` is
written as ``tokens`` then ``permute: channels_last`` (both views). Swin keeps its H×W map
channels last throughout, N×H×W×C.
"""

from __future__ import annotations

from typing import Literal

from costmodel.errors import ShapeError
from costmodel.layers.base import Context, Cost, NonNegInt, PosInt, Primitive, require_map
from costmodel.shape import Shape


def require_tokens(x: Shape) -> None:
    """A token sequence is a D×L×1 map (after ``tokens``)."""
    require_map(x)
    if x.w != 1:
        raise ShapeError(f"needs a token sequence (D×L×1, after a 'tokens' layer), got a {x} "
                         "map")


class Tokens(Primitive):
    """C×H×W → C×(H·W)×1: the positions of a map as a sequence of H·W tokens of C values
    (torchvision's ``x.reshape(n, c, h * w)`` in ViT's ``_process_input``; its
    ``permute(0, 2, 1)`` is the ``permute: channels_last`` that follows). A view: FLOPs 0,
    MAC 0."""

    type: Literal["tokens"] = "tokens"
    operator = "view"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        return Cost(out=Shape(x.c, x.hw, 1))


def class_token_cost(x: Shape) -> Cost:
    """Cost of prepending one learned token to a sequence of L tokens of D values.

    FLOPs  = 0 (a copy; fvcore does not count aten::cat)
    params = D (the token)
    MAC    = D·L + D + D·(L+1)   (the sequence and the token read, the longer one written)
    """
    out = Shape(x.c, x.h + 1, 1)
    return Cost(out=out, params=x.c, mac=x.numel + x.c + out.numel, weight_mac=x.c)


class ClassToken(Primitive):
    """Prepends a learned class token (ViT: ``torch.cat([class_token.expand(n, -1, -1), x],
    dim=1)``): D×L×1 → D×(L+1)×1. Its torch module holds the token as ``class_token``
    (zeros, as torchvision) and runs on the channels-last sequence."""

    type: Literal["class_token"] = "class_token"
    operator = "data_movement"
    runs_channels_last = True

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_tokens(x)
        return class_token_cost(x)


def pos_embed_cost(x: Shape) -> Cost:
    """Cost of adding a learned embedding of the input's own shape (C·H·W values; L·D for a
    sequence of L tokens).

    FLOPs  = 0 (additions, not multiply-adds; fvcore does not count aten::add)
    params = C·H·W
    MAC    = 3·C·H·W   (map in, embedding, map out)
    """
    return Cost(out=x, params=x.numel, mac=3 * x.numel, weight_mac=x.numel)


class PosEmbed(Primitive):
    """Adds a learned position embedding (ViT's ``pos_embedding``, 1×L×D): one learned value
    per element of the input. Its torch module holds it as ``pos_embedding`` and runs on the
    channels-last tensor."""

    type: Literal["pos_embed", "pos_embedding"] = "pos_embed"
    operator = "elementwise"
    runs_channels_last = True

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        return pos_embed_cost(x)


class SelectToken(Primitive):
    """One token of a sequence as a vector of D: ``x[:, index]`` (ViT's ``x[:, 0]``, the class
    token, before the head). A view: FLOPs 0, MAC 0."""

    type: Literal["select_token"] = "select_token"
    index: NonNegInt = 0
    operator = "view"
    runs_channels_last = True

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_tokens(x)
        if self.index >= x.h:
            raise ShapeError(f"token {self.index} of a sequence of {x.h}", field="index")
        return Cost(out=Shape(x.c, 1, 1, flat=True))


def patch_merge_cost(x: Shape) -> Cost:
    """Cost of Swin's patch merging: each 2×2 patch's four C-vectors concatenated into one of
    4C (an odd side is zero-padded first, as torchvision's ``_patch_merging_pad``).

    FLOPs  = 0 (a copy; fvcore counts none of its slices and aten::cat)
    MAC    = C·H·W + 4C·⌈H/2⌉·⌈W/2⌉   (map in, merged map out)
    """
    out = Shape(4 * x.c, -(-x.h // 2), -(-x.w // 2))
    return Cost(out=out, mac=x.numel + out.numel)


class PatchMerge(Primitive):
    """Swin's patch merging, without its norm and linear (write them after it): C×H×W →
    4C×⌈H/2⌉×⌈W/2⌉, on the channels-last map, in torchvision's order (x[0::2, 0::2],
    x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] concatenated on the channels)."""

    type: Literal["patch_merge"] = "patch_merge"
    operator = "data_movement"
    runs_channels_last = True

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        return patch_merge_cost(x)

    def describe(self, x: Shape) -> str:
        return "patch merge 2×2"


def window_pad_cost(x: Shape, window: int) -> Cost:
    """Cost of zero-padding a map at the bottom and right to whole M×M windows.

    FLOPs  = 0 (a copy; fvcore counts no padding)
    MAC    = C·H·W + C·H'·W'   (H' = ⌈H/M⌉·M, W' = ⌈W/M⌉·M)
    """
    out = Shape(x.c, -(-x.h // window) * window, -(-x.w // window) * window)
    return Cost(out=out, mac=x.numel + out.numel)


class WindowPad(Primitive):
    """Zero-pads the bottom and right of the channels-last map to whole ``window``×``window``
    windows, as torchvision's ``shifted_window_attention`` does before its qkv projection
    (``attention`` with a window adds it where the map needs it, and a ``crop`` after)."""

    type: Literal["window_pad"] = "window_pad"
    window: PosInt
    operator = "data_movement"
    runs_channels_last = True

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        return window_pad_cost(x, self.window)


class Crop(Primitive):
    """The top-left ``h``×``w`` of the channels-last map (``x[:, :h, :w].contiguous()``,
    undoing a ``window_pad``). A copy: MAC C·H·W + C·h·w."""

    type: Literal["crop"] = "crop"
    h: PosInt
    w: PosInt
    operator = "data_movement"
    runs_channels_last = True

    def cost(self, x: Shape, ctx: Context) -> Cost:
        require_map(x)
        if self.h > x.h or self.w > x.w:
            raise ShapeError(f"cannot crop {self.h}×{self.w} from a {x.h}×{x.w} map",
                             field="h" if self.h > x.h else "w")
        out = Shape(x.c, self.h, self.w)
        return Cost(out=out, mac=x.numel + out.numel)
