"""The classic zoo (SqueezeNet, SqueezeNext, GhostNet, ESPNet, SkipNet and the baselines AlexNet,
VGG-16, GoogLeNet, ResNet-50): exact counts of the reference implementations, the headline
numbers of ../shared/REFERENCE.md, the blocks' formulas, and the skipnet command.

Reference integers were counted (dev-time, not at test time) as follows:
- torchvision 0.28: sum(p.numel()) for params; fvcore FlopCountAnalysis by_operator() conv +
  linear for multiply-adds, and total() for the fvcore scope; batch 1, eval mode.
- GhostNet, SqueezeNext, ESPNet, SkipNet: the same, on transcriptions of the official model code
  (huawei-noah ghostnet_pytorch/ghostnet.py, osmr/imgclsmob pytorchcv squeezenext.py,
  sacmehta/ESPNet train/Model.py, ucbdrive/skipnet cifar/models.py).
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from conftest import run_layers

from costmodel.api import evaluate_model
from costmodel.cli import app
from costmodel.errors import CostModelError
from costmodel.options import Options
from costmodel.layers.lstm import lstm_cost
from costmodel.layers.merge import hff_cost, multiply_cost
from costmodel.layers.skipnet import rnn_gate_cost
from costmodel.shape import Shape
from costmodel.analysis.skipnet import parse_keep_prob, skip_cost

FVCORE = Options(scope="fvcore")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


# ---- exact counts of the reference implementations ------------------------------------------

# (model, input, params, conv + linear multiply-adds, fvcore's total)
REFERENCE_COUNTS = [
    # torchvision 0.28
    ("resnet50", 224, 25_557_032, 4_089_184_256, 4_111_512_576),
    ("googlenet", 224, 6_624_904, 1_498_376_192, 1_504_878_688),  # aux_logits=False
    ("squeezenet1_0", 224, 1_248_424, 818_924_576, 819_093_576),
    ("squeezenet1_1", 224, 1_235_496, 349_151_936, 349_320_936),
    ("alexnet", 224, 61_100_840, 714_188_480, 714_197_696),
    ("vgg16", 224, 138_357_544, 15_470_264_320, 15_470_289_408),
    # official code (transcribed)
    ("ghostnet", 224, 5_182_508, 141_150_512, 148_777_264),
    ("ghostnet-0.5", 224, 2_587_292, 42_328_152, 46_141_528),
    ("ghostnet-1.3", 224, 7_358_820, 227_003_256, 236_892_240),
    ("squeezenext", 224, 724_056, 275_920_640, 283_874_272),
    ("espnet", (512, 1024), 365_109, 4_780_220_416, 4_848_377_856),
    ("espnet_c", (512, 1024), 349_449, 3_470_155_776, 3_523_567_616),
]


@pytest.mark.parametrize("name,size,params,madds,fvcore_total", REFERENCE_COUNTS,
                         ids=[c[0] for c in REFERENCE_COUNTS])
def test_reference_implementation_counts(name, size, params, madds, fvcore_total):
    r = evaluate_model(name)
    hw = (size, size) if isinstance(size, int) else size
    assert r.input == hw  # the default input is the published resolution
    assert r.totals.params == params
    assert r.totals.flops == madds
    assert evaluate_model(name, options=FVCORE).totals.flops == fvcore_total


@pytest.mark.parametrize("name", ["squeezenet1_0", "SqueezeNet1-0", "squeezenet1-0"])
def test_torchvision_names_with_dash_or_underscore(name):
    assert evaluate_model(name).totals.params == 1_248_424


def test_googlenet_variant_is_the_inference_network():
    """torchvision's googlenet() builds two auxiliary classifiers (13,004,888 params with
    aux_logits=True); they only train, and its pretrained model drops them — the spec is the
    aux_logits=False network."""
    aux_params = 13_004_888 - 6_624_904
    assert evaluate_model("googlenet").totals.params + aux_params == 13_004_888
    assert aux_params > 6_000_000  # the auxiliary heads' FC layers (2 × 1024·2048 weights …)


# ---- headline numbers of REFERENCE.md --------------------------------------------------------

def test_mobilenet_table_9_squeezenet_and_shufflenet_table_6():
    """Table 9: SqueezeNet 1.25M params, 1700M mult-adds; ShuffleNet Table 6: 833 MFLOPs."""
    r224 = evaluate_model("squeezenet1_0")
    r227 = evaluate_model("squeezenet1_0", input=227)  # the Caffe model's crop
    assert round(r224.totals.params / 1e6, 2) == 1.25
    assert r227.totals.flops == 832_667_936 and round(r227.totals.flops / 1e6) == 833
    # MobileNet's 1700M is twice that (multiplies and adds apart), to two significant figures
    assert round(2 * r227.totals.flops, -8) == 1_700_000_000
    # the 227 count differs from 224 only in the map sizes: conv1 makes 111² instead of 109²
    assert r227.rows[0].out.as_list() == [96, 111, 111]


def test_squeezenet_1_1_needs_less_computation():
    """The 1.1 README: '2.4x less computation than SqueezeNet v1.0' with the same params."""
    v10, v11 = evaluate_model("squeezenet1_0"), evaluate_model("squeezenet1_1")
    assert round(v10.totals.flops / v11.totals.flops, 2) == 2.35  # 818.9M / 349.2M at 224
    assert abs(v10.totals.params - v11.totals.params) < 13_000  # 1.248M vs 1.235M


def test_fire_module_params():
    """REFERENCE §8.1: fire2 = (1·1·96+1)·16 + (1·1·16+1)·64 + (3·3·16+1)·64 = 11,920."""
    rows = [r for r in evaluate_model("squeezenet1_0").rows if r.path.startswith("fire2.")]
    assert sum(r.params for r in rows) == (96 + 1) * 16 + (16 + 1) * 64 + (9 * 16 + 1) * 64 \
        == 11_920
    assert rows[-1].out.as_list() == [128, 54, 54]  # 64 + 64 channels, concatenated


def test_alexnet_mobilenet_table_9():
    """720M mult-adds, 60M params: the 2012 two-tower network (alexnet-caffe, 227 input),
    724,406,816 and 60,965,224. torchvision's single-tower AlexNet (714M, 61.1M) is another
    network (64/192/384/256/256 filters, no groups)."""
    caffe, tv = evaluate_model("alexnet-caffe"), evaluate_model("alexnet")
    assert caffe.totals.flops == 724_406_816 and round(caffe.totals.flops, -7) == 720_000_000
    assert caffe.totals.params == 60_965_224 and int(caffe.totals.params / 1e6) == 60
    assert round(tv.totals.flops, -7) == 710_000_000  # not 720M
    # grouped conv2: 256 filters each seeing 48 of the 96 channels
    conv2 = next(r for r in caffe.rows if r.path == "conv2")
    assert conv2.params == 256 * 48 * 5 * 5 + 256


def test_vgg16_15300m_counts_the_convs_only():
    """MobileNet Table 8 / ShuffleNet Table 6: 15300M; 138M params. The convs alone are
    15,346,630,656 (15.3G); the FC layers add 25088·4096 + 4096·4096 + 4096·1000."""
    r = evaluate_model("vgg16")
    fc = 25088 * 4096 + 4096 * 4096 + 4096 * 1000
    convs = sum(row.flops for row in r.rows if row.type == "conv")
    assert convs == 15_346_630_656 and round(convs, -8) == 15_300_000_000
    assert r.totals.flops == convs + fc
    assert round(r.totals.params / 1e6) == 138


def test_googlenet_mobilenet_table_8_and_shufflenet_table_6():
    """MobileNet Table 8: GoogLeNet 1550M / 6.8M; ShuffleNet Table 6: 'GoogleNet* 1500'.
    torchvision's network (3×3 in the "5×5" branch, BN) is 1,498M / 6.62M — ShuffleNet's 1500;
    the paper's network (googlenet-bvlc: 5×5 convs with bias, no BN) is 1,583M / 7.00M. The
    1550M / 6.8M of MobileNet's table fall between the two; neither is exactly it."""
    tv, paper = evaluate_model("googlenet"), evaluate_model("googlenet-bvlc")
    assert round(tv.totals.flops, -8) == 1_500_000_000
    assert paper.totals.flops == 1_582_671_872 and paper.totals.params == 6_998_552
    assert tv.totals.flops < 1_550_000_000 < paper.totals.flops
    assert tv.totals.params < 6_800_000 < paper.totals.params
    # the whole difference in FLOPs is the 5×5 kernels: 25 instead of 9 weights per filter
    # in the nine "5×5" convs (batch norm has no multiply-adds; both last pools give 7×7)
    c5 = [r for r in tv.rows if ".branch3.conv3x3.conv" in r.path and r.type == "conv"]
    assert len(c5) == 9
    assert paper.totals.flops - tv.totals.flops == sum(r.flops // 9 * (25 - 9) for r in c5)


def test_resnet50_4_1b_and_the_v1_stride():
    """EfficientNet Table 3: ResNet-50 4.1B. Moving each stage's stride from the 3×3 conv
    (torchvision) to the first 1×1 conv (the original, resnet50-v1) runs that 1×1 conv on a
    quarter of the pixels: 3/4·H²·C_in·width less, the same for stages 2–4."""
    v15, v1 = evaluate_model("resnet50"), evaluate_model("resnet50-v1")
    assert round(v15.totals.flops / 1e9, 1) == 4.1
    saved = sum(3 * h * h * c_in * w // 4 for h, c_in, w in
                ((56, 256, 128), (28, 512, 256), (14, 1024, 512)))
    assert v15.totals.flops - v1.totals.flops == saved == 231_211_008
    assert v1.totals.params == v15.totals.params


def test_ghostnet_141m_5_2m():
    """REFERENCE §8.3: the official README's '141M Flops (or say MAdds)'; the paper's 5.2M."""
    r = evaluate_model("ghostnet")
    assert round(r.totals.flops / 1e6) == 141
    assert round(r.totals.params / 1e6, 1) == 5.2


def test_ghost_module_is_about_s_times_cheaper():
    """Paper eq. 4: an ordinary 1×1 conv to n maps costs n·h·w·C; a Ghost module (s = 2, d = 3)
    m·h·w·C + m·h·w·9 with m = n/2 — close to s = 2× less for large C."""
    c, n, hw = 160, 960, 7
    ghost = run_layers([{"type": "ghost_module", "out": n}], input=(hw, hw), in_channels=c)
    plain = run_layers([{"type": "conv", "out": n, "kernel": 1}], input=(hw, hw), in_channels=c)
    m = n // 2
    assert ghost.totals.flops == m * hw * hw * c + m * hw * hw * 9
    assert plain.totals.flops / ghost.totals.flops == pytest.approx(2 * c / (c + 9))
    assert ghost.output.as_list() == [n, hw, hw]


def test_ghost_module_keeps_out_channels_when_ratio_does_not_divide():
    """init = ceil(out/s) maps, (s−1)·init ghosts, then the first ``out`` kept."""
    r = run_layers([{"type": "ghost_module", "out": 10, "ratio": 3}], input=(4, 4), in_channels=8)
    assert r.output.as_list() == [10, 4, 4]
    primary = next(row for row in r.rows if row.path.endswith("primary"))
    cheap = next(row for row in r.rows if row.path.endswith("cheap.dw"))
    assert primary.out.c == math.ceil(10 / 3) == 4 and cheap.out.c == 4 * 2


def test_squeezenext_port_and_readme():
    """osmr/imgclsmob README: 1.0-SqNxt-23 724,056 params, 287.28M 'FLOPs/2'; its tests:
    1.5× 1,511,824 and 2.0× 2,583,752. The README's count exceeds the conv + linear
    multiply-adds (275.9M) — it counts other ops too (batch norm alone is 7.95M in fvcore's)."""
    assert evaluate_model("squeezenext-1.5").totals.params == 1_511_824
    assert evaluate_model("squeezenext-2.0").totals.params == 2_583_752
    r = evaluate_model("squeezenext")
    assert r.totals.flops < 287_280_000 < r.totals.flops + 11_500_000
    shapes = {row.path: row.out.as_list() for row in r.rows}
    assert shapes["conv1"] == [64, 110, 110] and shapes["pool1"] == [64, 55, 55]
    assert shapes["final_pool"] == [128, 1, 1]


def test_squeezenext_low_rank_filters():
    """A stride-1 unit (C = out = 64, r = 2): 1×1 64→32, 1×1 32→16, 1×3 16→32, 3×1 32→32,
    1×1 32→64, each with bias and BN (γ, β); identity shortcut."""
    r = run_layers([{"type": "sqnxt_unit", "out": 64}], input=(14, 14), in_channels=64)
    weights = 64 * 32 + 32 * 16 + 3 * 16 * 32 + 3 * 32 * 32 + 32 * 64
    biases_and_bn = 3 * (32 + 16 + 32 + 32 + 64)
    assert r.totals.params == weights + biases_and_bn
    assert r.totals.flops == weights * 14 * 14


def test_espnet_0_36m():
    """REFERENCE §8.4: about 0.36M params (366,589 with 21 classes; the paper reports 0.364M).
    The official configuration (Cityscapes, 20 classes) has 365,109; with 19 it would have
    363,462 — the paper's 0.364M lies between."""
    params = evaluate_model("espnet").totals.params
    assert params == 365_109 and int(params / 1e4) == 36  # "0.36M"
    assert abs(params - 364_000) / 364_000 < 0.005
    assert evaluate_model("espnet", num_classes=21).totals.params == 366_589
    assert evaluate_model("espnet", num_classes=19).totals.params == 363_462
    assert evaluate_model("espnet").output.as_list() == [20, 512, 1024]
    assert evaluate_model("espnet_c").output.as_list() == [20, 64, 128]


@pytest.mark.parametrize("m,n,hw", [(100, 100, 8), (60, 60, 5), (35, 100, 3)])
def test_esp_module_params(m, n, hw):
    """§8.4: reduce M·N/K + transform K·n²·(N/K)² = M·N/K + (nN)²/K with n = 3, K = 5 (no
    bias), plus BN (2N) and PReLU (N); FLOPs are the weights times the map (stride 1)."""
    k = 5
    add = m == n
    r = run_layers([{"type": "esp", "out": n, "add": add}], input=(hw, hw), in_channels=m)
    weights = m * n // k + (3 * n) ** 2 // k
    assert r.totals.params == weights + 2 * n + n
    assert r.totals.flops == weights * hw * hw
    assert r.output.as_list() == [n, hw, hw]


def test_esp_hierarchical_fusion_and_split():
    """N = 64: n = 12, the dilation-1 branch makes n1 = 64 − 4·12 = 16; HFF concatenates
    d2, d2+d4, d2+d4+d8, d2+d4+d8+d16 after it."""
    r = run_layers([{"type": "esp", "out": 64}], input=(40, 40), in_channels=64)
    rows = {row.path: row for row in r.rows}
    assert rows["0.res.main.reduce"].out.c == 12
    assert rows["0.res.main.transform.d1.conv"].out.c == 16
    fuse = rows["0.res.main.transform.hff.fuse.hff"]
    assert fuse.out.as_list() == [48, 40, 40]
    assert [rows[f"0.res.main.transform.hff.fuse.d{d}.conv"].layer.dilation
            for d in (2, 4, 8, 16)] == [2, 4, 8, 16]


# ---- SkipNet --------------------------------------------------------------------------------

def _block(c: int, hw: int) -> int:
    """A C→C basic block's multiply-adds: two 3×3 convs."""
    return 2 * 9 * c * c * hw * hw


def test_ffgate2_costs_an_eighth_of_a_block():
    """Seed document / SkipNet §3.1: FFGate-II ≈ 12.5% of a residual block — its 3×3/2 conv is
    9C²·(HW/4), a block 18C²·HW; the 1×1 conv to 2 logits adds 2C."""
    r = evaluate_model("skipnet-38-ffgate2")
    block = skip_cost(r, 1.0).blocks[0]  # group1, C = 16 on 32×32
    assert block.gate.flops == 9 * 16 * 16 * 16 * 16 + 2 * 16
    assert block.skippable.flops == _block(16, 32)
    assert (block.gate.flops - 2 * 16) / block.skippable.flops == 1 / 8
    assert round(100 * block.gate.flops / block.skippable.flops, 1) == 12.5


def test_ffgate1_cost():
    """FFGate-I in the official code: 2×2 max pool, 3×3 conv, 3×3/2 conv: 9C²·HW·(1/4 + 1/16)
    = 5/32 (15.6%) of a stride-1 block. The seed document quotes ≈19% for FFGate-I; the
    official structure does not give that (it gives 20.8% only for a down-sampling block,
    whose residual branch is cheaper)."""
    blocks = skip_cost(evaluate_model("skipnet-38-ffgate1"), 1.0).blocks
    b = blocks[0]
    assert b.gate.flops == 9 * 16 * 16 * (16 * 16 + 8 * 8) + 2 * 16
    assert (b.gate.flops - 2 * 16) / b.skippable.flops == 5 / 32
    down = next(x for x in blocks if x.path == "group2.0")  # 16 → 32, stride 2
    assert down.shortcut.flops == 16 * 32 * 16 * 16  # the projection runs either way
    assert down.skippable.flops == 9 * 16 * 32 * 16 * 16 + 9 * 32 * 32 * 16 * 16
    assert round(100 * down.gate.flops / down.skippable.flops, 1) == 20.8


def test_rnn_gate_cost_is_negligible():
    """Seed document / SkipNet: the recurrent gate costs 0.04% of a block. Here: a 1×1 conv to
    the 10-d embedding, one LSTM(10, 10) step (4·10·20) and the projection (10) — 0.02–0.03%
    of a CIFAR block, within that."""
    for b in skip_cost(evaluate_model("skipnet-110"), 1.0).blocks:
        c = b.gate.flops - 800 - 10
        assert c in (16 * 10, 32 * 10, 64 * 10)  # the per-block embedding conv
        assert b.gate.flops / b.skippable.flops < 0.0004


def test_skipnet_matches_the_official_code():
    """ucbdrive/skipnet builds a gate for every block, also one after the last block whose
    decision it discards (left out here), and its training-time forward runs a down-sampling
    block's projection twice (inside the block and for the skip path). With those, our counts
    are the official models' (torch params; fvcore's total, which drops the discarded last
    gate as dead code)."""
    last_ff1 = 2 * 9 * 64 * 64 + 2 * 2 * 64 + (64 * 2 + 2)  # convs, their BNs, the 1×1 conv
    last_ff2 = 9 * 64 * 64 + 2 * 64 + (64 * 2 + 2)
    last_rnn = 64 * 10 + 10  # the embedding conv
    assert evaluate_model("skipnet-38-ffgate1").totals.params + last_ff1 == 1_148_798
    assert evaluate_model("skipnet-110-ffgate2").totals.params + last_ff2 == 2_609_798
    assert evaluate_model("skipnet-110-rnn").totals.params + last_rnn == 1_752_305
    twice = 16 * 32 * 16 * 16 + 2 * 32 * 16 * 16 + 32 * 64 * 8 * 8 + 2 * 64 * 8 * 8
    for name, official in (("skipnet-38-ffgate1", 96_952_640),
                           ("skipnet-110-ffgate2", 287_078_848),
                           ("skipnet-110-rnn", 255_578_322)):
        assert evaluate_model(name, options=FVCORE).totals.flops + twice == official


def test_skipnet_rnn_weights_count_once():
    """One LSTM(10, 10) + linear(10 → 1): 4·10·(10 + 10) + 8·10 + 10 + 1 = 891 params."""
    assert rnn_gate_cost(10, 10, shared=False).params == 891
    assert rnn_gate_cost(10, 10, shared=True).params == 0
    r = evaluate_model("skipnet-110")
    rnn = [row for row in r.rows if row.type == "rnn_gate"]
    assert len(rnn) == 3 * 18 - 1 and sum(row.params for row in rnn) == 891


def test_skipnet_imagenet_adds_gates_to_resnet():
    """SkipNet-50's backbone is ResNet-50 (25,557,032); each of its 15 gated blocks adds an
    embedding conv on its input (C·10 + 10), and the controller 891."""
    inputs = [256, 256, 256, 512, 512, 512, 512, 1024, 1024, 1024, 1024, 1024, 1024, 2048, 2048]
    gates = sum(c * 10 + 10 for c in inputs) + 891
    r = evaluate_model("skipnet-imagenet-50")
    assert r.totals.params == 25_557_032 + gates
    plain = skip_cost(r, 1.0).plain
    assert plain.flops == evaluate_model("resnet50").totals.flops  # without the gates


@pytest.mark.parametrize("name,most,at_07,at_01", [
    ("skipnet-110", 0.978, 0.29, 0.88),
    ("skipnet-imagenet", 0.915, 0.27, 0.82),
])
def test_skipnet_reductions_within_reach(name, most, at_07, at_01):
    """REFERENCE §8.6: 'SkipNet reduces computation by 30-90%' (against the plain ResNet).
    Skipping every gated block saves at most 1 − minimum/plain, which covers that range;
    keeping blocks with p = 0.7 saves a little under 30% (the always-run first block, stem,
    shortcuts and classifier stay), p = 0.1 over 80%."""
    r = evaluate_model(name)
    s = {p: skip_cost(r, p) for p in (0.7, 0.1)}
    assert round(1 - s[0.7].minimum.flops / s[0.7].plain.flops, 3) == most
    saved = [1 - s[p].expected[0] / s[p].plain.flops for p in (0.7, 0.1)]
    assert [math.floor(100 * x) / 100 for x in saved] == [at_07, at_01]


@pytest.mark.parametrize("p", [0.0, 0.25, 0.6, 1.0])
def test_min_max_expected(p):
    r = evaluate_model("skipnet-38-ffgate2")
    s = skip_cost(r, p)
    skippable = sum(b.skippable.flops for b in s.blocks)
    gates = sum(b.gate.flops for b in s.blocks)
    assert s.maximum.flops == r.totals.flops
    assert s.minimum.flops == r.totals.flops - skippable
    assert s.plain.flops == r.totals.flops - gates
    assert s.expected[0] == pytest.approx(s.minimum.flops + p * skippable)
    assert s.minimum.flops <= s.expected[0] <= s.maximum.flops
    assert len(s.blocks) == 3 * 6 - 1


def test_per_block_keep_probabilities():
    r = evaluate_model("skipnet-38-ffgate1")
    probs = [i / 16 for i in range(17)]
    s = skip_cost(r, probs)
    expected = r.totals.flops - sum((1 - p) * b.skippable.flops for p, b in zip(probs, s.blocks))
    assert s.expected[0] == pytest.approx(expected)
    assert [b.keep_prob for b in s.blocks] == probs


@pytest.mark.parametrize("bad,text", [
    ("1.3", "keep probability 1.3 is outside [0, 1]"),
    ("-0.1", "outside [0, 1]"),
    ("nan", "outside [0, 1]"),
    ("abc", "'abc' is not a number"),
    ("0.5,0.5", "2 keep probabilities for the 17 gated blocks"),
])
def test_bad_keep_prob_exits_2(bad, text):
    res = run("skipnet", "skipnet-38", "--keep-prob", bad)
    assert res.exit_code == 2
    assert text in res.stderr and "Traceback" not in res.output


def test_skipnet_on_a_model_without_gates_exits_2():
    res = run("skipnet", "resnet50", "--keep-prob", "0.5")
    assert res.exit_code == 2 and "has no gated blocks" in res.stderr


def test_parse_keep_prob():
    assert parse_keep_prob("0.6") == [0.6]
    assert parse_keep_prob("1, 0.5,0") == [1.0, 0.5, 0.0]
    with pytest.raises(CostModelError):
        parse_keep_prob("")


def test_skipnet_command_json_contract():
    res = run("skipnet", "skipnet-110", "--keep-prob", "0.6", "-f", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    s = skip_cost(evaluate_model("skipnet-110"), 0.6)
    assert data["gated_blocks"] == 53 and data["keep_prob"] == [0.6] * 53
    assert data["cost"]["maximum"]["flops"] == s.maximum.flops
    assert data["cost"]["minimum"]["flops"] == s.minimum.flops
    assert data["cost"]["expected"]["flops"] == pytest.approx(s.expected[0])
    assert data["cost"]["plain"]["flops"] == s.plain.flops
    assert data["params"] == evaluate_model("skipnet-110").totals.params
    assert data["blocks"][0]["path"] == "group1.gated.0" and data["blocks"][0]["gate"] == "rnn"
    assert data["conventions"]["flops"] == "multiply-adds"


def test_skipnet_command_table():
    res = run("skipnet", "skipnet-38-ffgate2", "--keep-prob", "0.6")
    assert res.exit_code == 0, res.output
    assert "expected (keep-prob 0.6)" in res.stdout and "12.50%" in res.stdout


# ---- the new primitives and merges ----------------------------------------------------------

# the primitives' own rows are in tests/analytic/test_formulas.py (one table)


def test_lstm_cost_function_and_shared_weights():
    c = lstm_cost(10, 10, bias=True, shared=True)
    assert (c.flops, c.params) == (800, 0)
    assert lstm_cost(3, 5, bias=False).params == 4 * 5 * (3 + 5)


def test_hff_merge_and_scalar_gate():
    s = Shape(4, 3, 3)
    hff = hff_cost([s, s, s])
    assert hff.out == Shape(12, 3, 3)
    assert hff.mac == 3 * 2 * 36 + 3 * 36 + 108  # two running sums, then the concatenation
    gated = multiply_cost([Shape(8, 5, 5), Shape(1, 1, 1)])
    assert gated.out == Shape(8, 5, 5) and gated.mac == 200 + 1 + 200


@pytest.mark.parametrize("layers,in_c,hw,text", [
    ([{"type": "slice", "stop": 9}], 8, 4, "cannot keep channels 0:9 of 8"),
    ([{"type": "esp", "out": 32, "add": True}], 16, 4, "adding the input needs"),
    ([{"type": "deconv", "out": 4, "stride": 2, "output_padding": 2}], 4, 4,
     "must be smaller than the stride"),
    ([{"type": "gate_decision"}], 2, 4, "needs a C×1×1 input, got 2×4×4"),
    ([{"type": "gate_decision"}], 3, 1, "takes 2 logits"),
    ([{"type": "lstm", "hidden": 4}], 3, 4, "needs a vector or a C×1×1 map"),
])
def test_bad_shapes_are_located(layers, in_c, hw, text):
    with pytest.raises(CostModelError) as e:
        run_layers(layers, input=(hw, hw), in_channels=in_c)
    assert text in str(e.value) and "layer '0'" in str(e.value)


def test_bad_spec_fields_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nlayers:\n  - {name: s, type: slice, start: 4, stop: 2}\n")
    res = run("compare", str(bad))
    assert res.exit_code == 2 and "stop (2) must be greater than start (4)" in res.stderr
    bad.write_text("name: bad\nlayers:\n  - {name: g, type: gated_residual, gate: lstm, "
                   "block: {type: basic_block, planes: 3}}\n")
    res = run("compare", str(bad))
    assert res.exit_code == 2 and "layer 'g'" in res.stderr and "gate" in res.stderr
