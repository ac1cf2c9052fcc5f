"""The zoo against the numbers the papers and official code publish (../shared/REFERENCE.md)."""

from __future__ import annotations

import pytest

from costmodel.api import evaluate_model
from costmodel.options import Options
NO_BN = Options(bn_params=False)


def millions(n: int) -> int:
    return round(n / 1e6)


# ---- MobileNet V1 ---------------------------------------------------------------------------

def test_mobilenet_224_matches_slim_and_table_4():
    r = evaluate_model("mobilenet", options=NO_BN)
    fc = 1024 * 1000
    # slim's per-layer docstring: base network 567,716,352 mult-adds and 3,185,088 params,
    # plus the 1024→1000 classifier (weights + bias).
    assert r.totals.flops == 567_716_352 + fc == 568_740_352  # "569M"
    assert r.totals.params == 3_185_088 + fc + 1000 == 4_210_088  # "4.2M"
    with_bn = evaluate_model("mobilenet")
    # one BN after conv1, then one after each depthwise (C_in) and pointwise (C_out) conv
    bn_channels = 32 + (32 + 64) + (64 + 128) + (128 + 128) + (128 + 256) + (256 + 256) \
        + (256 + 512) + 5 * (512 + 512) + (512 + 1024) + (1024 + 1024)
    bn = 2 * bn_channels
    assert with_bn.totals.params == 4_210_088 + bn == 4_231_976  # torch's count with BN γ, β


def test_mobilenet_slim_layer_rows():
    rows = {r.path: r for r in evaluate_model("mobilenet").rows}
    assert rows["conv1"].flops == 10_838_016
    assert rows["dws1.dw"].flops == 3_612_672
    assert rows["dws1.pw"].flops == 25_690_112
    assert rows["dws6.dw"].flops == 451_584
    assert rows["dws7_11.3.pw"].flops == 51_380_224
    assert rows["dws12.dw"].flops == 225_792
    # the last depthwise layer has stride 1 (the paper's "s2" is a typo): 7·7·1024·9
    assert rows["dws13.dw"].flops == 7 * 7 * 1024 * 9 == 451_584
    assert rows["dws13.pw"].out.as_list() == [1024, 7, 7]


def test_mobilenet_table_2_shares():
    """Table 2: Conv 1×1 94.86% / 74.59%, DW 3.06% / 1.06%, Conv 3×3 1.19% / 0.02%,
    FC 0.18% / 24.33% (mult-adds / params, BN not counted)."""
    r = evaluate_model("mobilenet", options=NO_BN)
    cat = r.by_category()
    flops = {c: 100 * cat[c].flops / r.totals.flops for c in ("conv1x1", "depthwise", "conv", "fc")}
    assert round(flops["conv1x1"], 2) == 94.86
    assert round(flops["depthwise"], 2) == 3.06
    assert round(flops["fc"], 2) == 0.18
    # The paper prints 1.19% for the 3×3 conv, but the four rows must add up to 100%:
    # 100 − 94.86 − 3.06 − 0.18 = 1.90, and 10,838,016 / 568,740,352 = 1.906%. The "1.19" is
    # the digits of 1.91 transposed.
    assert round(flops["conv"], 2) == 1.91
    assert round(sum(flops.values()), 6) == 100
    # Params: the paper leaves the FC bias out (1,024,000 of 4,209,088 = 24.33%); we count it
    # (torch's count), which gives 24.35%. Both come from the engine's rows.
    params = {c: 100 * cat[c].params / r.totals.params for c in ("conv1x1", "depthwise", "conv", "fc")}
    assert round(params["conv1x1"], 2) == 74.57
    assert round(params["depthwise"], 2) == 1.06
    assert round(params["conv"], 2) == 0.02
    assert round(params["fc"], 2) == 24.35
    fc_bias = 1000
    weights_total = r.totals.params - fc_bias
    assert round(100 * (cat["fc"].params - fc_bias) / weights_total, 2) == 24.33
    assert round(100 * cat["conv1x1"].params / weights_total, 2) == 74.59


@pytest.mark.parametrize("name,madds,params", [
    ("mobilenet", 569, 4.2), ("mobilenet-0.75", 325, 2.6), ("mobilenet-0.5", 149, 1.3),
    ("mobilenet-0.25", 41, 0.5)])
