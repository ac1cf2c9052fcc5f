"""The torch builder: one module per primitive, named by layer path, with the spec's geometry."""

from __future__ import annotations

import typing

import pytest
import torch
from conftest import run_layers
from torch import nn

from costmodel.api import evaluate_model
from costmodel.errors import CostModelError
from costmodel.engine import Branch, Seq, nodes
from costmodel.layers import Primitive, layer_types, type_names
from costmodel.layers.traits import tags
from costmodel.layers.elementwise import ActivationFn
from costmodel.crosscheck.builder import (TORCH_MODULES, BranchModule, SharedWeights, build,
                                          example_input, torch_layer)
from costmodel.crosscheck.modern_cnn import torch_shape
from costmodel.crosscheck.classic_cnn import (ACTIVATIONS, ChannelSlice, GateDecision,
                                              LSTMStep, PaddedConv2d, RNNGate)
from costmodel.crosscheck.verify import FVCORE_SCOPE, RecordingFlopCount


def test_every_primitive_class_has_a_torch_module():
    """A layer type added without a torch module fails here (and verify would refuse it)."""
    primitives = {cls for cls in layer_types() if issubclass(cls, Primitive)}
    missing = {tags(cls)[0] for cls in primitives - set(TORCH_MODULES)}
    assert not missing, f"no @torch_module for {sorted(missing)}"
    assert set(typing.get_args(ActivationFn)) == set(ACTIVATIONS)


# the fields a tag needs, and its input C×H×W when not 4×4×4
NEEDS = {"conv": {"out": 4}, "deconv": {"out": 4}, "conv_transpose": {"out": 4},
         "channel_shuffle": {"groups": 2}, "shuffle": {"groups": 2}, "adaptive_pool": {"size": 2},
         "slice": {"stop": 2}, "lstm": {"hidden": 3}, "linear": {"out": 3},
         "group_norm": {"groups": 2}, "unknown": {"op": "aten::erf", "out": [4, 4, 4]},
         "attend": {"heads": 1}, "window_pad": {"window": 3}, "crop": {"h": 2, "w": 3}}
INPUTS = {"lstm": (4, 1, 1), "rnn_gate": (4, 1, 1), "gate_decision": (2, 1, 1),
          "class_token": (4, 3, 1), "select_token": (4, 3, 1), "attend": (6, 4, 2)}


@pytest.mark.parametrize("tag", sorted(t for t, cls in type_names().items()
                                       if issubclass(cls, Primitive) and t != "activation"))
def test_every_tag_and_alias_builds_its_class_module(tag):
    """Aliases (bn / batch_norm, deconv / conv_transpose, …) run as their class's module,
    whose output has the analytic shape."""
    layers = [{"type": tag, **NEEDS.get(tag, {})}]
    if tag == "linear":
        layers.insert(0, {"type": "flatten"})
    last = type_names()[tag].runs_channels_last  # its module runs after a permute
    if last:
        layers.insert(0, {"type": "permute"})
    c, h, w = INPUTS.get(tag, (4, 4, 4))
    result = run_layers(layers, input=(h, w), in_channels=c)
    model = build(result)
    with torch.no_grad():
        y = model(torch.randn(1, c, h, w))
    out = result.rows[-1].out
    assert list(y.shape[1:]) == torch_shape(out, last)
    assert type(dict(model.named_children())[result.rows[-1].path]) is \
        type(torch_layer(result.rows[-1]).module(result.rows[-1], SharedWeights()))


def _containers(tree) -> set[str]:
    """Paths of the Seq and Branch nodes: the container modules."""
    return {n.path for n in nodes(tree) if isinstance(n, (Seq, Branch))}


