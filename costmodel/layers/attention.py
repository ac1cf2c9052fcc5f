"""Multi-head self-attention, global (ViT), in windows (Swin) or in windows and grids (MaxViT),
with its matmul FLOPs.

Tokens are positions of a C×H×W map (``layers.tokens``: a sequence of L tokens is D×L×1), so
``attention`` applies to a ViT sequence and to a Swin map alike; in torch it runs on the
channels-last tensor. The ``attention`` block is its three steps, one row each:

- ``qkv``: a per-token ``linear`` D → 3D (queries, keys, values);
- ``attend``: per head, softmax(q·kᵀ/√d + bias)·v over the keys each query sees — all L
  tokens, or the M² tokens of its M×M window (Swin: windows shifted by ``shift``, with a
  learned relative position bias; MaxViT: windows, or a grid of tokens H/M apart) — the two
  matrix products without weights;
- ``proj``: a per-token ``linear`` D → D.

How ``attend`` runs decides what fvcore sees (``impl``): ``sdpa`` is torch's fused
``F.scaled_dot_product_attention``, as nn.MultiheadAttention runs it (torchvision's ViT):
fvcore has no rule for aten::scaled_dot_product_attention and counts it 0, so fvcore counts
only the projections, as ``linear``. ``matmul`` is the explicit ``q @ kᵀ`` and ``attn @ v``
(torchvision's Swin): fvcore counts both as ``matmul``. ``einsum`` is two torch.einsum calls
(torchvision's MaxViT): fvcore counts each as ``einsum``, through numpy's printed estimate,
rounded to 4 significant digits (``fvcore_einsum``). The papers' scope counts the two
products always, exactly: they are multiply-adds like any other.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from costmodel.errors import ShapeError
from costmodel.layers.base import (Block, Context, Cost, LayerSpec, NonNegInt, PosInt,
                                   Primitive, derived, require_map)
from costmodel.layers.linear import Linear
from costmodel.layers.tokens import Crop, WindowPad
from costmodel.shape import Shape

Impl = Literal["sdpa", "matmul", "einsum"]
"""How the attention products run: torch's fused scaled_dot_product_attention (fvcore: 0),
explicit matmuls (fvcore: ``matmul``) or torch.einsum (fvcore: ``einsum``, rounded)."""


def fvcore_einsum(madds: int) -> int:
    """What fvcore counts for a two-operand torch.einsum of ``madds`` multiply-adds that is not
    one of its two special-cased equations (MaxViT's ``BGHID,BGHJD->BGHIJ``): numpy's
    einsum_path cost, 2·madds, as numpy prints it (``%.3e``: 4 significant digits), halved and
    floored — e.g. 9,834,496 → 19,668,992 → "1.967e+07" → 9,835,000."""
    return int(float(f"{2 * madds:.3e}") // 2)


def relative_bias_params(window: int, heads: int) -> int:
    """Swin's relative position bias table: one value per head for each of the (2M−1)²
    offsets between two positions of an M×M window."""
    return (2 * window - 1) ** 2 * heads


def attend_cost(x: Shape, heads: int, window: int | None, relative_bias: bool,
                impl: Impl) -> Cost:
    """Cost of multi-head attention on q, k, v (the 3D channels of a 3D×H×W map) → D×H×W.

    L = H·W queries; each sees K keys: K = L (global) or M² (its M×M window; H and W
    multiples of M); d = D/heads per head.

    FLOPs  = L·K·D     q·kᵀ: per head L×d by d×K, L·K·d, times the heads
           + L·K·D     attn·v: per head L×K by K×d, L·K·d, times the heads
             (the 1/√d scale, the bias, the mask and the softmax are not multiply-adds)
             fvcore: the same as ``matmul`` with ``impl: matmul``; 0 with ``impl: sdpa``
             (aten::scaled_dot_product_attention has no fvcore rule); with ``impl: einsum``
             each product as fvcore rounds an einsum (``fvcore_einsum``)
    params = (2M−1)²·heads with ``relative_bias`` (Swin's table), else 0
    MAC    = 3·D·L + D·L + params   (q, k, v in; the result out; the table — the heads·L·K
             scores are not counted: a fused kernel never writes them)
    """
    require_map(x)
    if x.c % 3:
        raise ShapeError(f"needs q, k and v (3·D channels), got {x.c} channels")
    d = x.c // 3
    if d % heads:
        raise ShapeError(f"{d} channels are not divisible by heads={heads}", field="heads")
    tokens = x.hw
    if window is None:
        keys = tokens
    else:
        if x.h % window or x.w % window:
            raise ShapeError(f"a {x.h}×{x.w} map is not whole {window}×{window} windows (an "
                             "'attention' block pads it first, as Swin does, unless it says "
                             "pad: false, as MaxViT, which needs whole windows)", field="window")
        keys = window * window
    madds = 2 * tokens * keys * d
    params = relative_bias_params(window, heads) if relative_bias and window else 0
    fvcore = {"matmul": madds, "sdpa": 0,
              "einsum": 2 * fvcore_einsum(tokens * keys * d) if impl == "einsum" else 0}[impl]
    return Cost(out=Shape(d, x.h, x.w), flops=madds, fvcore_flops=fvcore, params=params,
                mac=x.numel + d * tokens + params, weight_mac=params)


class _AttentionFields(LayerSpec):
    heads: PosInt
    window: PosInt | None = None
    """None: every token attends to every token (ViT); M: within M×M windows (Swin)."""
    shift: NonNegInt = 0
    """Swin's cyclic shift of the windows (M/2 in every other block); 0 with no window."""
    partition: Literal["window", "grid"] = "window"
    """With a window of M: ``window``, each M×M block of neighbours attends together;
    ``grid`` (MaxViT), the M×M tokens spaced H/M and W/M apart do. The same cost."""
    relative_position_bias: bool = False
    """Swin's learned bias per head and offset inside a window: (2M−1)²·heads params."""
    impl: Impl = "sdpa"

    @model_validator(mode="after")
    def _window_fields(self):
        if self.window is None and (self.shift or self.relative_position_bias):
            raise ValueError("shift and relative_position_bias need a window")
        if self.window is not None and self.shift >= self.window:
            raise ValueError(f"shift {self.shift} must be less than the window {self.window}")
        if self.partition == "grid" and (self.window is None or self.shift):
            raise ValueError("a grid partition needs a window and no shift")
        return self


class Attend(_AttentionFields, Primitive):
    """The attention products of multi-head self-attention (``attend_cost``): q, k, v, the
    3D channels of a ``qkv`` linear, in; D channels out."""

    type: Literal["attend"] = "attend"
    operator = "linear"  # matrix products
    runs_channels_last = True

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return attend_cost(x, self.heads, self.window, self.relative_position_bias, self.impl)

    def describe(self, x: Shape) -> str:
        where = f"{self.window}×{self.window} {self.partition}s" if self.window else "global"
        return f"attention {self.heads} heads, {where}" + (f", shift {self.shift}"
                                                            if self.shift else "")


class Attention(_AttentionFields, Block):
    """Multi-head self-attention (Vaswani et al., 2017) on the tokens of a D×H×W map: ``qkv``
    (linear D → 3D, bias ``qkv_bias``), ``attend`` (see ``attend_cost``), ``proj`` (linear
    D → D, bias ``proj_bias``). torchvision's ViT (nn.MultiheadAttention: ``impl: sdpa``),
    Swin (ShiftedWindowAttention: ``window: 7``, ``shift`` 0 or 3,
    ``relative_position_bias: true``, ``impl: matmul``) and MaxViT
    (RelativePositionalMultiHeadAttention: ``window: 7``, ``partition`` window or grid,
    ``relative_position_bias: true``, ``impl: einsum``, ``pad: false``) have these
    parameters exactly.

    FLOPs  = L·D·3D + 2·L·K·D + L·D·D   (qkv, the two products, proj; L = H·W, K = L or M²)
             with a window, L counts the padding: a map that is not whole M×M windows is
             zero-padded at the bottom and right first (``window_pad``), as torchvision does,
             and the result cropped back (``crop``)
    params = 3D² + 3D·[qkv_bias] + D² + D·[proj_bias] + (2M−1)²·heads·[relative bias]
    """

    type: Literal["attention", "self_attention"] = "attention"
    qkv_bias: bool = True
    proj_bias: bool = True
    pad: bool = True
    """Pad a map that is not whole windows (Swin); false: refuse it (MaxViT asserts)."""
    parts = {"qkv": "qkv", "attend": "attend", "proj": "proj"}
    runs_channels_last: ClassVar[bool] = True  # its torch module (and its parts) too

    @property
    def spatial_expansion(self) -> bool:  # type: ignore[override]
        """A window attention pads a map that is not whole windows: its expansion depends on
        the map's size; a global one's does not (and is memoized on the channels alone)."""
        return self.window is not None

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        d, m = x.c, self.window
        if m is not None and self.pad and self.partition == "window" and (x.h % m or x.w % m):
            # torchvision pads the map to whole windows before the qkv projection (which then
            # runs on the padding too) and crops the result
            return [derived(WindowPad, name="pad", window=m), *self._steps(d),
                    derived(Crop, name="crop", h=x.h, w=x.w)]
        return self._steps(d)

    def _steps(self, d: int) -> list[LayerSpec]:
        return [
            derived(Linear, name="qkv", out=3 * d, bias=self.qkv_bias, channels_last=True,
                    channel_scaling="fixed"),
            derived(Attend, name="attend", heads=self.heads, window=self.window,
                    shift=self.shift, relative_position_bias=self.relative_position_bias,
                    impl=self.impl, partition=self.partition),
            derived(Linear, name="proj", out=d, bias=self.proj_bias, channels_last=True,
                    channel_scaling="fixed"),
        ]