def test_mobilenet_table_6_width(name, madds, params):
    r = evaluate_model(name, options=NO_BN)
    assert millions(r.totals.flops) == madds
    assert round(r.totals.params / 1e6, 1) == params


@pytest.mark.parametrize("size,exact,paper", [(224, 569, 569), (192, 418, 418),
                                               (160, 291, 290), (128, 186, 186)])
def test_mobilenet_table_7_resolution(size, exact, paper):
    """Table 7 scales the 224 count by ρ² (eq. 7), FC included although the FC does not shrink
    with ρ: at 160 the exact count is 290.68M (291M), the paper's 290M is (160/224)²·568.74M =
    290.17M. At 192 and 128 both ways round alike."""
    r = evaluate_model("mobilenet", input=size, options=NO_BN)
    assert millions(r.totals.flops) == exact
    assert round((size / 224) ** 2 * 568_740_352 / 1e6) == paper
    assert round(r.totals.params / 1e6, 1) == 4.2


def test_mobilenet_075_128_matches_slim():
    """slim docstring: 75% MobileNet base at 128×128 = 106,002,432 mult-adds, 1,800,144 params."""
    r = evaluate_model("mobilenet-0.75", input=128, options=NO_BN)
    fc = 768 * 1000
    assert r.totals.flops == 106_002_432 + fc
    assert r.totals.params == 1_800_144 + fc + 1000


def test_mobilenet_table_3_rows():
    """Table 3 (Dk=3, M=N=512, Df=14): 462M → 52.3M → α=0.75: 29.6M → ρ=0.714 (Df=10): 15.1M."""
    def layer(block: dict, df: int, m: int) -> int:
        from conftest import run_layers
        return run_layers([block], input=(df, df), in_channels=m).totals.flops

    assert round(layer({"type": "conv", "out": 512}, 14, 512) / 1e6) == 462
    assert round(layer({"type": "dwsep", "out": 512}, 14, 512) / 1e6, 1) == 52.3
    assert round(layer({"type": "dwsep", "out": 384}, 14, 384) / 1e6, 1) == 29.6
    assert round(layer({"type": "dwsep", "out": 384}, 10, 384) / 1e6, 1) == 15.1


# ---- ShuffleNet V1 --------------------------------------------------------------------------

@pytest.mark.parametrize("g,complexity", [(1, 143), (2, 140), (3, 137), (4, 133), (8, 137)])
def test_shufflenet_table_1_counts_conv_layers_only(g, complexity):
    """Table 1's complexities count the conv layers but not the final FC layer: with the FC
    (1000·C4 mult-adds) g=2 would read 141M and g=4 134M. Rounded to the nearest million."""
    r = evaluate_model(f"shufflenet-g{g}")
    fc = next(row for row in r.rows if row.path == "fc")
    convs = sum(row.flops for row in r.rows if row.category != "fc")
    assert convs == r.totals.flops - fc.flops
    assert millions(convs) == complexity


def test_shufflenet_table_1_fc_makes_g2_and_g4_disagree():
    with_fc = [millions(evaluate_model(f"shufflenet-g{g}").totals.flops) for g in (2, 4)]
    assert with_fc == [141, 134]


@pytest.mark.parametrize("name,mflops", [
    ("shufflenet-1.5", 292), ("shufflenet-2.0", 524),  # Table 5 (g=3), FC included
    ("shufflenet-g4-0.5", 38), ("shufflenet-0.5", 38),  # Tables 2, 4, 5: 0.5× ≈ 38 MFLOPs
    ("shufflenet-0.25", 13),  # Table 2: 0.25× ≈ 13 MFLOPs
])
def test_shufflenet_scaled_complexities(name, mflops):
    assert millions(evaluate_model(name).totals.flops) == mflops


def test_shufflenet_default_is_1x_g3():
    assert evaluate_model("shufflenet").totals == evaluate_model("shufflenet-g3-1.0").totals



