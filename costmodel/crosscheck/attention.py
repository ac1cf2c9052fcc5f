"""Torch modules and readers of the attention vocabulary (#14): tokens, class token,
position embedding, patch merging, window padding and cropping, and ``attend`` — registered
on ``costmodel.crosscheck.builder``'s tables (``@torch_module``, ``@reads``,
``@reads_by_name``), which imports this module once it is whole."""

from __future__ import annotations

import torch
from torch import nn

import torch.nn.functional as F

from costmodel.crosscheck.builder import reader_for, reads, reads_by_name, torch_module
from costmodel.engine import Row
from costmodel.errors import CostModelError
from costmodel.shape import Shape


# --- attention (#14) -----------------------------------------------------------------------
#
# Tokens run channels last, as after a ``permute``: a ViT sequence of L tokens is N×L×1×D
# (the spec's D×L×1), a Swin map N×H×W×C. ``attention`` is a block: its ``qkv`` and ``proj``
# rows are channels-last ``linear`` layers (nn.Linear), its ``attend`` row the module below.

from costmodel.layers.attention import Attend as AttendLayer  # noqa: E402
from costmodel.layers.attention import relative_bias_params  # noqa: E402
from costmodel.layers.tokens import ClassToken as ClassTokenLayer  # noqa: E402
from costmodel.layers.tokens import Crop as CropLayer  # noqa: E402
from costmodel.layers.tokens import WindowPad as WindowPadLayer  # noqa: E402
from costmodel.layers.tokens import PatchMerge as PatchMergeLayer  # noqa: E402
from costmodel.layers.tokens import PosEmbed as PosEmbedLayer  # noqa: E402
from costmodel.layers.tokens import SelectToken as SelectTokenLayer  # noqa: E402
from costmodel.layers.tokens import Tokens as TokensLayer  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402


class Tokens(nn.Module):
    """N×C×H×W → N×C×(H·W)×1 (a view; the permute to channels last follows)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).unsqueeze(-1)


@torch_module(TokensLayer)
def _tokens(row: Row) -> nn.Module:
    return Tokens()


@reads(Tokens)
def _read_tokens(module: nn.Module, x: Shape) -> dict:
    return {"type": "tokens"}


class ClassToken(nn.Module):
    """Prepends a learned token to an N×L×1×D sequence (ViT's ``class_token``, zeros)."""

    def __init__(self, d: int):
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, 1, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.class_token.expand(x.shape[0], -1, -1, -1), x], dim=1)


@torch_module(ClassTokenLayer)
def _class_token(row: Row) -> nn.Module:
    return ClassToken(row.inputs[0].c)


@reads(ClassToken)
def _read_class_token(module: nn.Module, x: Shape) -> dict:
    return {"type": "class_token"}


class PosEmbed(nn.Module):
    """Adds a learned embedding (ViT's ``pos_embedding``, normal with std 0.02) to an
    N×H×W×C channels-last tensor (N×L×1×D for a sequence)."""

    def __init__(self, h: int, w: int, c: int):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, h, w, c).normal_(std=0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding


@torch_module(PosEmbedLayer)
def _pos_embed(row: Row) -> nn.Module:
    x = row.inputs[0]
    return PosEmbed(x.h, x.w, x.c)


@reads(PosEmbed)
def _read_pos_embed(module: nn.Module, x: Shape) -> dict:
    return {"type": "pos_embed"}


class SelectToken(nn.Module):
    """``x[:, index]`` of an N×L×1×D sequence: N×D."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index, 0]


@torch_module(SelectTokenLayer)
def _select_token(row: Row) -> nn.Module:
    return SelectToken(row.layer.index)


@reads(SelectToken)
def _read_select_token(module: SelectToken, x: Shape) -> dict:
    return {"type": "select_token", "index": module.index}


class PatchMerge(nn.Module):
    """Swin's patch merging without its norm and linear (torchvision's
    ``_patch_merging_pad``): N×H×W×C → N×⌈H/2⌉×⌈W/2⌉×4C."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
                          x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)


@torch_module(PatchMergeLayer)
def _patch_merge(row: Row) -> nn.Module:
    return PatchMerge()


@reads(PatchMerge)
def _read_patch_merge(module: nn.Module, x: Shape) -> dict:
    return {"type": "patch_merge"}


class WindowPad(nn.Module):
    """Zero-pads an N×H×W×C map at the bottom and right to whole M×M windows."""

    def __init__(self, window: int):
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1:3]
        m = self.window
        return F.pad(x, (0, 0, 0, (m - w % m) % m, 0, (m - h % m) % m))


@torch_module(WindowPadLayer)
def _window_pad(row: Row) -> nn.Module:
    return WindowPad(row.layer.window)


@reads(WindowPad)
def _read_window_pad(module: WindowPad, x: Shape) -> dict:
    return {"type": "window_pad", "window": module.window}


class Crop(nn.Module):
    """The top-left h×w of an N×H×W×C map, made contiguous (a copy)."""

    def __init__(self, h: int, w: int):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :self.h, :self.w, :].contiguous()


