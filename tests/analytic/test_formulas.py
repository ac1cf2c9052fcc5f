"""The primitives table: one or more rows per primitive class, expected values written as the
formula's arithmetic. Adding a primitive is its module (its class, formula and traits) plus
rows here (and its torch builder in costmodel/crosscheck/classic_cnn.py or its kin); the tests
below fail until all three exist."""

from __future__ import annotations

import math
import typing

import pytest

from conftest import run_layers
from test_attention import CASES as ATTENTION
from test_vocab import CASES as VOCABULARY

from costmodel.layers import Primitive, layer_types
from costmodel.layers.traits import ElementwiseGroup, Operator, aliases, missing, tags
from costmodel.options import Options
from costmodel.layers.conv import conv2d_cost
from costmodel.layers.merge import add_cost, concat_cost, multiply_cost
from costmodel.shape import Shape

# (layer, input C×H×W (or (C,): a flattened vector), output, FLOPs (papers), fvcore FLOPs,
#  params, MAC)
CASES = [
    pytest.param({"type": "conv", "out": 64, "kernel": 3, "stride": 2}, (32, 112, 112),
                 (64, 56, 56), 3 * 3 * 32 * 64 * 56 * 56, 3 * 3 * 32 * 64 * 56 * 56,
                 3 * 3 * 32 * 64, 32 * 112 * 112 + 64 * 56 * 56 + 3 * 3 * 32 * 64, id="conv3x3-s2"),
    pytest.param({"type": "conv", "out": 16, "kernel": 1, "bias": True}, (8, 10, 10),
                 (16, 10, 10), 8 * 16 * 100, 8 * 16 * 100, 8 * 16 + 16,
                 8 * 100 + 16 * 100 + 8 * 16 + 16, id="conv1x1-bias"),
    pytest.param({"type": "conv", "out": 12, "kernel": 1, "groups": 3}, (6, 5, 5), (12, 5, 5),
                 (6 // 3) * 12 * 25, (6 // 3) * 12 * 25, (6 // 3) * 12,
                 6 * 25 + 12 * 25 + (6 // 3) * 12, id="group-conv"),
    pytest.param({"type": "conv", "out": 4, "kernel": [1, 3], "stride": [1, 2]}, (2, 7, 9),
                 (4, 7, 5), 1 * 3 * 2 * 4 * 7 * 5, 1 * 3 * 2 * 4 * 7 * 5, 1 * 3 * 2 * 4,
                 2 * 63 + 4 * 35 + 24, id="conv1x3-stride1x2"),
    pytest.param({"type": "conv", "out": 4, "kernel": 3, "dilation": 2}, (2, 9, 9), (4, 9, 9),
                 9 * 2 * 4 * 81, 9 * 2 * 4 * 81, 9 * 2 * 4, 2 * 81 + 4 * 81 + 72, id="dilated"),
    pytest.param({"type": "conv", "out": 4, "kernel": [2, 1], "stride": [1, 2],
                  "padding": "same"}, (3, 8, 8), (4, 8, 4), 2 * 3 * 4 * 32, 2 * 3 * 4 * 32,
                 2 * 3 * 4, 3 * 64 + 4 * 32 + 24, id="effnet-2x1-same"),
    pytest.param({"type": "conv", "out": 4, "kernel": 3, "padding": 0}, (1, 5, 5), (4, 3, 3),
                 9 * 4 * 9, 9 * 4 * 9, 36, 25 + 36 + 36, id="valid-padding"),
    pytest.param({"type": "dwconv", "kernel": 3, "stride": 2}, (32, 112, 112), (32, 56, 56),
                 3 * 3 * 32 * 56 * 56, 3 * 3 * 32 * 56 * 56, 3 * 3 * 32,
                 32 * 112 * 112 + 32 * 56 * 56 + 288, id="depthwise"),
    pytest.param({"type": "dwconv", "kernel": [1, 3], "multiplier": 2}, (8, 4, 4), (16, 4, 4),
                 3 * 16 * 16, 3 * 16 * 16, 3 * 16, 8 * 16 + 16 * 16 + 48, id="depth-multiplier"),
    pytest.param({"type": "bn"}, (8, 4, 4), (8, 4, 4), 0, 2 * 8 * 16, 2 * 8,
                 2 * 8 * 16 + 2 * 8 + 2 * 8, id="batch-norm"),
    pytest.param({"type": "bn", "affine": False}, (8, 4, 4), (8, 4, 4), 0, 8 * 16, 0,
                 2 * 8 * 16 + 2 * 8, id="batch-norm-no-affine"),
    pytest.param({"type": "relu"}, (8, 4, 4), (8, 4, 4), 0, 0, 0, 2 * 128, id="relu"),
    pytest.param({"type": "activation", "fn": "hswish"}, (8, 4, 4), (8, 4, 4), 0, 0, 0,
                 2 * 128, id="hswish"),
    pytest.param({"type": "gelu"}, (8, 4, 4), (8, 4, 4), 0, 0, 0, 2 * 128, id="gelu"),
    pytest.param({"type": "layer_norm"}, (8, 4, 4), (8, 4, 4), 0, 5 * 8 * 16, 2 * 8,
                 2 * 8 * 16 + 2 * 8, id="layer-norm"),
    pytest.param({"type": "layer_norm", "affine": False}, (8,), (8,), 0, 4 * 8, 0, 2 * 8,
                 id="layer-norm-vector-no-affine"),
    pytest.param({"type": "max_pool", "kernel": [2, 1]}, (8, 6, 6), (8, 3, 6), 0, 0, 0,
                 8 * 36 + 8 * 18, id="maxpool-2x1"),
    pytest.param({"type": "avg_pool", "kernel": 3, "stride": 2, "padding": 1}, (8, 7, 7),
                 (8, 4, 4), 0, 0, 0, 8 * 49 + 8 * 16, id="avgpool-3x3-s2"),
    pytest.param({"type": "max_pool", "kernel": 3, "stride": 2, "ceil_mode": True},
                 (4, 8, 8), (4, 4, 4), 0, 0, 0, 4 * 64 + 4 * 16, id="maxpool-ceil"),
    pytest.param({"type": "global_pool"}, (8, 7, 7), (8, 1, 1), 0, 8 * 49, 0, 8 * 49 + 8,
                 id="global-avg"),
    pytest.param({"type": "global_pool", "mode": "max"}, (8, 7, 7), (8, 1, 1), 0, 0, 0,
                 8 * 49 + 8, id="global-max"),
    pytest.param({"type": "channel_shuffle", "groups": 4}, (8, 3, 3), (8, 3, 3), 0, 0, 0,
                 2 * 72, id="shuffle"),
    pytest.param({"type": "upsample", "scale": 2, "mode": "bilinear"}, (4, 3, 3), (4, 6, 6), 0,
                 4 * 4 * 36, 0, 36 + 144, id="upsample-bilinear"),
    pytest.param({"type": "upsample", "scale": [2, 1]}, (4, 3, 3), (4, 6, 3), 0, 4 * 18, 0,
                 36 + 72, id="upsample-nearest"),
    pytest.param({"type": "dropout", "p": 0.2}, (4, 3, 3), (4, 3, 3), 0, 0, 0, 0, id="dropout"),
    pytest.param({"type": "identity"}, (4, 3, 3), (4, 3, 3), 0, 0, 0, 0, id="identity"),
    pytest.param({"type": "flatten"}, (16, 2, 2), (16 * 2 * 2,), 0, 0, 0, 0, id="flatten"),
    pytest.param({"type": "linear", "out": 10}, (64,), (10,), 64 * 10, 64 * 10, 64 * 10 + 10,
                 64 + 10 + 64 * 10 + 10, id="linear"),
    pytest.param({"type": "linear", "out": 10, "bias": False}, (64,), (10,), 64 * 10, 64 * 10,
                 64 * 10, 64 + 10 + 64 * 10, id="linear-no-bias"),
    pytest.param({"type": "prelu"}, (8, 4, 4), (8, 4, 4), 0, 0, 8, 2 * 128 + 8, id="prelu"),
    pytest.param({"type": "prelu", "shared": True}, (8, 4, 4), (8, 4, 4), 0, 0, 1, 2 * 128 + 1,
                 id="prelu-shared"),
    pytest.param({"type": "deconv", "out": 6, "kernel": 2, "stride": 2}, (4, 5, 5), (6, 10, 10),
                 4 * 6 * 4 * 25, 4 * 6 * 4 * 25, 4 * 6 * 4, 100 + 600 + 96, id="deconv-2x2"),
    pytest.param({"type": "deconv", "out": 4, "kernel": 3, "stride": 2, "padding": 1,
                  "output_padding": 1, "bias": True}, (2, 4, 4), (4, 8, 8),
                 2 * 4 * 9 * 16, 2 * 4 * 9 * 16, 2 * 4 * 9 + 4, 32 + 256 + 76, id="deconv-3x3"),
    pytest.param({"type": "slice", "start": 2, "stop": 5}, (8, 4, 4), (3, 4, 4), 0, 0, 0, 0,
                 id="slice"),
    pytest.param({"type": "unknown", "op": "torch.erf", "out": [8, 2, 2]}, (8, 4, 4),
                 (8, 2, 2), 0, 0, 0, 0, id="unknown"),  # unknown cost: 0, listed by Result
    pytest.param({"type": "adaptive_pool", "size": 6}, (256, 6, 6), (256, 6, 6), 0,
                 256 * 36, 0, 2 * 256 * 36, id="adaptive-avg-identity"),
    pytest.param({"type": "adaptive_pool", "size": [2, 3], "mode": "max"}, (4, 8, 9), (4, 2, 3),
                 0, 0, 0, 4 * 72 + 4 * 6, id="adaptive-max"),
    pytest.param({"type": "lstm", "hidden": 10}, (10, 1, 1), (10, 1, 1), 4 * 10 * 20, 0,
                 4 * 10 * 20 + 80, 10 + 40 + 880, id="lstm-step"),
    pytest.param({"type": "gate_decision"}, (2, 1, 1), (1, 1, 1), 0, 0, 0, 3, id="gate-decision"),
    pytest.param({"type": "rnn_gate"}, (10, 1, 1), (1, 1, 1), 4 * 10 * 20 + 10, 10, 891,
                 (10 + 40 + 880) + (10 + 1 + 11) + 2, id="rnn-gate"),
]


def _one(layer: dict, shape: tuple[int, ...], scope: str):
    """The layer's row on a C×H×W input, or on a vector of C (flattened from C×1×1)."""
    layers = [layer] if len(shape) == 3 else [{"type": "flatten"}, layer]
    c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
    return run_layers(layers, input=(h, w), in_channels=c,
                      options=Options(scope=scope)).rows[-1]


CASES += VOCABULARY  # the vocabulary of modern CNNs (#14), in test_vocab.py
CASES += ATTENTION  # attention and tokens (#14), in test_attention.py


@pytest.mark.parametrize("layer,inp,out,flops,fv_flops,params,mac", CASES)
def test_primitive(layer, inp, out, flops, fv_flops, params, mac):
    row = _one(layer, inp, "paper")
    assert row.out.as_list() == list(out)
    assert (row.flops, row.params, row.mac) == (flops, params, mac)
    assert row.activations == math.prod(out)
    assert _one(layer, inp, "fvcore").flops == fv_flops


PRIMITIVE_CLASSES = [cls for cls in layer_types() if issubclass(cls, Primitive)]


@pytest.mark.parametrize("cls", PRIMITIVE_CLASSES, ids=lambda cls: cls.__name__)
def test_every_primitive_has_its_traits_and_a_row(cls):
    """A primitive added without its traits, or without a row in CASES, fails here."""
    assert not missing(cls), f"{cls.__name__} does not declare {missing(cls)}"
    assert cls.operator in typing.get_args(Operator)
    assert cls.elementwise is None or cls.elementwise in typing.get_args(ElementwiseGroup)
    assert tags(cls) and tags(cls)[1:] == aliases(cls)
    tested = {case.values[0]["type"] for case in CASES}
    assert tested & set(tags(cls)), f"no row in CASES for {tags(cls)[0]}"


def test_a_primitive_without_an_operator_is_found():
    # not a Primitive subclass: a new layer class would join the spec language's union
    class Bare:
        pass

    class Declared:
        operator = "conv"

    assert missing(Bare) == ["operator"] and missing(Declared) == []


def test_aliases_come_from_the_type_literal():
    from costmodel.layers.norm import BatchNorm
    from costmodel.layers.reshape import ChannelShuffle

    assert (tags(BatchNorm), aliases(BatchNorm)) == (("bn", "batch_norm"), ("batch_norm",))
    assert aliases(ChannelShuffle) == ("shuffle",)


def test_two_flops_per_madd():
    result = run_layers([{"type": "conv", "out": 8}], options=Options(flops_per_madd=2))
    assert result.totals.flops == 2 * 3 * 3 * 3 * 8 * 8 * 8


def test_merges():
    a, b = Shape(8, 4, 4), Shape(8, 4, 4)
    assert concat_cost([a, Shape(4, 4, 4)]).out == Shape(12, 4, 4)
    assert concat_cost([a, Shape(4, 4, 4)]).mac == 128 + 64 + 192
    assert add_cost([a, b]).mac == 3 * 128
    gate = Shape(8, 1, 1)
    assert multiply_cost([a, gate]).out == a
    assert multiply_cost([a, gate]).mac == 128 + 8 + 128


def test_conv_cost_function_takes_shapes():
    cost = conv2d_cost(Shape(3, 224, 224), 32, (3, 3), (2, 2), (1, 1), (1, 1), 1, False)
    assert cost.out == Shape(32, 112, 112)
    assert cost.flops == 3 * 3 * 3 * 32 * 112 * 112 == 10_838_016  # slim's Conv2d_0 row


def test_squeeze_excite():
    """torchvision's SqueezeExcitation on C×H×W with S squeeze channels: two 1×1 convs with
    bias on the pooled vector, 2·C·S multiply-adds, C·S + S + S·C + C params."""
    c, s, h = 96, 24, 7
    r = run_layers([{"type": "se", "squeeze": s}], input=(h, h), in_channels=c)
    assert r.totals.flops == c * s + s * c
    assert r.totals.params == c * s + s + s * c + c
    assert r.output.as_list() == [c, h, h]
    mult = r.rows[-1]
    assert mult.type == "multiply" and mult.mac == c * h * h + c + c * h * h
    fv = run_layers([{"type": "se", "squeeze": s}], input=(h, h), in_channels=c,
                    options=Options(scope="fvcore"))
    assert fv.totals.flops == c * s + s * c + c * h * h  # + adaptive_avg_pool2d's input
    ratio = run_layers([{"type": "se", "ratio": 0.25, "divisor": 8}], input=(h, h),
                       in_channels=72).rows
    assert ratio[1].out.c == 24  # _make_divisible(72 / 4, 8)


def test_repeat_first_overrides_and_depth_multiplier():
    """A stage of n blocks whose first one downsamples; depth d makes it ceil(n·d) blocks."""
    layers = [{"name": "st", "type": "repeat", "n": 3, "first": {"stride": 2},
               "layers": [{"type": "dwsep", "out": 8}]}]
    rows = run_layers(layers, input=(16, 16), in_channels=8).rows
    dws = [r for r in rows if r.type == "dwconv"]
    assert [r.out.as_list() for r in dws] == [[8, 8, 8]] * 3
    assert [r.path for r in dws] == ["st.0.dw", "st.1.dw", "st.2.dw"]
    deeper = run_layers(layers, input=(16, 16), in_channels=8, depth=1.1).rows
    assert sum(r.type == "dwconv" for r in deeper) == 4  # ceil(3·1.1)


def test_repeat_first_must_name_a_field():
    import pytest as _pytest

    from costmodel.errors import SpecError
    with _pytest.raises(SpecError, match="no layer of the repeat has"):
        run_layers([{"type": "repeat", "n": 2, "first": {"strid": 2},
                     "layers": [{"type": "dwsep", "out": 8}]}])
