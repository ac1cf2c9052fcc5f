"""The vocabulary of modern CNNs (#14) against fvcore and torch: each new layer built in a
small spec and verified layer by layer (fvcore's FLOPs, torch's params and output shape), and
hand-written modules in torchvision's style (ConvNeXt's CNBlock, EfficientNetV2's
FusedMBConv, MNASNet's mean) counted by fvcore directly, against the spec's totals."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import run_layers, verify_layers
from torch import nn

from costmodel.crosscheck.builder import TORCH_READERS, build
from costmodel.options import Options

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis

CL = [{"type": "permute"}]
CF = [{"type": "permute", "to": "channels_first"}]

# (layers, input C×H×W, the path of the layer under test, its fvcore FLOPs, its params)
CASES = [
    pytest.param([{"name": "x", "type": "group_norm", "groups": 2}], (8, 4, 4), "x",
                 5 * 8 * 16, 2 * 8, id="group_norm"),
    pytest.param([{"name": "x", "type": "group_norm", "groups": 8, "affine": False}],
                 (8, 4, 4), "x", 4 * 8 * 16, 0, id="group_norm-no-affine"),
    pytest.param([*CL, {"name": "x", "type": "layer_norm", "channels_last": True}, *CF],
                 (8, 4, 2), "x", 5 * 8 * 8, 2 * 8, id="layer_norm-channels-last"),
    pytest.param([*CL, {"name": "x", "type": "linear", "out": 6, "channels_last": True}, *CF],
                 (8, 4, 2), "x", 8 * 6 * 8, 8 * 6 + 6, id="linear-channels-last"),
    pytest.param([{"name": "x", "type": "permute"}, {"type": "gelu"}, *CF], (8, 4, 2), "x",
                 0, 0, id="permute"),
    pytest.param([{"name": "x", "type": "layer_scale", "init": 0.1}], (8, 4, 4), "x", 0, 8,
                 id="layer_scale"),
    pytest.param([{"name": "x", "type": "mean"}], (8, 4, 4), "x", 0, 0, id="mean"),
    pytest.param([{"name": "x", "type": "mean", "axes": [-1, -2], "keepdim": True}],
                 (8, 4, 4), "x", 0, 0, id="mean-keepdim"),
    pytest.param([{"name": "x", "type": "stochastic_depth", "p": 0.5}], (8, 4, 4), "x", 0, 0,
                 id="stochastic_depth"),
]


@pytest.mark.parametrize("layers,inp,path,fv_flops,params", CASES)
def test_each_new_layer_is_fvcore_exact(layers, inp, path, fv_flops, params):
    c, h, w = inp
    v = verify_layers(layers, input=(h, w), in_channels=c)
    assert v.ok, v.differing
    check = next(c for c in v.layers if c.path == path)
    assert (check.fvcore_flops, check.torch_params) == (fv_flops, params)
    assert (check.flops, check.params) == (fv_flops, params)


@pytest.mark.parametrize("block", [
    {"type": "fused_mbconv", "out": 16, "expansion": 4, "stochastic_depth": 0.1},
    {"type": "fused_mbconv", "out": 24, "expansion": 4, "stride": 2},
    {"type": "fused_mbconv", "out": 16, "expansion": 1},
    {"type": "fused_mbconv", "out": 24, "expansion": 1, "stride": 2, "kernel": 5},
], ids=["expand-res", "expand-s2", "e1-res", "e1-s2-k5"])
def test_fused_mbconv_verifies(block):
    v = verify_layers([block], input=(8, 8), in_channels=16)
    assert v.ok, v.differing


# --- hand-written modules in torchvision's style --------------------------------------------


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class CNBlock(nn.Module):
    """torchvision's ConvNeXt CNBlock, written out (torchvision is not installed)."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]), nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim),
            nn.GELU(), nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)

    def forward(self, x):
        return x + self.layer_scale * self.block(x)  # stochastic depth: identity in eval


CNBLOCK_SPEC = [{"type": "residual", "layers": [
    {"type": "dwconv", "kernel": 7, "bias": True}, *CL,
    {"type": "layer_norm", "channels_last": True},
    {"type": "linear", "out": 64, "channels_last": True}, {"type": "gelu"},
    {"type": "linear", "out": 16, "channels_last": True}, *CF, {"type": "layer_scale"},
    {"type": "stochastic_depth", "p": 0.1}]}]


