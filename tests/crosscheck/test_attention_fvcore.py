"""Attention and tokens (#14) against fvcore and torch: small specs verified layer by layer,
and hand-written modules in torchvision's style (a ViT with nn.MultiheadAttention, Swin's
ShiftedWindowAttention and PatchMerging, copied from torchvision 0.29) counted by fvcore
directly, against the spec's totals and per operator. torchvision itself is not needed
(scripts/check_transformers_tv.py checks the zoo's specs against it)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from conftest import run_layers, verify_layers
from torch import nn

from costmodel.crosscheck.builder import TORCH_READERS, build, reader_for, torch_layer
from costmodel.errors import CostModelError
from costmodel.options import Options

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis

CL = [{"type": "permute"}]
FVCORE = Options(scope="fvcore", bn_params=True)


# --- a ViT in torchvision's style (torchvision.models.vision_transformer) -------------------

class MLPBlock(nn.Sequential):
    def __init__(self, d: int, mlp: int):
        super().__init__(nn.Linear(d, mlp), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp, d),
                         nn.Dropout(0.0))


class EncoderBlock(nn.Module):
    def __init__(self, heads: int, d: int, mlp: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(d, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = MLPBlock(d, mlp)

    def forward(self, input):
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x)
        x = x + input
        y = self.ln_2(x)
        y = self.mlp(y)
        return x + y


class VisionTransformer(nn.Module):
    def __init__(self, image: int, patch: int, layers: int, heads: int, d: int, mlp: int,
                 classes: int):
        super().__init__()
        self.patch, self.d = patch, d
        self.conv_proj = nn.Conv2d(3, d, kernel_size=patch, stride=patch)
        seq = (image // patch) ** 2 + 1
        self.class_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embedding = nn.Parameter(torch.empty(1, seq, d).normal_(std=0.02))
        self.layers = nn.Sequential(*[EncoderBlock(heads, d, mlp) for _ in range(layers)])
        self.ln = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        n, _, h, w = x.shape
        x = self.conv_proj(x).reshape(n, self.d, (h // self.patch) * (w // self.patch))
        x = x.permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        x = self.ln(self.layers(x + self.pos_embedding))
        return self.head(x[:, 0])


def vit_spec(patch: int, layers: int, heads: int, d: int, mlp: int, classes: int) -> list:
    block = [
        {"type": "residual", "layers": [
            {"type": "layer_norm", "channels_last": True},
            {"type": "attention", "heads": heads}, {"type": "dropout", "p": 0.0}]},
        {"type": "residual", "layers": [
            {"type": "layer_norm", "channels_last": True},
            {"type": "linear", "out": mlp, "channels_last": True}, {"type": "gelu"},
            {"type": "dropout", "p": 0.0},
            {"type": "linear", "out": d, "channels_last": True}, {"type": "dropout", "p": 0.0}]}]
    return [{"type": "conv", "out": d, "kernel": patch, "stride": patch, "bias": True},
            {"type": "tokens"}, *CL, {"type": "class_token"}, {"type": "pos_embed"},
            {"type": "repeat", "n": layers, "layers": block},
            {"type": "layer_norm", "channels_last": True}, {"type": "select_token"},
            {"type": "linear", "out": classes}]


# --- Swin's attention and patch merging (torchvision.models.swin_transformer) ---------------

def shifted_window_attention(input, qkv_weight, proj_weight, relative_position_bias,
                             window_size, num_heads, shift_size, qkv_bias=None,
                             proj_bias=None):
    B, H, W, C = input.shape
    pad_r = (window_size[1] - W % window_size[1]) % window_size[1]
    pad_b = (window_size[0] - H % window_size[0]) % window_size[0]
    x = F.pad(input, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_H, pad_W, _ = x.shape
    shift_size = shift_size.copy()
    if window_size[0] >= pad_H:
        shift_size[0] = 0
    if window_size[1] >= pad_W:
        shift_size[1] = 0
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(-shift_size[0], -shift_size[1]), dims=(1, 2))
    num_windows = (pad_H // window_size[0]) * (pad_W // window_size[1])
    x = x.view(B, pad_H // window_size[0], window_size[0], pad_W // window_size[1],
               window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * num_windows, window_size[0] * window_size[1], C)
    qkv = F.linear(x, qkv_weight, qkv_bias)
    qkv = qkv.reshape(x.size(0), x.size(1), 3, num_heads, C // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = q * (C // num_heads) ** -0.5
    attn = q.matmul(k.transpose(-2, -1))
    attn = attn + relative_position_bias
    if sum(shift_size) > 0:
        attn_mask = x.new_zeros((pad_H, pad_W))
        h_slices = ((0, -window_size[0]), (-window_size[0], -shift_size[0]),
                    (-shift_size[0], None))
        w_slices = ((0, -window_size[1]), (-window_size[1], -shift_size[1]),
                    (-shift_size[1], None))
        count = 0
        for h in h_slices:
            for w in w_slices:
                attn_mask[h[0]:h[1], w[0]:w[1]] = count
                count += 1
        attn_mask = attn_mask.view(pad_H // window_size[0], window_size[0],
                                   pad_W // window_size[1], window_size[1])
        attn_mask = attn_mask.permute(0, 2, 1, 3).reshape(num_windows,
                                                          window_size[0] * window_size[1])
        attn_mask = attn_mask.unsqueeze(1) - attn_mask.unsqueeze(2)
        attn_mask = attn_mask.masked_fill(attn_mask != 0, -100.0).masked_fill(attn_mask == 0,
                                                                              0.0)
        attn = attn.view(x.size(0) // num_windows, num_windows, num_heads, x.size(1), x.size(1))
        attn = attn + attn_mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, num_heads, x.size(1), x.size(1))
    attn = F.softmax(attn, dim=-1)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), C)
    x = F.linear(x, proj_weight, proj_bias)
    x = x.view(B, pad_H // window_size[0], pad_W // window_size[1], window_size[0],
               window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, pad_H, pad_W, C)
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(shift_size[0], shift_size[1]), dims=(1, 2))
    return x[:, :H, :W, :].contiguous()


class ShiftedWindowAttention(nn.Module):
    def __init__(self, dim, window_size, shift_size, num_heads, qkv_bias=True, proj_bias=True):
        super().__init__()
        self.window_size, self.shift_size, self.num_heads = window_size, shift_size, num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size[0] - 1) * (2 * window_size[1] - 1), num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window_size[0]),
                                            torch.arange(window_size[1]), indexing="ij"))
        coords_flatten = torch.flatten(coords, 1)
        rel = (coords_flatten[:, :, None] - coords_flatten[:, None, :]).permute(1, 2, 0)
        rel[:, :, 0] += window_size[0] - 1
        rel[:, :, 1] += window_size[1] - 1
        rel[:, :, 0] *= 2 * window_size[1] - 1
        self.register_buffer("relative_position_index", rel.sum(-1).flatten())

    def forward(self, x):
        n = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index]
        bias = bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        return shifted_window_attention(x, self.qkv.weight, self.proj.weight, bias,
                                        self.window_size, self.num_heads, self.shift_size,
                                        self.qkv.bias, self.proj.bias)


# torchvision's class, by the name the importer looks it up by
ShiftedWindowAttention.__module__ = "torchvision.models.swin_transformer"


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        H, W, _ = x.shape[-3:]
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :],
                       x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x))


class SwinBlock(nn.Module):
    def __init__(self, dim, heads, window, shift):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftedWindowAttention(dim, [window, window], [shift, shift], heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinySwin(nn.Module):
    """Swin-T's structure, small: patch 4, C 8, two stages of two blocks, window 3."""

    def __init__(self, classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 8, 4, 4), Permute([0, 2, 3, 1]), nn.LayerNorm(8)),
            SwinBlock(8, 2, 3, 0), SwinBlock(8, 2, 3, 1), PatchMerging(8),
            SwinBlock(16, 4, 3, 0), SwinBlock(16, 4, 3, 1))
        self.norm = nn.LayerNorm(16)
        self.permute = Permute([0, 3, 1, 2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        x = self.permute(self.norm(self.features(x)))
        return self.head(torch.flatten(self.avgpool(x), 1))


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


def swin_block(dim: int, heads: int, shift: int) -> list:
    return [
        {"type": "residual", "layers": [
            {"type": "layer_norm", "channels_last": True},
            {"type": "attention", "heads": heads, "window": 3, "shift": shift,
             "relative_position_bias": True, "impl": "matmul"}]},
        {"type": "residual", "layers": [
            {"type": "layer_norm", "channels_last": True},
            {"type": "linear", "out": 4 * dim, "channels_last": True}, {"type": "gelu"},
            {"type": "linear", "out": dim, "channels_last": True}]}]


def swin_spec(classes: int) -> list:
    return [{"type": "conv", "out": 8, "kernel": 4, "stride": 4, "bias": True}, *CL,
            {"type": "layer_norm", "channels_last": True},
            *swin_block(8, 2, 0), *swin_block(8, 2, 1),
            {"type": "patch_merge"}, {"type": "layer_norm", "channels_last": True},
            {"type": "linear", "out": 16, "bias": False, "channels_last": True},
            *swin_block(16, 4, 0), *swin_block(16, 4, 1),
            {"type": "layer_norm", "channels_last": True},
            {"type": "permute", "to": "channels_first"}, {"type": "global_pool"},
            {"type": "flatten"}, {"type": "linear", "out": classes}]


# --- MaxViT's partition attention (torchvision.models.maxvit) --------------------------------

class RelativePositionalMultiHeadAttention(nn.Module):
    def __init__(self, feat_dim: int, head_dim: int, max_seq_len: int):
        super().__init__()
        self.n_heads, self.head_dim = feat_dim // head_dim, head_dim
        self.size, self.max_seq_len = int(max_seq_len ** 0.5), max_seq_len
        self.to_qkv = nn.Linear(feat_dim, self.n_heads * self.head_dim * 3)
        self.scale_factor = feat_dim ** -0.5
        self.merge = nn.Linear(self.head_dim * self.n_heads, feat_dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * self.size - 1) * (2 * self.size - 1), self.n_heads))
        coords = torch.stack(torch.meshgrid([torch.arange(self.size)] * 2, indexing="ij"))
        flat = torch.flatten(coords, 1)
        rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += self.size - 1
        rel[:, :, 1] += self.size - 1
        rel[:, :, 0] *= 2 * self.size - 1
        self.register_buffer("relative_position_index", rel.sum(-1))

    def forward(self, x):
        B, G, P, D = x.shape
        H, DH = self.n_heads, self.head_dim
        q, k, v = torch.chunk(self.to_qkv(x), 3, dim=-1)
        q = q.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        k = k.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        v = v.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        k = k * self.scale_factor
        dot_prod = torch.einsum("B G H I D, B G H J D -> B G H I J", q, k)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(self.max_seq_len, self.max_seq_len, -1).permute(2, 0, 1).unsqueeze(0)
        dot_prod = F.softmax(dot_prod + bias, dim=-1)
        out = torch.einsum("B G H I J, B G H J D -> B G H I D", dot_prod, v)
        return self.merge(out.permute(0, 1, 3, 2, 4).reshape(B, G, P, D))


