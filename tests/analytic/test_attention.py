"""Attention and tokens (#14): multi-head self-attention, global (ViT) or in shifted windows
(Swin), and the token layers around it. Expected values are the formulas' arithmetic; the
primitives' rows join test_formulas' CASES (every primitive needs one)."""

from __future__ import annotations

import pytest

from conftest import run_layers

from costmodel.api import evaluate_model
from costmodel.errors import CostModelError
from costmodel.layers.attention import fvcore_einsum
from costmodel.options import Options

# (layer, input C×H×W, output (C,) for a vector, FLOPs (papers), fvcore FLOPs, params, MAC)
CASES = [
    pytest.param({"type": "tokens"}, (8, 4, 2), (8, 8, 1), 0, 0, 0, 0, id="tokens"),
    pytest.param({"type": "class_token"}, (8, 5, 1), (8, 6, 1), 0, 0, 8,
                 8 * 5 + 8 + 8 * 6, id="class-token"),
    pytest.param({"type": "pos_embed"}, (8, 5, 1), (8, 5, 1), 0, 0, 8 * 5, 3 * 8 * 5,
                 id="pos-embed"),
    pytest.param({"type": "select_token"}, (8, 5, 1), (8,), 0, 0, 0, 0, id="select-token"),
    pytest.param({"type": "select_token", "index": 4}, (8, 5, 1), (8,), 0, 0, 0, 0,
                 id="select-last-token"),
    pytest.param({"type": "patch_merge"}, (8, 4, 4), (32, 2, 2), 0, 0, 0, 8 * 16 + 32 * 4,
                 id="patch-merge"),
    pytest.param({"type": "patch_merge"}, (8, 5, 3), (32, 3, 2), 0, 0, 0, 8 * 15 + 32 * 6,
                 id="patch-merge-odd-padded"),
    pytest.param({"type": "window_pad", "window": 3}, (8, 4, 5), (8, 6, 6), 0, 0, 0,
                 8 * 20 + 8 * 36, id="window-pad"),
    pytest.param({"type": "window_pad", "window": 2}, (8, 4, 4), (8, 4, 4), 0, 0, 0,
                 2 * 8 * 16, id="window-pad-whole"),
    pytest.param({"type": "crop", "h": 3, "w": 2}, (8, 4, 4), (8, 3, 2), 0, 0, 0,
                 8 * 16 + 8 * 6, id="crop"),
    # L = 5 tokens of D = 8 in 2 heads: q·kᵀ and attn·v are L·L·D each
    pytest.param({"type": "attend", "heads": 2}, (24, 5, 1), (8, 5, 1), 2 * 5 * 5 * 8, 0, 0,
                 24 * 5 + 8 * 5, id="attend-sdpa"),
    pytest.param({"type": "attend", "heads": 2, "impl": "matmul"}, (24, 5, 1), (8, 5, 1),
                 2 * 5 * 5 * 8, 2 * 5 * 5 * 8, 0, 24 * 5 + 8 * 5, id="attend-matmul"),
    # a 4×4 map of D = 4 in 2×2 windows: each of the 16 queries sees 4 keys; table (2·2−1)²·2
    pytest.param({"type": "attend", "heads": 2, "window": 2, "shift": 1,
                  "relative_position_bias": True, "impl": "matmul"}, (12, 4, 4), (4, 4, 4),
                 2 * 16 * 4 * 4, 2 * 16 * 4 * 4, 3 * 3 * 2, 12 * 16 + 4 * 16 + 18,
                 id="attend-window"),
]


def _rows(layers, inp, scope="paper"):
    c, h, w = inp
    return run_layers(layers, input=(h, w), in_channels=c, options=Options(scope=scope)).rows


@pytest.mark.parametrize("layer,inp,out,flops,fv_flops,params,mac", CASES)
def test_token_and_attention_layers(layer, inp, out, flops, fv_flops, params, mac):
    row = _rows([layer], inp)[-1]
    assert row.out.as_list() == list(out)
    assert (row.flops, row.params, row.mac) == (flops, params, mac)
    assert _rows([layer], inp, "fvcore")[-1].flops == fv_flops


@pytest.mark.parametrize("layer,inp,field", [
    ({"type": "attend", "heads": 2}, (16, 4, 1), None),  # not 3·D channels
    ({"type": "attend", "heads": 3}, (24, 4, 1), "heads"),
    ({"type": "attend", "heads": 1, "window": 3}, (12, 4, 4), "window"),
    ({"type": "attend", "heads": 1, "window": 2, "shift": 2}, (12, 4, 4), "shift"),
    ({"type": "attend", "heads": 1, "shift": 1}, (12, 4, 4), "shift"),
    ({"type": "attention", "heads": 1, "relative_position_bias": True}, (4, 4, 4), "window"),
    ({"type": "class_token"}, (8, 4, 4), None),  # a map, not a token sequence
    ({"type": "select_token", "index": 5}, (8, 5, 1), "index"),
    ({"type": "attention", "heads": 0}, (8, 4, 1), "heads"),
    ({"type": "crop", "h": 5, "w": 2}, (8, 4, 4), "h"),
    ({"type": "attend", "heads": 1, "partition": "grid"}, (12, 4, 4), None),  # no window
    ({"type": "attention", "heads": 1, "window": 3, "pad": False}, (4, 4, 4), "window"),
])
def test_bad_attention_is_refused(layer, inp, field):
    with pytest.raises(CostModelError) as e:
        _rows([layer], inp)
    if field:
        assert field in str(e.value)


def _block(layer, inp, scope="paper"):
    return {r.path.split(".", 1)[-1]: r for r in _rows([{"name": "a", **layer}], inp, scope)}


