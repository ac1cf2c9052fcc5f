"""The vocabulary of modern CNNs (#14): group norm, channels-last layer norm and linear,
permute, layer scale, mean, stochastic depth, Fused-MBConv. Expected values are the formulas'
arithmetic; the primitives' rows join test_formulas' CASES (every primitive needs one)."""

from __future__ import annotations

import pytest

from conftest import run_layers

from costmodel.errors import CostModelError
from costmodel.options import Options

# (layer, input C×H×W (or (C,): a vector), output, FLOPs (papers), fvcore FLOPs, params, MAC)
CASES = [
    pytest.param({"type": "group_norm", "groups": 2}, (8, 4, 4), (8, 4, 4), 0, 5 * 8 * 16,
                 2 * 8, 2 * 8 * 16 + 2 * 8, id="group-norm"),
    pytest.param({"type": "group_norm", "groups": 8, "affine": False}, (8, 4, 4), (8, 4, 4),
                 0, 4 * 8 * 16, 0, 2 * 8 * 16, id="group-norm-instance-no-affine"),
    pytest.param({"type": "group_norm", "groups": 4}, (8,), (8,), 0, 5 * 8, 2 * 8,
                 2 * 8 + 2 * 8, id="group-norm-vector"),
    pytest.param({"type": "layer_norm", "channels_last": True}, (8, 4, 4), (8, 4, 4), 0,
                 5 * 8 * 16, 2 * 8, 2 * 8 * 16 + 2 * 8, id="layer-norm-channels-last"),
    pytest.param({"type": "permute"}, (8, 4, 2), (8, 4, 2), 0, 0, 0, 0, id="permute-last"),
    pytest.param({"type": "permute", "to": "channels_first"}, (8, 4, 2), (8, 4, 2), 0, 0, 0, 0,
                 id="permute-first"),
    pytest.param({"type": "linear", "out": 16, "channels_last": True}, (8, 4, 4), (16, 4, 4),
                 8 * 16 * 16, 8 * 16 * 16, 8 * 16 + 16, 8 * 16 + 16 * 16 + 8 * 16 + 16,
                 id="linear-per-pixel"),
    pytest.param({"type": "linear", "out": 4, "bias": False, "channels_last": True}, (6,),
                 (4,), 6 * 4, 6 * 4, 6 * 4, 6 + 4 + 6 * 4, id="linear-channels-last-vector"),
    pytest.param({"type": "layer_scale"}, (8, 4, 4), (8, 4, 4), 0, 0, 8, 2 * 8 * 16 + 8,
                 id="layer-scale"),
    pytest.param({"type": "layer_scale", "init": 0.5}, (8,), (8,), 0, 0, 8, 2 * 8 + 8,
                 id="layer-scale-vector"),
    pytest.param({"type": "mean"}, (8, 4, 3), (8,), 0, 0, 0, 8 * 12 + 8, id="mean"),
    pytest.param({"type": "mean", "axes": [-1, -2], "keepdim": True}, (8, 4, 3), (8, 1, 1),
                 0, 0, 0, 8 * 12 + 8, id="mean-keepdim"),
    pytest.param({"type": "stochastic_depth", "p": 0.2}, (8, 4, 4), (8, 4, 4), 0, 0, 0, 0,
                 id="stochastic-depth"),
    pytest.param({"type": "stochastic_depth", "p": 1, "mode": "batch"}, (8,), (8,), 0, 0, 0, 0,
                 id="stochastic-depth-batch"),
]


def _rows(layers, inp, scope="paper"):
    c, h, w = (*inp, 1, 1) if len(inp) == 1 else inp
    if len(inp) == 1:
        layers = [{"type": "flatten"}, *layers]
    return run_layers(layers, input=(h, w), in_channels=c, options=Options(scope=scope)).rows


@pytest.mark.parametrize("layer,inp,out,flops,fv_flops,params,mac", CASES)
def test_vocabulary(layer, inp, out, flops, fv_flops, params, mac):
    row = _rows([layer], inp)[-1]
    assert row.out.as_list() == list(out)
    assert (row.flops, row.params, row.mac) == (flops, params, mac)
    assert _rows([layer], inp, "fvcore")[-1].flops == fv_flops


@pytest.mark.parametrize("layer,inp,field", [
    ({"type": "group_norm", "groups": 3}, (8, 4, 4), "groups"),
    ({"type": "linear", "out": 4}, (8, 4, 4), None),  # a map without channels_last: flatten?
    ({"type": "mean"}, (8,), None),
    ({"type": "permute"}, (8,), None),
    ({"type": "mean", "axes": [1, 2]}, (8, 4, 4), "axes"),
    ({"type": "mean", "axes": [2, 2]}, (8, 4, 4), "axes"),
    ({"type": "stochastic_depth", "p": 1.5}, (8, 4, 4), "p"),
])
def test_bad_vocabulary_is_refused(layer, inp, field):
    with pytest.raises(CostModelError) as e:
        _rows([layer], inp)
    if field:
        assert field in str(e.value)


def test_linear_on_a_map_says_how():
    with pytest.raises(CostModelError, match="channels_last"):
        _rows([{"type": "linear", "out": 4}], (8, 4, 4))


def _block(layer, c, side):
    rows = run_layers([layer], input=(side, side), in_channels=c).rows
    return {r.path: r for r in rows}


def test_fused_mbconv_expanded_with_residual():
    """C_in 8 → m = 4·8 = 32 (a multiple of 8) → 8, 3×3 stride 1 on 8×8: a residual."""
    rows = _block({"name": "b", "type": "fused_mbconv", "out": 8, "expansion": 4,
                   "stochastic_depth": 0.1}, 8, 8)
    assert list(rows) == ["b.res.main.expand", "b.res.main.expand_bn", "b.res.main.expand_act",
                          "b.res.main.project", "b.res.main.project_bn",
                          "b.res.main.stochastic_depth", "b.res.add"]
    assert rows["b.res.main.expand_act"].type == "silu"
    assert sum(r.flops for r in rows.values()) == 8 * 8 * (3 * 3 * 8 * 32 + 32 * 8)
    assert sum(r.params for r in rows.values()) == 3 * 3 * 8 * 32 + 2 * 32 + 32 * 8 + 2 * 8


def test_fused_mbconv_without_expansion_strided():
    """expansion 1: one 3×3 conv (stride 2) 8 → 16 + BN + SiLU, no residual, no project."""
    rows = _block({"name": "b", "type": "fused_mbconv", "out": 16, "expansion": 1,
                   "stride": 2, "stochastic_depth": 0.1}, 8, 8)
    assert list(rows) == ["b.conv", "b.conv_bn", "b.conv_act"]
    assert rows["b.conv_act"].out.as_list() == [16, 4, 4]
    assert sum(r.flops for r in rows.values()) == 4 * 4 * 3 * 3 * 8 * 16
    assert sum(r.params for r in rows.values()) == 3 * 3 * 8 * 16 + 2 * 16


def test_fused_mbconv_expanded_width_is_torchvisions_make_divisible():
    """12·2.5 = 30 → _make_divisible(30, 8) = 32; 5×5 kernel, stride 2, no residual."""
    rows = _block({"name": "b", "type": "fused_mbconv", "out": 12, "expansion": 2.5,
                   "kernel": 5, "stride": 2}, 12, 8)
    assert rows["b.expand"].out.as_list() == [32, 4, 4]
    assert rows["b.project"].flops == 4 * 4 * 32 * 12
    assert rows["b.expand"].flops == 4 * 4 * 5 * 5 * 12 * 32
    assert "b.res.add" not in rows