class PartitionAttentionLayer(nn.Module):
    """torchvision's, on a C×H×W map with H = W (its grid_size)."""

    def __init__(self, c: int, head_dim: int, partition: int, kind: str, side: int):
        super().__init__()
        n = side // partition
        self.p = partition if kind == "window" else n
        self.grid = kind == "grid"
        self.attn_layer = nn.Sequential(
            nn.LayerNorm(c), RelativePositionalMultiHeadAttention(c, head_dim, partition ** 2),
            nn.Dropout(0.0))
        self.mlp_layer = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, 4 * c), nn.GELU(),
                                       nn.Linear(4 * c, c), nn.Dropout(0.0))

    def forward(self, x):
        B, C, H, W = x.shape
        P = self.p
        x = x.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(B, (H // P) * (W // P), P * P, C)
        if self.grid:
            x = torch.swapaxes(x, -2, -3)
        x = x + self.attn_layer(x)
        x = x + self.mlp_layer(x)
        if self.grid:
            x = torch.swapaxes(x, -2, -3)
        x = x.reshape(B, H // P, W // P, P, P, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, H, W)


class MaxVitAttentions(nn.Module):
    """A 3→C stem conv, then MaxViT's window and grid attention layers."""

    def __init__(self, c: int, head_dim: int, partition: int, side: int):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 1)
        self.window = PartitionAttentionLayer(c, head_dim, partition, "window", side)
        self.grid = PartitionAttentionLayer(c, head_dim, partition, "grid", side)

    def forward(self, x):
        return self.grid(self.window(self.stem(x)))


def maxvit_spec(c: int, head_dim: int, partition: int) -> list:
    def layer(kind):
        return [*CL, {"type": "residual", "layers": [
            {"type": "layer_norm", "channels_last": True},
            {"type": "attention", "heads": c // head_dim, "window": partition,
             "partition": kind, "relative_position_bias": True, "impl": "einsum",
             "pad": False}]},
            {"type": "residual", "layers": [
                {"type": "layer_norm", "channels_last": True},
                {"type": "linear", "out": 4 * c, "channels_last": True}, {"type": "gelu"},
                {"type": "linear", "out": c, "channels_last": True}]},
            {"type": "permute", "to": "channels_first"}]
    return [{"type": "conv", "out": c, "kernel": 1, "bias": True}, *layer("window"),
            *layer("grid")]


def _fvcore(module: nn.Module, side: int) -> tuple[int, dict[str, int], int]:
    flops = FlopCountAnalysis(module.eval(), torch.randn(1, 3, side, side))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    ops = {k: int(v) for k, v in flops.by_operator().items() if v}
    return int(flops.total()), ops, sum(p.numel() for p in module.parameters())


def _analytic(layers: list, side: int) -> tuple[int, dict[str, int], int]:
    result = run_layers(layers, input=(side, side), in_channels=3, options=FVCORE)
    ops: dict[str, int] = {}
    for row in result.rows:
        if row.flops:
            op = torch_layer(row).fvcore_op(row)
            ops[op] = ops.get(op, 0) + row.flops
    return result.totals.flops, ops, result.totals.params


@pytest.mark.parametrize("module,layers,side", [
    pytest.param(lambda: VisionTransformer(32, 8, 2, 2, 16, 32, 10),
                 vit_spec(8, 2, 2, 16, 32, 10), 32, id="vit"),
    # 40: a 10×10 map in 3×3 windows is padded to 12×12, then 5×5 to 6×6
    pytest.param(lambda: TinySwin(10), swin_spec(10), 40, id="swin-padded"),
    pytest.param(lambda: TinySwin(10), swin_spec(10), 48, id="swin-whole-windows"),
    # 4 windows · 3 heads · 9·9 · 8 = 7,776 per product: fvcore's einsum counts 7,775
    pytest.param(lambda: MaxVitAttentions(24, 8, 3, 6), maxvit_spec(24, 8, 3), 6,
                 id="maxvit-window-grid-einsum"),
])
def test_handwritten_torchvision_style_transformers(module, layers, side):
    """fvcore's total and per-operator count, and torch's params, on the modules written as
    torchvision writes them, equal the spec's: nn.MultiheadAttention's projections are
    fvcore's linear and its SDPA is not counted; Swin's matmuls are fvcore's matmul."""
    assert _analytic(layers, side) == _fvcore(module(), side)


@pytest.mark.parametrize("layers,side", [
    pytest.param(vit_spec(8, 1, 2, 16, 32, 10), 32, id="vit"),
    pytest.param(swin_spec(10), 40, id="swin-padded"),
    pytest.param(maxvit_spec(24, 8, 3), 6, id="maxvit"),
])
def test_transformer_specs_verify_layer_by_layer(layers, side):
    """The builder's modules: every layer's fvcore FLOPs, params and output shape, and
    FlopCounterMode's 2×madds (the attention products included: paper scope counts them)."""
    v = verify_layers(layers, input=(side, side), in_channels=3)
    assert v.ok and v.verdict == "exact", (v.differing, [o for o in v.ops if not o.ok])


def test_sdpa_attention_counted_by_flop_counter_only():
    d, tokens = 12, 6
    v = verify_layers([*CL, {"name": "a", "type": "attention", "heads": 3}],
                      input=(tokens, 1), in_channels=d)
    attend = next(c for c in v.layers if c.path == "a.attend")
    assert (attend.flops, attend.fvcore_flops) == (0, 0)
    assert v.madds_x2 == v.flop_counter == 2 * (tokens * d * 3 * d + 2 * tokens * tokens * d
                                                + tokens * d * d)
    assert any(u.op == "aten::scaled_dot_product_attention" for u in v.uncounted)


def test_readers_give_back_the_layers():
    layers = [*CL, {"name": "pad", "type": "window_pad", "window": 3},
              {"name": "a", "type": "attend", "heads": 2, "window": 3, "shift": 1,
               "relative_position_bias": True, "impl": "matmul", "partition": "window"},
              {"name": "crop", "type": "crop", "h": 5, "w": 4},
              {"name": "pm", "type": "patch_merge"}]
    result = run_layers(layers, input=(5, 4), in_channels=12)
    modules = dict(build(result).named_children())
    for layer, row in zip(layers[1:], result.rows[1:]):
        module = modules[row.path]
        assert TORCH_READERS[type(module)](module, row.inputs[0]) == \
            {k: v for k, v in layer.items() if k != "name"}


def test_torchvision_attention_modules_are_read_as_the_attention_block():
    mha = nn.MultiheadAttention(16, 4, batch_first=True)
    assert reader_for(mha)(mha, None) == {"type": "attention", "heads": 4, "qkv_bias": True,
                                         "proj_bias": True, "impl": "sdpa"}
    swa = ShiftedWindowAttention(16, [7, 7], [3, 3], 4, qkv_bias=False)
    assert reader_for(swa)(swa, None) == {
        "type": "attention", "heads": 4, "window": 7, "shift": 3,
        "relative_position_bias": True, "impl": "matmul", "qkv_bias": False,
        "proj_bias": True}
    cross = nn.MultiheadAttention(16, 4, kdim=8, vdim=8)
    with pytest.raises(CostModelError, match="self-attention"):
        reader_for(cross)(cross, None)

    class Unknown(nn.Module):
        pass

    assert reader_for(Unknown()) is None