MIXED = [  # every structural node: residual, SE (multiply, an empty branch), split + concat
    {"name": "stem", "type": "conv", "out": 8, "kernel": 3, "stride": 2},
    {"name": "res", "type": "residual", "layers": [{"type": "conv", "out": 8}, {"type": "bn"}],
     "shortcut": [{"name": "proj", "type": "conv", "out": 8, "kernel": 1}]},
    {"name": "se", "type": "se", "ratio": 0.25},
    {"name": "split", "type": "parallel", "split": "half", "merge": "concat",
     "branches": [[], [{"type": "dwconv"}, {"type": "hswish"}]]},
    {"name": "up", "type": "upsample", "scale": [2, 1], "mode": "bilinear"},
    {"name": "head", "type": "sequential",
     "layers": [{"type": "global_pool", "mode": "max"}, {"type": "flatten"}, {"type": "bn"},
                {"type": "dropout", "p": 0.2}, {"type": "linear", "out": 5}]},
]


@pytest.mark.parametrize("result", [
    pytest.param(lambda: evaluate_model("shufflenet", input=64), id="shufflenet"),
    pytest.param(lambda: evaluate_model("effnet"), id="effnet"),
    pytest.param(lambda: run_layers(MIXED, input=(16, 16)), id="mixed-blocks"),
    pytest.param(lambda: evaluate_model("skipnet-cifar-38"), id="skipnet-rnn-gates"),
])
def test_module_names_are_layer_paths(result):
    result = result()
    names = {name for name, _ in build(result).named_modules()}
    primitives = {r.path for r in result.rows if r.layer is not None}
    # a branch's split and merge rows are functional ops of the branch's module
    merges = {r.path.rsplit(".", 1)[0] for r in result.rows if r.layer is None}
    # the one recurrent controller, inside the gate that owns its weights
    owners = {r.path for r in result.rows if r.type == "rnn_gate" and r.params}
    inner = {f"{p}.rnn{part}" for p in owners for part in ("", ".lstm", ".proj")}
    assert primitives <= names
    assert merges <= names
    assert names == primitives | _containers(result.tree) | inner


def test_mixed_blocks_module_types():
    result = run_layers(MIXED, input=(16, 16))
    modules = dict(build(result).named_modules())
    assert isinstance(modules["se.se"], BranchModule) and modules["se.se"].merge == "multiply"
    assert list(dict(modules["se.se"].named_children())) == ["x", "gate"]
    assert len(modules["se.se.x"]) == 0  # the empty branch: the identity
    assert modules["split"].split == [4, 4] and modules["split"].merge == "concat"
    assert isinstance(modules["split.1.1"], nn.Hardswish)
    assert isinstance(modules["head.2"], nn.BatchNorm1d)  # batch norm on a vector
    assert isinstance(modules["head.0"], nn.AdaptiveMaxPool2d)
    assert modules["up"].mode == "bilinear" and modules["up"].scale_factor == (2.0, 1.0)
    assert not any(m.training for m in modules.values())  # built in eval mode


# (layer, input C×H×W, expected Conv2d attributes, asymmetric pad (left, right, top, bottom))
CONVS = [
    pytest.param({"type": "conv", "out": 8, "kernel": [1, 3], "stride": [1, 2],
                  "dilation": [1, 2], "groups": 2, "bias": True}, (4, 9, 9),
                 dict(out_channels=8, kernel_size=(1, 3), stride=(1, 2), padding=(0, 2),
                      dilation=(1, 2), groups=2), None, id="1x3-per-axis"),
    pytest.param({"type": "conv", "out": 4, "kernel": [3, 1], "padding": [2, 0]}, (2, 6, 6),
                 dict(kernel_size=(3, 1), padding=(2, 0), groups=1), None, id="3x1-explicit-pad"),
    pytest.param({"type": "dwconv", "kernel": 3, "stride": 2, "multiplier": 2}, (4, 8, 8),
                 dict(in_channels=4, out_channels=4 * 2, groups=4, padding=(1, 1),
                      stride=(2, 2)), None, id="depthwise-multiplier"),
    pytest.param({"type": "conv", "out": 4, "kernel": 3, "padding": "valid"}, (2, 8, 8),
                 dict(padding=(0, 0)), None, id="valid"),
    pytest.param({"type": "conv", "out": 4, "kernel": 3, "padding": "same"}, (2, 8, 8),
                 dict(padding=(1, 1)), None, id="same-symmetric"),
    # TF 'same', H: out 8, total (8-1)·1 + 2 - 8 = 1 → 0 above, 1 below; W: out 4, total 0
    pytest.param({"type": "conv", "out": 4, "kernel": [2, 1], "stride": [1, 2],
                  "padding": "same"}, (3, 8, 8), dict(padding=(0, 0)), (0, 0, 0, 1),
                 id="effnet-2x1-same"),
    # W: out ceil(7/2) = 4, total (4-1)·2 + 3 - 7 = 2 → 1 each side; H: total 3-1 = 2 → (1, 1)
    pytest.param({"type": "conv", "out": 4, "kernel": 3, "stride": [1, 2], "padding": "same"},
                 (3, 5, 7), dict(padding=(1, 1)), None, id="same-odd-width-symmetric"),
    # H: out ceil(6/2) = 3, total (3-1)·2 + 3 - 6 = 1 → (0, 1)
    pytest.param({"type": "conv", "out": 4, "kernel": 3, "stride": 2, "padding": "same"},
                 (3, 6, 6), dict(padding=(0, 0)), (0, 1, 0, 1), id="same-stride2-even"),
]