class Conv2dNormActivation(nn.Sequential):
    def __init__(self, c_in, c_out, k, s, act):
        super().__init__(nn.Conv2d(c_in, c_out, k, s, (k - 1) // 2, bias=False),
                         nn.BatchNorm2d(c_out, eps=1e-3), *([nn.SiLU()] if act else []))


class FusedMBConv(nn.Module):
    """torchvision's FusedMBConv, written out."""

    def __init__(self, c_in, c_out, expand, k, s):
        super().__init__()
        self.use_res = s == 1 and c_in == c_out
        hidden = max(8, int(c_in * expand + 4) // 8 * 8)  # _make_divisible(·, 8)
        if hidden < 0.9 * c_in * expand:
            hidden += 8
        layers = [Conv2dNormActivation(c_in, hidden, k, s, True),
                  Conv2dNormActivation(hidden, c_out, 1, 1, False)] if hidden != c_in else \
            [Conv2dNormActivation(c_in, c_out, k, s, True)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y


class MeanHead(nn.Module):
    """MNASNet's / ShuffleNet V2's head: x.mean([2, 3]) then a classifier."""

    def __init__(self, c, n):
        super().__init__()
        self.fc = nn.Linear(c, n)

    def forward(self, x):
        return self.fc(x.mean([2, 3]))


def _fvcore(module: nn.Module, c: int, h: int, w: int) -> tuple[int, int]:
    flops = FlopCountAnalysis(module.eval(), torch.randn(1, c, h, w))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return flops.total(), sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("module,layers,inp", [
    pytest.param(lambda: CNBlock(16), CNBLOCK_SPEC, (16, 7, 5), id="convnext-cnblock"),
    pytest.param(lambda: FusedMBConv(24, 24, 4, 3, 1),
                 [{"type": "fused_mbconv", "out": 24, "expansion": 4}], (24, 6, 6),
                 id="fused-mbconv-res"),
    pytest.param(lambda: FusedMBConv(12, 20, 2.5, 3, 2),
                 [{"type": "fused_mbconv", "out": 20, "expansion": 2.5, "stride": 2}],
                 (12, 8, 8), id="fused-mbconv-rounded"),
    pytest.param(lambda: FusedMBConv(16, 16, 1, 3, 1),
                 [{"type": "fused_mbconv", "out": 16, "expansion": 1}], (16, 6, 6),
                 id="fused-mbconv-e1"),
    pytest.param(lambda: MeanHead(8, 5), [{"type": "mean"}, {"type": "linear", "out": 5}],
                 (8, 4, 4), id="mean-head"),
])
def test_handwritten_torchvision_style_modules(module, layers, inp):
    """The spec's fvcore-scope total and params equal fvcore's and torch's on the module
    written as torchvision writes it, not on the one the builder makes."""
    c, h, w = inp
    result = run_layers(layers, input=(h, w), in_channels=c,
                        options=Options(scope="fvcore", bn_params=True))
    assert (result.totals.flops, result.totals.params) == _fvcore(module(), c, h, w)


def test_mean_is_not_counted_by_fvcore_but_global_pool_is():
    c, h, w = 8, 4, 4
    mean, _ = _fvcore(MeanHead(c, 5), c, h, w)
    pooled = run_layers([{"type": "global_pool"}, {"type": "flatten"},
                         {"type": "linear", "out": 5}], input=(h, w), in_channels=c,
                        options=Options(scope="fvcore"))
    assert pooled.totals.flops - mean == c * h * w


def test_readers_give_back_the_layers():
    """Each new module's reader (for ``costmodel import``) returns the spec fields it was
    built from."""
    layers = [{"name": "gn", "type": "group_norm", "groups": 2, "affine": False},
              {"name": "ls", "type": "layer_scale", "init": 0.25},
              {"name": "sd", "type": "stochastic_depth", "p": 0.3, "mode": "batch"},
              {"name": "p1", "type": "permute", "to": "channels_last"},
              {"name": "p2", "type": "permute", "to": "channels_first"},
              {"name": "m", "type": "mean", "axes": [-1, -2], "keepdim": True}]
    result = run_layers(layers, input=(4, 4), in_channels=8)
    modules = dict(build(result).named_children())
    for layer, row in zip(layers, result.rows):
        module = modules[row.path]
        fields = TORCH_READERS[type(module)](module, row.inputs[0])
        assert fields == {k: v for k, v in layer.items() if k != "name"}


def test_stochastic_depth_module_is_torchvisions():
    result = run_layers([{"name": "sd", "type": "stochastic_depth", "p": 1.0}],
                        input=(2, 2), in_channels=3)
    sd = dict(build(result).named_children())["sd"]
    x = torch.randn(4, 3, 2, 2)
    assert torch.equal(sd.eval()(x), x)
    assert torch.equal(sd.train()(x), torch.zeros_like(x))  # every row dropped
    sd.p = 0.0
    assert torch.equal(sd(x), x)
