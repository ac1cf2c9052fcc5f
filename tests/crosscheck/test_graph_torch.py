"""``graph`` and ``aux`` in torch: the built modules (GraphModule, AuxModule) against fvcore
layer by layer, and against hand-written modules in torchvision's style (DenseNet's dense
block, GoogLeNet's auxiliary classifier)."""

from __future__ import annotations

import torch
from conftest import run_layers, verify_layers
from torch import nn

from costmodel.crosscheck.builder import AuxModule, GraphModule, build
from costmodel.crosscheck.verify import FVCORE_SCOPE, RecordingFlopCount

C0, K, N, H = 4, 2, 3, 8  # input channels, growth rate, dense layers, side


def dense_graph() -> dict:
    """DenseNet's dense block as a graph (as in tests/analytic/test_graph.py): each layer
    BN-ReLU-conv1×1 (4k)-BN-ReLU-conv3×3 (k) on the concat of the input and every earlier
    layer's output; the output concatenates them all."""
    layer = [{"type": "bn"}, {"type": "relu"}, {"type": "conv", "out": 4 * K, "kernel": 1},
             {"type": "bn"}, {"type": "relu"},
             {"type": "conv", "out": K, "kernel": 3, "padding": 1}]
    names = [f"l{i}" for i in range(1, N + 1)]
    graph_nodes = [{"name": "l1", "layers": layer}]
    graph_nodes += [{"name": f"l{i}", "inputs": ["input"] + names[:i - 1], "merge": "concat",
                     "layers": layer} for i in range(2, N + 1)]
    graph_nodes.append({"name": "out", "inputs": ["input"] + names, "merge": "concat"})
    return {"type": "graph", "name": "block1", "nodes": graph_nodes}


AUX = {"type": "aux", "name": "aux1", "layers": [
    {"type": "conv", "out": 6, "kernel": 1}, {"type": "bn"}, {"type": "global_pool"},
    {"type": "flatten"}, {"type": "linear", "out": 10}]}
MAIN = [{"type": "conv", "out": 8, "kernel": 3, "padding": 1}, AUX,
        {"type": "conv", "out": 5, "kernel": 1}]
AUX_PARAMS = 8 * 6 + 2 * 6 + 6 * 10 + 10  # conv, BN γ/β, fc weights and bias


def _exact(v) -> None:
    assert not v.differing, v.differing
    assert v.totals_ok
    assert v.params == v.fvcore_params == v.numel


def test_a_dense_block_graph_verifies_exactly_layer_by_layer():
    v = verify_layers([dense_graph()], input=(H, H), in_channels=C0)
    _exact(v)
    checked = {c.path: c for c in v.layers}
    assert checked["block1"].type == "concat + concat + concat"  # the merges: functional ops
    assert checked["block1"].shape == [C0 + N * K, H, H]


def test_module_paths_are_the_layer_paths():
    r = run_layers([dense_graph()], input=(H, H), in_channels=C0)
    model = build(r)
    modules = dict(model.named_modules())
    assert isinstance(modules["block1"], GraphModule)
    assert {row.path for row in r.rows if row.layer is not None} <= set(modules)
    assert {"block1.l1", "block1.l2", "block1.l3", "block1.out"} <= set(modules)


def test_a_graph_with_add_merges_and_an_output_used_twice_verifies():
    graph = {"type": "graph", "name": "g", "nodes": [
        {"name": "a", "layers": [{"type": "conv", "out": 4, "kernel": 3, "padding": 1}]},
        {"name": "b", "inputs": ["a"], "layers": [{"type": "conv", "out": 4, "kernel": 1}]},
        {"name": "c", "inputs": ["a", "b"], "merge": "add",
         "layers": [{"type": "bn"}, {"type": "relu"}]},
        {"name": "d", "inputs": ["a", "c", "b"], "merge": "multiply"}]}
    _exact(verify_layers([graph, {"type": "global_pool"}, {"type": "flatten"},
                          {"type": "linear", "out": 3}], input=(6, 6), in_channels=2))


class DenseBlock(nn.Module):
    """torchvision's _DenseBlock: each _DenseLayer runs on torch.cat of the block's input and
    every earlier layer's output; the block returns them all concatenated."""

    def __init__(self):
        super().__init__()
        for i in range(1, N + 1):
            c = C0 + (i - 1) * K
            self.add_module(f"l{i}", nn.Sequential(
                nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 4 * K, 1, bias=False),
                nn.BatchNorm2d(4 * K), nn.ReLU(), nn.Conv2d(4 * K, K, 3, padding=1, bias=False)))

    def forward(self, x):
        features = [x]
        for layer in self.children():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


def test_the_graph_counts_torchvisions_dense_block_exactly_per_layer():
    r = run_layers([dense_graph()], input=(H, H), in_channels=C0, options=FVCORE_SCOPE)
    model = nn.Sequential()
    model.add_module("block1", DenseBlock())
    model.eval()
    x = torch.randn(1, C0, H, H)
    fv = RecordingFlopCount(model, (x,))
    by_module = fv.by_module()
    for row in r.rows:
        if row.layer is not None:
            assert by_module[row.path] == row.flops, row.path
    assert fv.total() == r.totals.flops
    assert sum(p.numel() for p in model.parameters()) == r.totals.params
    with torch.no_grad():
        assert list(model(x).shape[1:]) == r.output.as_list()


class InceptionAux(nn.Module):
    """A GoogLeNet-style auxiliary classifier (conv 1×1, BN, pool, fc)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, 6, 1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.bn(self.conv(x)), 1)
        return self.fc(torch.flatten(x, 1))


class TinyGoogLeNet(nn.Module):
    """torchvision's GoogLeNet pattern with aux_logits=True: the aux classifier's params
    count, and it runs only in training mode."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.aux1 = InceptionAux(8)
        self.conv2 = nn.Conv2d(8, 5, 1, bias=False)

    def forward(self, x):
        x = self.conv1(x)
        aux = self.aux1(x) if self.training else None
        x = self.conv2(x)
        return (x, aux) if self.training else x


def test_aux_params_count_and_its_layers_do_not_run_at_inference():
    r = run_layers(MAIN, input=(H, H), in_channels=3, options=FVCORE_SCOPE)
    reference = TinyGoogLeNet().eval()
    x = torch.randn(2, 3, H, H)
    assert sum(p.numel() for p in reference.parameters()) == r.totals.params
    assert sum(p.numel() for p in reference.aux1.parameters()) == r.aux_params == AUX_PARAMS
    assert RecordingFlopCount(reference, (x[:1],)).total() == r.totals.flops

    model = build(r)
    aux = dict(model.named_modules())["aux1"]
    assert isinstance(aux, AuxModule)
    assert sum(p.numel() for p in aux.parameters()) == r.aux_params
    assert sum(p.numel() for p in model.parameters()) == r.totals.params
    with torch.no_grad():
        y = model(x)
    assert aux.aux_output is None  # not run in eval mode
    assert list(y.shape[1:]) == r.output.as_list()
    model.train()
    with torch.no_grad():
        assert model(x).shape == y.shape  # the main path goes on with the aux input
    assert list(aux.aux_output.shape) == [2, 10]  # run in training mode, kept apart


def test_a_model_with_aux_verifies_exactly():
    v = verify_layers(MAIN, input=(H, H), in_channels=3)
    _exact(v)
    aux = [c for c in v.layers if c.path.startswith("aux1.")]
    assert len(aux) == len(AUX["layers"])
    assert all(c.fvcore_flops == 0 and c.torch_shape is None for c in aux)
    assert sum(c.torch_params for c in aux) == sum(c.params for c in aux) == AUX_PARAMS