@pytest.mark.parametrize("g", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("scale", ["0.25", "0.5", "1.0", "1.5", "2.0"])
def test_every_shufflenet_group_and_scale_evaluates(g, scale):
    """Every g × scale combination the variants offer builds a valid network."""
    r = evaluate_model(f"shufflenet-g{g}-{scale}")
    conv1 = next(row for row in r.rows if row.path == "conv1")
    small = 16 if g == 8 else 12  # official code: g8 0.5× has a 16-channel conv1
    assert conv1.out.c == {"0.25": small, "0.5": small, "1.0": 24, "1.5": 24, "2.0": 48}[scale]
    stage2 = next(row for row in r.rows if row.path.startswith("stage2.0.res.main.gconv2"))
    assert stage2.out.c % g == 0

# ---- EffNet ---------------------------------------------------------------------------------

def test_effnet_shapes_follow_keras_effnet():
    r = evaluate_model("effnet")
    outs = {row.path: row.out.as_list() for row in r.rows}
    assert outs["stage1.block.conv"] == [64, 16, 16]
    assert outs["stage2.block.conv"] == [128, 8, 8]
    assert outs["stage3.block.conv"] == [256, 4, 4]
    assert outs["flatten"] == [4096]
    assert outs["fc"] == [10]
    fc = next(row for row in r.rows if row.path == "fc")
    assert fc.params == 4096 * 10 + 10


def test_effnet_block_1_by_formula():
    """Block 1 on 32×32×3: 1×1 3→32, dw 1×3, pool, dw 3×1 at 16×32, 2×1 conv 32→64 at 16×16."""
    r = evaluate_model("effnet")
    block1 = sum(row.flops for row in r.rows if row.path.startswith("stage1."))
    assert block1 == (3 * 32 * 32 * 32 + 3 * 32 * 32 * 32 + 3 * 32 * 16 * 32
                      + 2 * 32 * 64 * 16 * 16)


def test_effnet_comparison_set_shares_the_skeleton():
    names = ["effnet-baseline", "effnet-mobilenet", "effnet-shufflenet", "effnet"]
    results = [evaluate_model(n) for n in names]
    for r in results:
        assert r.input == (32, 32) and r.output.as_list() == [10]
        stage_outs = [row.out.as_list() for row in r.rows if row.path.startswith("stage")]
        assert [256, 4, 4] == stage_outs[-1]
    flops = [r.totals.flops for r in results]
    assert flops[0] == max(flops)  # every replacement is cheaper than the 3×3 conv baseline


# ---- Transformers (#14): ViT-B/16, Swin-T ---------------------------------------------------

def test_vit_b_16_matches_the_paper_and_torchvision():
    """ViT-B/16 (arXiv:2010.11929): Table 1, 86M params; Table 6, 17.6 GFLOPs at 224, counted
    as multiply-adds with the attention products (the paper's scope). fvcore on
    torchvision's vit_b_16 (scripts/check_transformers_tv.py): 16,867,412,736, without the
    products (aten::scaled_dot_product_attention has no fvcore rule): 12 blocks of
    2·197²·768 fewer."""
    paper = evaluate_model("vit_b_16")
    assert round(paper.totals.flops / 1e9, 1) == 17.6
    assert paper.totals.params // 10**6 == 86 and paper.totals.params == 86_567_656  # "86M"
    fvcore = evaluate_model("vit_b_16", options=Options(scope="fvcore"))
    assert fvcore.totals.flops == 16_867_412_736
    assert paper.totals.flops - fvcore.totals.flops == \
        12 * 2 * 197 * 197 * 768 - 25 * 5 * 197 * 768  # the products in, the norms out


def test_swin_t_matches_the_paper_and_torchvision():
    """Swin-T (arXiv:2103.14030) Table 1: 28M params, 4.5G FLOPs at 224; torchvision's swin_t:
    28,288,354 params and fvcore's 4,509,232,128 (its matmuls included)."""
    paper = evaluate_model("swin_t")
    assert round(paper.totals.flops / 1e9, 1) == 4.5
    assert millions(paper.totals.params) == 28 and paper.totals.params == 28_288_354
    assert evaluate_model("swin_t", options=Options(scope="fvcore")).totals.flops == \
        4_509_232_128


def test_maxvit_t_matches_the_paper_and_torchvision():
    """MaxViT-T (arXiv:2204.01697) Table 1: 31M params, 5.6G FLOPs at 224; torchvision's
    maxvit_t: 30,919,624 params and fvcore's 5,608,201,264 (its einsums as fvcore rounds
    them, batch norms and layer norms included)."""
    paper = evaluate_model("maxvit_t")
    assert round(paper.totals.flops / 1e9, 1) == 5.6
    assert millions(paper.totals.params) == 31 and paper.totals.params == 30_919_624
    assert evaluate_model("maxvit_t", options=Options(scope="fvcore")).totals.flops == \
        5_608_201_264