@pytest.mark.parametrize("layer,inp,attrs,pad", CONVS)
def test_conv_geometry(layer, inp, attrs, pad):
    result = run_layers([layer], input=inp[1:], in_channels=inp[0])
    model = build(result)
    conv = dict(model.named_modules())["0"]
    assert isinstance(conv, PaddedConv2d) == (pad is not None)
    if pad is not None:
        assert conv.pad == pad
    assert {k: getattr(conv, k) for k in attrs} == attrs
    assert (conv.bias is not None) == layer.get("bias", False)
    with torch.no_grad():
        out = model(example_input(result))
    assert list(out.shape) == [1, *result.output.as_list()]


@pytest.mark.parametrize("layers,path", [
    ([{"name": "forward", "type": "relu"}], "forward"),
    ([{"name": "p", "type": "parallel", "merge": "add", "branches": [[], []],
       "branch_names": ["a", "merge"]}], "p.merge"),
])
def test_names_torch_cannot_use_fail_clearly(layers, path):
    with pytest.raises(CostModelError) as e:
        build(run_layers(layers))
    assert e.value.path == path and "rename the layer" in str(e.value)


# (layers, input C×H×W, module type of the last layer, its output, params, fvcore FLOPs)
CLASSIC = [
    pytest.param([{"type": "prelu"}], (4, 5, 5), nn.PReLU, [4, 5, 5], 4, 0, id="prelu"),
    pytest.param([{"type": "prelu", "shared": True}], (4, 5, 5), nn.PReLU, [4, 5, 5], 1, 0,
                 id="prelu-shared"),
    # every input pixel scatters a 2×2×6 patch: weights × input pixels
    pytest.param([{"type": "deconv", "out": 6}], (4, 5, 7), nn.ConvTranspose2d, [6, 10, 14],
                 4 * 6 * 2 * 2, 4 * 6 * 2 * 2 * 5 * 7, id="deconv-2x2"),
    # H_out = (5−1)·2 − 2·1 + 1·(3−1) + 1 + 1 = 10; W_out = (7−1)·2 − 2 + 2 + 1 + 1 = 14
    pytest.param([{"type": "conv_transpose", "out": 6, "kernel": 3, "stride": 2, "padding": 1,
                   "output_padding": 1, "groups": 2, "bias": True}], (4, 5, 7),
                 nn.ConvTranspose2d, [6, 10, 14], 4 * (6 // 2) * 3 * 3 + 6,
                 4 * (6 // 2) * 3 * 3 * 5 * 7, id="conv-transpose-grouped"),
    # H_out = (6−1)·1 − 2·1 + 2·(3−1) + 1 = 8
    pytest.param([{"type": "deconv", "out": 3, "kernel": 3, "stride": 1, "padding": 1,
                   "dilation": 2}], (2, 6, 6), nn.ConvTranspose2d, [3, 8, 8], 2 * 3 * 3 * 3,
                 2 * 3 * 3 * 3 * 6 * 6, id="deconv-dilated"),
    pytest.param([{"type": "slice", "start": 2, "stop": 5}], (6, 4, 4), ChannelSlice,
                 [5 - 2, 4, 4], 0, 0, id="slice"),
    pytest.param([{"type": "global_pool"}, {"type": "flatten"}, {"type": "slice", "stop": 2}],
                 (6, 4, 4), ChannelSlice, [2], 0, 0, id="slice-vector"),
    # fvcore: one FLOP per input element of an adaptive average pool
    pytest.param([{"type": "adaptive_pool", "size": [3, 2]}], (4, 7, 5), nn.AdaptiveAvgPool2d,
                 [4, 3, 2], 0, 4 * 7 * 5, id="adaptive-avg"),
    pytest.param([{"type": "adaptive_pool", "size": 6}], (4, 1, 1), nn.AdaptiveAvgPool2d,
                 [4, 6, 6], 0, 4 * 1 * 1, id="adaptive-avg-upsizes"),  # VGG's head at 32×32
    pytest.param([{"type": "adaptive_pool", "size": 2, "mode": "max"}], (4, 7, 5),
                 nn.AdaptiveMaxPool2d, [4, 2, 2], 0, 0, id="adaptive-max"),
    # fvcore has no rule for aten::lstm: 0
    pytest.param([{"type": "global_pool"}, {"type": "flatten"}, {"type": "lstm", "hidden": 5}],
                 (6, 4, 4), LSTMStep, [5], 4 * 5 * (6 + 5) + 8 * 5, 0, id="lstm-vector"),
    pytest.param([{"type": "global_pool"}, {"type": "lstm", "hidden": 5, "bias": False}],
                 (6, 4, 4), LSTMStep, [5, 1, 1], 4 * 5 * (6 + 5), 0, id="lstm-map-no-bias"),
    pytest.param([{"type": "global_pool"}, {"type": "conv", "out": 2, "kernel": 1, "bias": True},
                  {"type": "gate_decision"}], (6, 4, 4), GateDecision, [1, 1, 1], 0, 0,
                 id="gate-decision"),
    # LSTM(6 → 4) + linear 4 → 1; fvcore counts the projection only
    pytest.param([{"type": "global_pool"}, {"type": "rnn_gate", "hidden": 4}], (6, 4, 4),
                 RNNGate, [1, 1, 1], 4 * 4 * (6 + 4) + 8 * 4 + 4 + 1, 4, id="rnn-gate"),
]


@pytest.mark.parametrize("layers,inp,module_type,shape,params,flops", CLASSIC)
def test_classic_primitive_modules(layers, inp, module_type, shape, params, flops):
    """The module's output shape, params and fvcore FLOPs are the analytic row's, and those
    are the formula's."""
    result = run_layers(layers, input=inp[1:], in_channels=inp[0], options=FVCORE_SCOPE)
    row = result.rows[-1]
    model, x = build(result), example_input(result)
    module = dict(model.named_modules())[row.path]
    assert type(module) is module_type
    with torch.no_grad():
        out = model(x)
    assert list(out.shape[1:]) == row.out.as_list() == shape
    assert sum(p.numel() for p in module.parameters()) == row.params == params
    assert RecordingFlopCount(model, (x,)).by_module()[row.path] == row.flops == flops


def test_deconv_module_geometry():
    result = run_layers([{"type": "conv_transpose", "out": 6, "kernel": [3, 1], "stride": [2, 1],
                          "padding": [1, 0], "output_padding": [1, 0], "dilation": [1, 2],
                          "groups": 2}], input=(5, 7), in_channels=4)
    deconv = build(result)[0]
    assert {k: getattr(deconv, k) for k in ("in_channels", "out_channels", "kernel_size",
                                            "stride", "padding", "output_padding", "dilation",
                                            "groups")} == dict(
        in_channels=4, out_channels=6, kernel_size=(3, 1), stride=(2, 1), padding=(1, 0),
        output_padding=(1, 0), dilation=(1, 2), groups=2)
    assert deconv.bias is None


def _branches(merge: str, branches: list[list[dict]]) -> list[dict]:
    return [{"name": "p", "type": "parallel", "merge": merge, "branches": branches}]


def test_hff_concatenates_running_sums():
    """ESPNet's hierarchical feature fusion: b1, b1+b2, b1+b2+b3."""
    convs = [[{"type": "conv", "out": 2, "dilation": d, "padding": d}] for d in (1, 2, 4)]
    result = run_layers(_branches("hff", convs), input=(8, 8), in_channels=3)
    model, x = build(result), example_input(result)
    b1, b2, b3 = (dict(model.named_modules())[f"p.{i}"](x) for i in range(3))
    with torch.no_grad():
        assert torch.equal(model(x), torch.cat([b1, b1 + b2, b1 + b2 + b3], dim=1))
    assert result.output.as_list() == [3 * 2, 8, 8]


def test_multiply_broadcasts_a_one_by_one_by_one_gate():
    gate = [{"type": "global_pool"}, {"type": "conv", "out": 1, "kernel": 1}]
    result = run_layers(_branches("multiply", [[], gate]), input=(5, 6), in_channels=4)
    model, x = build(result), example_input(result)
    with torch.no_grad():
        g = dict(model.named_modules())["p.1"](x)
        assert list(g.shape) == [1, 1, 1, 1]
        assert torch.equal(model(x), x * g)
    assert result.output.as_list() == [4, 5, 6]


def test_gate_decision_thresholds_the_execute_probability():
    decide = GateDecision().eval()
    logits = torch.tensor([[2.0, 1.0], [1.0, 2.0], [0.0, 0.5]]).view(3, 2, 1, 1)
    assert decide(logits).flatten().tolist() == [0.0, 1.0, 1.0]


# rnn_weights per gate → the gate owning each gate's controller (None: no owner)
SHARING = [
    pytest.param(["own", "shared", "shared"], [0, 0, 0], id="first-owns"),
    pytest.param(["shared", "own"], [1, 1], id="owner-later"),
    pytest.param(["own", "shared", "own", "shared"], [0, 0, 2, 2], id="two-owners"),
    pytest.param(["shared", "shared"], [None, None], id="no-owner"),
]


@pytest.mark.parametrize("weights,owners", SHARING)
def test_rnn_gates_share_one_controller(weights, owners):
    """A shared gate borrows the controller of the gate that owns it: torch counts its
    weights once, on the owner, as the analytic count does."""
    gates = [[{"name": "g", "type": "rnn_gate", "hidden": 4, "shared": w == "shared"}]
             for w in weights]
    result = run_layers([{"type": "global_pool"}, *_branches("add", gates)], in_channels=6)
    model = build(result)
    modules = dict(model.named_modules())
    rows = {r.path: r for r in result.rows}
    gates = [modules[f"p.{i}.g"] for i in range(len(weights))]
    used = [g.rnn if g.own else g.borrowed[0] for g in gates]
    controller_params = 4 * 4 * (6 + 4) + 8 * 4 + 4 + 1  # LSTM(6 → 4) + linear 4 → 1
    for i, owner in enumerate(owners):
        assert used[i] is used[owner if owner is not None else 0]
        assert sum(p.numel() for p in gates[i].parameters()) == rows[f"p.{i}.g"].params == \
            (controller_params if owner == i else 0)
    assert sum(p.numel() for p in model.parameters()) == result.totals.params


def test_rnn_controller_state_runs_from_gate_to_gate():
    """One LSTM state through the gates of a forward pass (as SkipNet's RNNGatePolicy), reset
    at the start of the next."""
    gates = [[{"name": "g", "type": "rnn_gate", "hidden": 4, "shared": i > 0}] for i in range(3)]
    result = run_layers([{"type": "global_pool"}, *_branches("add", gates)], in_channels=6)
    model, x = build(result), example_input(result)
    lstm = dict(model.named_modules())["p.0.g.rnn.lstm"]
    calls = []
    lstm.register_forward_hook(lambda m, args, out: calls.append((args, out)))
    with torch.no_grad():
        first = model(x)
        assert torch.equal(model(x), first)  # the second pass starts from zero again
    (a0, o0), (a1, o1), (a2, o2), (a3, _) = calls[:4]
    assert a0[1] is None and a1[1] is o0[1] and a2[1] is o1[1]
    assert a3[1] is None  # the second forward pass