@torch_module(CropLayer)
def _crop(row: Row) -> nn.Module:
    return Crop(row.layer.h, row.layer.w)


@reads(Crop)
def _read_crop(module: Crop, x: Shape) -> dict:
    return {"type": "crop", "h": module.h, "w": module.w}


def _shift_mask(h: int, w: int, window: int, shift: tuple[int, int]) -> torch.Tensor:
    """Swin's mask for shifted windows (torchvision's ``shifted_window_attention``): −100
    between two positions of a window that came from different regions before the cyclic
    shift, 0 elsewhere; nW×M²×M²."""
    region = torch.zeros(h, w)
    h_cuts = ((0, -window), (-window, -shift[0]), (-shift[0], None))
    w_cuts = ((0, -window), (-window, -shift[1]), (-shift[1], None))
    label = 0
    for h0, h1 in h_cuts:
        for w0, w1 in w_cuts:
            region[h0:h1, w0:w1] = label
            label += 1
    region = region.view(h // window, window, w // window, window).permute(0, 2, 1, 3)
    region = region.reshape(-1, window * window)
    diff = region.unsqueeze(1) - region.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class Attend(nn.Module):
    """Multi-head attention on q, k, v packed in the last dim of an N×H×W×3D tensor (as a
    ``qkv`` linear or nn.MultiheadAttention's in-projection packs them): all H·W tokens at
    once, or in M×M windows cyclically shifted by ``shift`` (Swin) with a learned relative
    position bias (``relative_position_bias_table``, (2M−1)²×heads, as torchvision names it).

    ``impl: matmul`` computes ``(q/√d) @ kᵀ`` and ``attn @ v`` as torchvision's Swin does
    (fvcore: aten::matmul); ``impl: sdpa`` calls F.scaled_dot_product_attention as
    nn.MultiheadAttention does (fvcore: unsupported, 0)."""

    def __init__(self, heads: int, window: int | None, shift: int, relative_bias: bool,
                 impl: str, partition: str = "window"):
        super().__init__()
        self.heads, self.window, self.shift, self.impl = heads, window, shift, impl
        self.partition = partition
        if relative_bias and window:
            m = window
            self.relative_position_bias_table = nn.Parameter(
                torch.empty(relative_bias_params(m, heads) // heads, heads).normal_(std=0.02))
            coords = torch.stack(torch.meshgrid(torch.arange(m), torch.arange(m),
                                                indexing="ij")).flatten(1)  # 2×M²
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (m - 1)
            self.register_buffer("relative_position_index",
                                 (rel[..., 0] * (2 * m - 1) + rel[..., 1]).flatten(),
                                 persistent=False)
        else:
            self.relative_position_bias_table = None

    def _bias(self, n: int, h: int, w: int, shift: tuple[int, int]) -> torch.Tensor | None:
        """The additive bias on the (N·nW)×heads×M²×M² scores, where there is one: the
        relative position bias (1×heads×M²×M²) plus the shift mask ((N·nW)×1×M²×M²)."""
        bias, m = None, self.window
        if self.relative_position_bias_table is not None:
            table = self.relative_position_bias_table[self.relative_position_index]
            bias = table.view(m * m, m * m, -1).permute(2, 0, 1).unsqueeze(0)
        if any(shift):
            mask = _shift_mask(h, w, m, shift).unsqueeze(1).repeat(n, 1, 1, 1)
            bias = mask if bias is None else bias + mask
        return bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c3 = x.shape
        d, m = c3 // 3, self.window
        # Swin: no shift along a side the window covers (torchvision's rule)
        shift = (self.shift if m and m < h else 0, self.shift if m and m < w else 0)
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        if m and self.partition == "grid":  # MaxViT: the tokens H/M, W/M apart together
            x = x.view(n, m, h // m, m, w // m, c3).permute(0, 2, 4, 1, 3, 5)
            x = x.reshape(-1, m * m, c3)
        elif m:  # N×H×W×3D → (N·nW)×M²×3D
            x = x.view(n, h // m, m, w // m, m, c3).permute(0, 1, 3, 2, 4, 5)
            x = x.reshape(-1, m * m, c3)
        else:
            x = x.reshape(n, h * w, c3)
        b, t = x.shape[:2]
        q, k, v = x.reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        bias = self._bias(n, h, w, shift)
        if self.impl == "matmul":
            scores = (q * (d // self.heads) ** -0.5).matmul(k.transpose(-2, -1))
            if bias is not None:
                scores = scores + bias
            out = scores.softmax(-1).matmul(v)
        elif self.impl == "einsum":  # as MaxViT's RelativePositionalMultiHeadAttention
            scores = torch.einsum("bhid,bhjd->bhij", q, k * (d // self.heads) ** -0.5)
            if bias is not None:
                scores = scores + bias
            out = torch.einsum("bhij,bhjd->bhid", scores.softmax(-1), v)
        else:
            # torch's math backend: its CPU flash kernel has no FlopCounterMode formula; the
            # math one runs (and so is counted as) the two matmuls. fvcore sees one op either way
            with sdpa_kernel(SDPBackend.MATH):
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.transpose(1, 2).reshape(b, t, d)
        if not m:
            return out.view(n, h, w, d)
        if self.partition == "grid":
            return out.view(n, h // m, w // m, m, m, d).permute(0, 3, 1, 4, 2, 5).reshape(
                n, h, w, d)
        out = out.view(n, h // m, w // m, m, m, d).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, d)
        return torch.roll(out, shifts=shift, dims=(1, 2)) if any(shift) else out

    def extra_repr(self) -> str:
        return f"heads={self.heads}, window={self.window}, shift={self.shift}, impl={self.impl}"


def _attend_op(row: Row) -> str | None:
    return {"matmul": "matmul", "einsum": "einsum"}.get(row.layer.impl)


@torch_module(AttendLayer, fvcore_op=_attend_op)
def _attend(row: Row) -> nn.Module:
    layer = row.layer
    return Attend(layer.heads, layer.window, layer.shift, layer.relative_position_bias,
                  layer.impl, layer.partition)


@reads(Attend)
def _read_attend(module: Attend, x: Shape) -> dict:
    return {"type": "attend", "heads": module.heads, "window": module.window,
            "shift": module.shift, "impl": module.impl, "partition": module.partition,
            "relative_position_bias": module.relative_position_bias_table is not None}


@reads(nn.MultiheadAttention)
def _read_multihead_attention(module: nn.MultiheadAttention, x: Shape) -> dict:
    """Self-attention as torchvision's ViT runs it (``attn(x, x, x, need_weights=False)``):
    in-projection, SDPA, out-projection — the ``attention`` block with ``impl: sdpa``."""
    if not module._qkv_same_embed_dim or module.bias_k is not None or module.add_zero_attn:
        raise CostModelError("only plain self-attention is known (no kdim/vdim, add_bias_kv or "
                             "add_zero_attn)", field="attention")
    return {"type": "attention", "heads": module.num_heads,
            "qkv_bias": module.in_proj_bias is not None,
            "proj_bias": module.out_proj.bias is not None, "impl": "sdpa"}


@reads_by_name("torchvision.models.swin_transformer.ShiftedWindowAttention")
def _read_shifted_window_attention(module: nn.Module, x: Shape) -> dict:
    """torchvision's ShiftedWindowAttention (Swin v1): window attention with a relative
    position bias, computed as explicit matmuls."""
    window, shift = list(module.window_size), list(module.shift_size)
    if window[0] != window[1] or shift[0] != shift[1]:
        raise CostModelError(f"only square windows and shifts are known, got window {window} "
                             f"and shift {shift}", field="window_size")
    return {"type": "attention", "heads": module.num_heads, "window": window[0],
            "shift": shift[0], "relative_position_bias": True, "impl": "matmul",
            "qkv_bias": module.qkv.bias is not None, "proj_bias": module.proj.bias is not None}


@reads_by_name("torchvision.models.maxvit.PartitionAttentionLayer")
def _read_partition_attention(module: nn.Module, x: Shape) -> dict:
    """torchvision's PartitionAttentionLayer (MaxViT): on an N×C×H×W map, a pre-norm
    attention residual and a pre-norm MLP residual over 7×7 partitions (window: neighbours;
    grid: tokens H/7, W/7 apart), einsum products with a relative position bias. torchvision
    runs them on the partitioned tokens; each per-token layer costs the same on the map
    (channels last), so only the attention partitions it (as specs/maxvit_t.yaml says)."""
    norm, attn, drop = module.attn_layer
    mlp = list(module.mlp_layer)
    kinds = [type(m).__name__ for m in mlp]
    if kinds[:2] != ["LayerNorm", "Linear"] or kinds[-2:] != ["Linear", "Dropout"] \
            or len(mlp) != 5 or type(attn).__name__ != "RelativePositionalMultiHeadAttention":
        raise CostModelError(f"a PartitionAttentionLayer of {kinds} is not torchvision's MaxViT "
                             "layer", field="mlp_layer")
    window = module.p if module.partition_type == "window" else module.g
    token = Shape(x.c, 1, 1, flat=True)

    def per_token(m: nn.Module, at: Shape = token) -> dict:
        fields = reader_for(m)(m, at)
        return {**fields, "channels_last": True} if fields["type"] in ("linear", "layer_norm") \
            else fields

    hidden = Shape(mlp[1].out_features, 1, 1, flat=True)
    return {"type": "sequential", "layers": [
        {"name": "to_channels_last", "type": "permute", "to": "channels_last"},
        {"name": "attn_layer", "type": "residual", "layers": [
            {"name": "0", **per_token(norm)},
            {"name": "1", "type": "attention", "heads": attn.n_heads, "window": window,
             "partition": module.partition_type, "relative_position_bias": True,
             "impl": "einsum", "pad": False, "qkv_bias": attn.to_qkv.bias is not None,
             "proj_bias": attn.merge.bias is not None},
            {"name": "2", **per_token(drop)}]},
        {"name": "mlp_layer", "type": "residual", "layers": [
            {"name": str(i), **per_token(m, hidden if i in (2, 3) else token)}
            for i, m in enumerate(mlp)]},
        {"name": "to_channels_first", "type": "permute", "to": "channels_first"}]}
