"""The torch builder: one module per primitive, named by layer path, with the spec's geometry."""

from __future__ import annotations

import typing

import pytest
import torch
from conftest import run_layers
from torch import nn

from costmodel.api import evaluate_model
from costmodel.errors import CostModelError
from costmodel.evaluate import Branch, Seq
from costmodel.layers import Primitive, type_names
from costmodel.layers.elementwise import ActivationFn
from costmodel.torch.builder import PRIMITIVES, BranchModule, PaddedConv2d, build, example_input


def test_every_primitive_type_has_a_torch_module():
    """A layer type added without a torch module fails here (and verify would refuse it)."""
    tags = {tag for tag, cls in type_names().items() if issubclass(cls, Primitive)}
    tags.discard("activation")  # its rows carry the fn as their type
    assert tags | set(typing.get_args(ActivationFn)) <= set(PRIMITIVES)


def _containers(node, out: set[str]) -> set[str]:
    """Paths of the Seq and Branch nodes: the container modules."""
    if isinstance(node, Seq):
        out.add(node.path)
        for child in node.children:
            _containers(child, out)
    elif isinstance(node, Branch):
        out.add(node.path)
        for seq in node.branches:
            _containers(seq, out)
    return out


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
])
def test_module_names_are_layer_paths(result):
    result = result()
    names = {name for name, _ in build(result).named_modules()}
    primitives = {r.path for r in result.rows if r.layer is not None}
    # a branch's split and merge rows are functional ops of the branch's module
    merges = {r.path.rsplit(".", 1)[0] for r in result.rows if r.layer is None}
    assert primitives <= names
    assert merges <= names
    assert names == primitives | _containers(result.tree, set())


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