def test_attention_block_is_qkv_attend_proj():
    d, tokens, heads = 8, 5, 2
    rows = _block({"type": "attention", "heads": heads}, (d, tokens, 1))
    assert list(rows) == ["qkv", "attend", "proj"]
    assert rows["qkv"].flops == tokens * d * 3 * d and rows["qkv"].params == d * 3 * d + 3 * d
    assert rows["attend"].flops == 2 * tokens * tokens * d
    assert rows["proj"].flops == tokens * d * d and rows["proj"].params == d * d + d
    assert rows["proj"].out.as_list() == [d, tokens, 1]
    fv = _block({"type": "attention", "heads": heads}, (d, tokens, 1), "fvcore")
    assert fv["attend"].flops == 0  # sdpa: fvcore cannot count it


def test_attention_biases_and_window_params():
    d, m, heads = 6, 2, 3
    rows = _block({"type": "attention", "heads": heads, "qkv_bias": False, "proj_bias": False,
                   "window": m, "relative_position_bias": True}, (d, 4, 4))
    assert sum(r.params for r in rows.values()) == 3 * d * d + d * d + (2 * m - 1) ** 2 * heads


def test_window_attention_pads_a_map_that_is_not_whole_windows():
    """torchvision pads the map to whole windows before the qkv projection, which then runs
    on the padding too, and crops the result: a 5×6 map in 4×4 windows is run as 8×8."""
    d, heads, m = 8, 2, 4
    rows = _block({"type": "attention", "heads": heads, "window": m, "shift": 2}, (d, 5, 6))
    assert list(rows) == ["pad", "qkv", "attend", "proj", "crop"]
    padded = 8 * 8
    assert rows["qkv"].flops == padded * d * 3 * d
    assert rows["attend"].flops == 2 * padded * m * m * d
    assert rows["crop"].out.as_list() == [d, 5, 6]
    whole = _block({"type": "attention", "heads": heads, "window": m}, (d, 8, 4))
    assert list(whole) == ["qkv", "attend", "proj"]


def test_maxvit_t_counts():
    """MaxViT-T at 224: torchvision's 30,919,624 params and fvcore's 5,608,201,264
    (scripts/check_transformers_tv.py), whose einsum, 177,022,000, is the products as
    fvcore rounds each einsum call."""
    stages = [(64, 56, 2), (128, 28, 2), (256, 14, 5), (512, 7, 2)]
    products = [s * s * 49 * c for c, s, n in stages for _ in range(n) for _ in range(4)]
    assert sum(products) == 177_020_928
    assert sum(fvcore_einsum(p) for p in products) == 177_022_000
    paper = evaluate_model("maxvit_t")
    assert paper.totals.params == 30_919_624
    fvcore = evaluate_model("maxvit_t", options=Options(scope="fvcore"))
    assert fvcore.totals.flops == 5_608_201_264


def test_swin_t_counts():
    """Swin-T at 224: fvcore's numbers on torchvision's model
    (scripts/check_transformers_tv.py): 4,509,232,128 FLOPs (matmul 140,141,568),
    28,288,354 params."""
    stages = [(96, 56, 2, 3), (192, 28, 2, 6), (384, 14, 6, 12), (768, 7, 2, 24)]
    matmul = sum(n * 2 * s * s * 49 * c for c, s, n, _ in stages)
    linear = sum(n * s * s * (c * 3 * c + c * c + 2 * c * 4 * c) for c, s, n, _ in stages) + \
        sum(s * s // 4 * 4 * c * 2 * c for c, s, _, _ in stages[:3]) + 768 * 1000
    block_params = sum(n * (4 * c + 3 * c * c + 3 * c + c * c + c + 13 * 13 * h
                            + c * 4 * c + 4 * c + 4 * c * c + c) for c, _, n, h in stages)
    merge_params = sum(2 * 4 * c + 4 * c * 2 * c for c, _, _, _ in stages[:3])
    params = 96 * 3 * 16 + 96 + 2 * 96 + block_params + merge_params + 2 * 768 + 768 * 1000 \
        + 1000
    paper = evaluate_model("swin_t")
    assert paper.totals.params == params == 28_288_354
    assert paper.totals.flops == 96 * 3 * 16 * 56 * 56 + linear + matmul
    fvcore = evaluate_model("swin_t", options=Options(scope="fvcore"))
    assert fvcore.totals.flops == 4_509_232_128
    assert matmul == 140_141_568


def test_vit_b_16_counts():
    """ViT-B/16 at 224: 197 tokens of 768, 12 blocks; fvcore's numbers on torchvision's model
    (scripts/check_transformers_tv.py): 16,867,412,736 FLOPs, 86,567,656 params."""
    tokens, d, mlp, blocks = 14 * 14 + 1, 768, 3072, 12
    conv = 768 * 3 * 16 * 16 * 14 * 14
    linear = blocks * tokens * (d * 3 * d + d * d + 2 * d * mlp) + d * 1000
    matmuls = blocks * 2 * tokens * tokens * d
    norms = (2 * blocks + 1) * 5 * tokens * d
    params = (768 * 3 * 16 * 16 + 768) + d + tokens * d + 2 * d + d * 1000 + 1000 + blocks * (
        4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * mlp + mlp) + (mlp * d + d))
    paper = evaluate_model("vit_b_16")
    assert paper.totals.flops == conv + linear + matmuls == 17_563_828_224  # the paper's 17.6G
    assert paper.totals.params == params == 86_567_656  # the paper's 86M
    fvcore = evaluate_model("vit_b_16", options=Options(scope="fvcore"))
    assert fvcore.totals.flops == conv + linear + norms == 16_867_412_736
