"""The importer: a torch module → a spec that counts exactly what fvcore counts on the module,
module by module, and what FlopCounterMode counts in the paper scope; params = Σ numel.

The modules are hand-written in the style of torchvision's families (torchvision does not load
against this torch)."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from costmodel.capture import import_module, to_yaml
from costmodel.capture.importer import capture
from costmodel.crosscheck.builder import build
from costmodel.crosscheck.verify import FLOP_COUNTER_SCOPE, FVCORE_SCOPE, RecordingFlopCount
from costmodel.engine import evaluate
from costmodel.errors import CostModelError
from costmodel.layers import type_names
from costmodel.spec import resolve, zoo
from costmodel.spec.loader import validate_spec


def _own(model: nn.Module, inclusive: dict[str, int], uncalled: set[str]) -> dict[str, int]:
    """Per module, fvcore's count of its own ops: inclusive less its children's, where a
    child never called itself (a ModuleDict) stands for what its children count."""
    modules = dict(model.named_modules())

    def kids(name: str) -> list[str]:
        return [f"{name}.{c}" if name else c for c, _ in modules[name].named_children()]

    def counted(name: str) -> int:
        if name in uncalled:
            return sum(counted(k) for k in kids(name))
        return inclusive.get(name, 0)

    return {name: inclusive.get(name, 0) - sum(counted(k) for k in kids(name))
            for name in modules if name not in uncalled}


def check(model: nn.Module, hw=(32, 32), in_channels: int = 3) -> dict:
    """Import ``model`` and compare: per module fvcore FLOPs and params, totals in both
    scopes. Returns the document."""
    model.eval()
    doc, paths = capture(model, hw, in_channels, name="imported")
    spec = validate_spec(doc, "imported")
    result = evaluate(spec, options=FVCORE_SCOPE)
    x = torch.randn(1, in_channels, *hw)
    with torch.no_grad():
        analysis = RecordingFlopCount(model, (x,))
        fv_total = analysis.total()
        fv_own = _own(model, analysis.by_module(), analysis.uncalled_modules())
        y = model(x)
    assert result.totals.flops == fv_total
    assert result.totals.params == sum(p.numel() for p in model.parameters())
    assert result.output.as_list() == list(y.shape[1:])
    # module by module: the rows charged to each module against fvcore's own count there
    spec_own: dict[str, int] = defaultdict(int)
    spec_params: dict[str, int] = defaultdict(int)
    for row in result.rows:
        module = paths[row.path]  # every row is mapped (no graph nodes here)
        spec_own[module] += row.flops
        spec_params[module] += row.params
    assert {m: f for m, f in spec_own.items() if f} == {m: f for m, f in fv_own.items() if f}
    torch_params = {n: sum(p.numel() for p in m.parameters(recurse=False))
                    for n, m in model.named_modules()}
    assert {m: p for m, p in spec_params.items() if p} == \
        {m: p for m, p in torch_params.items() if p}
    # the paper scope: FlopCounterMode's conv and matmul FLOPs, 2 per multiply-add
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert evaluate(spec, options=FLOP_COUNTER_SCOPE).totals.flops == counter.get_total_flops()
    return doc


def _layers(doc: dict) -> list[dict]:
    """Every layer mapping of the document, depth first."""
    found = []

    def walk(items):
        for item in items:
            found.append(item)
            for key in ("layers", "shortcut"):
                walk(item.get(key, []))
            for branch in item.get("branches", []):
                walk(branch)

    walk(doc["layers"])
    return found


def _types(doc: dict) -> set[str]:
    return {layer["type"] for layer in _layers(doc)}


# --- torchvision-style families ------------------------------------------------------------


def conv_bn(c_in, c_out, k=3, s=1, groups=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), act())


class BasicBlock(nn.Module):  # torchvision.models.resnet.BasicBlock
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):  # torchvision.models.resnet.Bottleneck
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, width=None):
        super().__init__()
        width = width or planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=10, groups=1):
        super().__init__()
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 16, layers[0])
        self.layer2 = self._make_layer(block, 32, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def test_resnet_basic_block():
    doc = check(ResNet(BasicBlock, [2, 2]), hw=(64, 64))
    layer1 = next(x for x in doc["layers"] if x["name"] == "layer1")
    assert layer1["type"] == "repeat" and layer1["n"] == 2  # two equal blocks, folded
    assert "residual" in _types(doc)
    assert doc["num_classes"] == 10


def test_resnet_bottleneck():
    doc = check(ResNet(Bottleneck, [2, 3]), hw=(64, 64))
    layer2 = next(x for x in doc["layers"] if x["name"] == "layer2")
    # block 0 downsamples: a repeat of the other blocks, block 0 by first: overrides
    assert layer2["type"] == "repeat" and layer2["n"] == 3
    assert [x["name"] for x in layer2["layers"]] == ["add", "relu"]
    assert set(layer2["first"]) == {"add.main.conv2.stride", "add.shortcut"}
    assert layer2["first"]["add.main.conv2.stride"] == 2
    assert [x["name"] for x in layer2["first"]["add.shortcut"]] == ["downsample"]
    assert "shortcut" not in layer2["layers"][0]  # the other blocks add the input itself


def test_resnext_grouped_conv():
    doc = check(ResNet(lambda i, p, s=1, d=None: Bottleneck(i, p, s, d, groups=4, width=16),
                       [1, 1]) if False else _resnext(), hw=(32, 32))
    assert any(x.get("groups") == 4 for x in _layers(doc))


def _resnext():
    class Block(Bottleneck):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__(inplanes, planes, stride, downsample, groups=4, width=planes * 2)
    Block.expansion = 4
    return ResNet(Block, [1, 1])


class VGG(nn.Module):  # torchvision.models.vgg (cfg "A", narrow)
    def __init__(self):
        super().__init__()
        cfg = [8, "M", 16, "M", 32, 32, "M"]
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(32 * 4, 64), nn.ReLU(True), nn.Dropout(0.5),
                                        nn.Linear(64, 10))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def test_vgg():
    doc = check(VGG())
    assert {"adaptive_pool", "dropout", "max_pool", "linear"} <= _types(doc)


class InvertedResidual(nn.Module):  # torchvision.models.mobilenetv2.InvertedResidual
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers = [conv_bn(inp, hidden, 1, act=nn.ReLU6)] if expand_ratio != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 16, 3, 2, act=nn.ReLU6),
                                      InvertedResidual(16, 8, 1, 1),
                                      InvertedResidual(8, 12, 2, 6),
                                      InvertedResidual(12, 12, 1, 6),
                                      conv_bn(12, 64, 1, act=nn.ReLU6))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, 10))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def test_mobilenet_v2_inverted_residual():
    doc = check(MobileNetV2())
    features = doc["layers"][0]
    block = features["layers"][3]
    assert block["type"] == "residual" and block["name"] == "3"  # the module is the block
    assert "dwconv" in _types(doc)


class SqueezeExcitation(nn.Module):  # torchvision.ops.SqueezeExcitation
    def __init__(self, c, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class SEBlock(nn.Module):  # MobileNet V3 / EfficientNet style: conv, SE, conv
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2, act=nn.Hardswish)
        self.block = nn.Sequential(conv_bn(16, 16, 3, groups=16, act=nn.SiLU),
                                   SqueezeExcitation(16, 4), conv_bn(16, 24, 1, act=nn.GELU))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 5))

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


def test_squeeze_excitation_is_a_multiply():
    doc = check(SEBlock())
    se = next(x for x in _layers(doc) if x.get("type") == "parallel")
    assert se["merge"] == "multiply" and se["name"] == "1"
    assert sorted(len(b) for b in se["branches"]) == [0, 5]  # pool, fc1, act, fc2, gate


def channel_shuffle(x, groups):  # torchvision.models.shufflenetv2.channel_shuffle
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


class ShuffleUnit(nn.Module):  # torchvision.models.shufflenetv2.InvertedResidual
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch, branch, 1, bias=False),
            nn.BatchNorm2d(branch), nn.ReLU(True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False),
            nn.BatchNorm2d(branch), nn.Conv2d(branch, branch, 1, bias=False),
            nn.BatchNorm2d(branch), nn.ReLU(True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = conv_bn(3, 12, 3, 2)
        self.stage2 = nn.Sequential(ShuffleUnit(12, 24, 2), ShuffleUnit(24, 24, 1),
                                    ShuffleUnit(24, 24, 1))
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = self.stage2(self.conv1(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # torchvision uses x.mean([2, 3])
        return self.fc(x)


def test_shufflenet_v2_split_and_shuffle():
    doc = check(ShuffleNetV2())
    stage2 = next(x for x in doc["layers"] if x["name"] == "stage2")
    assert stage2["type"] == "sequential"
    unit1 = stage2["layers"][1]  # repeated units 1, 2 differ from unit 0: not folded
    split = next(x for x in _layers({"layers": [unit1]}) if x.get("type") == "parallel")
    assert split["split"] == "half" and split["merge"] == "concat"
    assert split["branches"][0] == []
    assert "channel_shuffle" in _types(doc)


class Fire(nn.Module):  # torchvision.models.squeezenet.Fire
    def __init__(self, inplanes, squeeze, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, 2), nn.ReLU(True),
                                      nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 4, 8, 8),
                                      Fire(16, 4, 8, 8))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(16, 10, 1), nn.ReLU(True),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


def test_squeezenet_fire_concat():
    doc = check(SqueezeNet(), hw=(33, 33))
    assert any(x.get("ceil_mode") for x in _layers(doc))
    fire = doc["layers"][0]["layers"][3]
    assert fire["type"] == "sequential" and fire["name"] == "3"
    concat = fire["layers"][-1]
    assert concat["type"] == "parallel" and concat["merge"] == "concat"


class BasicConv2d(nn.Module):  # torchvision.models.inception.BasicConv2d
    def __init__(self, c_in, c_out, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionA(nn.Module):  # torchvision.models.inception.InceptionA
    def __init__(self, c_in, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 8, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 6, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(6, 8, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 8, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(8, 12, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)
        branch_pool = self.branch_pool(branch_pool)
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 16, kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(16, 4)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.Mixed_5b(self.Conv2d_1a_3x3(x))
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = F.dropout(x, training=self.training)
        return self.fc(torch.flatten(x, 1))


def test_inception_concat_of_four_branches():
    doc = check(Inception(), hw=(35, 35))
    mixed = next(x for x in doc["layers"] if x["name"] == "Mixed_5b")
    assert mixed["type"] == "parallel" and len(mixed["branches"]) == 4
    assert "branch_names" not in mixed  # branches of two modules each: numbered


# --- what cannot be mapped ----------------------------------------------------------------


class MeanHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.erf(self.conv(x)).sum([2, 3]))  # no spec layer for either


def test_an_unmapped_op_is_an_error_naming_it_and_its_module():
    with pytest.raises(CostModelError, match="torch.erf") as e:
        import_module(MeanHead(), (8, 8), name="m")
    assert e.value.path == "erf"


def test_unknown_allowed_becomes_flagged_layers():
    doc = import_module(MeanHead(), (8, 8), name="m", unknown="allow")
    spec = validate_spec(doc, "m")
    result = evaluate(spec, options=FVCORE_SCOPE)
    unknown = [r.layer.op for r in result.unknown]
    assert unknown == ["torch.erf", "Tensor.sum"]
    assert "2 unknown op(s)" in doc["notes"][0]
    conv = 8 * 3 * 3 * 3 * 6 * 6
    assert result.totals.flops == conv + 8 * 4  # the unknown ops count nothing, listed
    assert result.output.as_list() == [4]


def test_an_unread_module_is_an_error_naming_its_path():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.Softmax2d()))
    with pytest.raises(CostModelError, match="Softmax2d") as e:
        import_module(model, (8, 8), name="m")
    assert e.value.path == "1.0"


# --- output ---------------------------------------------------------------------------------


def test_yaml_reads_back_to_the_same_document():
    import yaml

    doc = import_module(ResNet(BasicBlock, [2, 1]), (32, 32), name="r")
    text = to_yaml(doc)
    assert text.startswith("# r: imported from")
    assert yaml.safe_load(text) == doc
    assert "- {name: conv1, type: conv, out: 16, kernel: 3}" in text


# --- round trip over the zoo ------------------------------------------------------------------

def _zoo_params():
    # all 27 models take about two minutes together on one core: none is marked apart
    return [pytest.param(entry.name, id=entry.name) for entry in zoo()]


NOT_IMPORTABLE = {name: "gate.rnn.*cannot map Tensor.unsqueeze" for name in
                  ("skipnet-cifar", "skipnet-imagenet")}
"""Zoo models the importer refuses, and why: SkipNet's recurrent gate runs an LSTM step on a
1×N×E sequence (its unsqueeze to time-major is no spec layer)."""


def _comparable(result):
    return [(r.flops, r.params, r.out) for r in result.rows
            if r.type not in ("add", "concat", "multiply", "hff", "split")]


@pytest.mark.parametrize("name", _zoo_params())
def test_zoo_round_trip(name):
    """spec → torch module → import → spec: the same rows (FLOPs, params, output shape, in
    order; merges and splits aside, whose place in a graph node may differ) and totals."""
    spec = resolve(name)
    original = evaluate(spec, options=FVCORE_SCOPE)
    model = build(original)
    if name in NOT_IMPORTABLE:
        with pytest.raises(CostModelError, match=NOT_IMPORTABLE[name]):
            import_module(model, original.input, original.in_channels, name=name)
        return
    doc = import_module(model, original.input, original.in_channels, name=name)
    if "graph" not in type_names() and '"graph"' in json.dumps(doc):
        pytest.xfail("needs the graph layer type (ESPNet's hierarchical fusion is no nest)")
    again = evaluate(validate_spec(doc, name), options=FVCORE_SCOPE)
    assert again.totals == original.totals
    assert _comparable(again) == _comparable(original)


# --- random networks ------------------------------------------------------------------------


@st.composite
def nets(draw):
    c, layers = 3, []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "dw", "bn", "act", "res", "se", "cat", "pool",
                                     "split"]))
        if kind == "split" and c % 2:
            kind = "bn"
        if kind == "conv":
            out, k = draw(st.integers(1, 8)), draw(st.sampled_from([1, 3]))
            layers.append(nn.Conv2d(c, out, k, padding=k // 2, bias=draw(st.booleans())))
            c = out
        elif kind == "dw":
            layers.append(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False))
        elif kind == "bn":
            layers.append(nn.BatchNorm2d(c))
        elif kind == "act":
            layers.append(draw(st.sampled_from([nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU,
                                                nn.Sigmoid, nn.GELU]))())
        elif kind == "res":
            layers.append(Res(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU())))
        elif kind == "se":
            layers.append(SqueezeExcitation(c, max(1, c // 2)))
        elif kind == "cat":
            out = draw(st.integers(1, 4))
            layers.append(Cat(nn.Conv2d(c, out, 1), nn.Conv2d(c, out, 3, padding=1)))
            c = 2 * out
        elif kind == "split":
            layers.append(ShuffleUnit(c, c, 1))
        else:  # at most two halvings: the smallest input, 6×6, ends at 1×1
            halvings = sum(isinstance(m, nn.MaxPool2d) for m in layers)
            pools = [nn.AvgPool2d(3, 1, 1)] + ([nn.MaxPool2d(2)] if halvings < 2 else [])
            layers.append(draw(st.sampled_from(pools)))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, draw(st.integers(1, 5)))]
    return nn.Sequential(*layers)


class Res(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x) + x


class Cat(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nets(), st.integers(6, 16))
def test_random_nets_count_what_fvcore_counts(model, side):
    check(model, hw=(side, side))


def test_import_costs_little_more_than_one_fvcore_pass():
    """Import time against one fvcore pass on the same module (printed; a loose bound)."""
    model = ResNet(Bottleneck, [3, 4]).eval()
    x = torch.randn(1, 3, 64, 64)
    t0 = time.perf_counter()
    import_module(model, (64, 64), name="r")
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    RecordingFlopCount(model, (x,)).total()
    t_fvcore = time.perf_counter() - t0
    print(f"import {t_import * 1000:.0f} ms, fvcore {t_fvcore * 1000:.0f} ms")
    assert t_import < 5 * t_fvcore + 0.5


class DenseBlock(nn.Module):  # torchvision.models.densenet._DenseBlock: every earlier output
    def __init__(self, c, growth, n):
        super().__init__()
        self.layers = nn.ModuleDict({
            f"denselayer{i + 1}": nn.Sequential(nn.BatchNorm2d(c + i * growth), nn.ReLU(),
                                                nn.Conv2d(c + i * growth, growth, 3, padding=1,
                                                          bias=False))
            for i in range(n)})

    def forward(self, x):
        features = [x]
        for layer in self.layers.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


def test_densenet_block_is_a_graph_node():
    """Not a nest of branches: one graph node, each layer naming the outputs it reads."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), DenseBlock(8, 4, 3))
    doc = import_module(model, (12, 12), name="d")
    graph = doc["layers"][-1]
    assert graph["type"] == "graph" and graph["name"] == "1"
    nodes = {n["name"]: n for n in graph["nodes"]}
    assert graph["output"] in nodes and nodes[graph["output"]]["merge"] == "concat"
    reads = [n["inputs"] for n in graph["nodes"] if n.get("merge") == "concat"]
    assert len(reads[-1]) == 4 and reads[-1][0] == "input"  # x and the three layers' outputs
    convs = [x for n in graph["nodes"] for x in n.get("layers", []) if x["type"] == "conv"]
    assert len(convs) == 3
    if "graph" in type_names():  # the graph layer type: then it counts exactly, too
        check(model, hw=(12, 12))


class StochasticDepth(nn.Module):  # torchvision.ops.StochasticDepth, read by its name
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x if not self.training else x * (torch.rand(x.shape[0], 1, 1, 1) > self.p)


StochasticDepth.__module__ = "torchvision.ops.stochastic_depth"


class MBConv(nn.Module):  # torchvision.models.efficientnet.MBConv
    def __init__(self, c, expand):
        super().__init__()
        hidden = c * expand
        self.block = nn.Sequential(conv_bn(c, hidden, 1, act=nn.SiLU),
                                   conv_bn(hidden, hidden, 3, groups=hidden, act=nn.SiLU),
                                   SqueezeExcitation(hidden, max(1, c // 4)),
                                   nn.Sequential(nn.Conv2d(hidden, c, 1, bias=False),
                                                 nn.BatchNorm2d(c)))
        self.stochastic_depth = StochasticDepth(0.2)

    def forward(self, x):
        result = self.stochastic_depth(self.block(x))
        result += x
        return result


def test_efficientnet_mbconv_with_stochastic_depth():
    model = nn.Sequential(conv_bn(3, 8, 3, 2, act=nn.SiLU), MBConv(8, 4), MBConv(8, 4),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    doc = check(model)
    assert {"identity", "residual", "parallel"} <= _types(doc)
    assert [x["name"] for x in doc["layers"]][:3] == ["0", "1", "2"]


class Misc(nn.Module):
    """The other readers and functions: transposed conv, upsample, PReLU, leaky ReLU, channel
    shuffle module, an uneven split, a channel slice, layer norm on a vector."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1, dilation=1, bias=True)
        self.prelu = nn.PReLU(12)
        self.up = nn.Upsample(scale_factor=2)
        self.down = nn.ConvTranspose2d(12, 6, 2, 2)
        self.shuffle = nn.ChannelShuffle(3)
        self.a = nn.Conv2d(4, 4, 1)
        self.b = nn.Conv2d(2, 2, (1, 3), padding=(0, 1))
        self.pool = nn.AvgPool2d(2, ceil_mode=True)
        self.norm = nn.LayerNorm(32)  # 2 channels of 4×4
        self.fc = nn.Linear(32, 3, bias=False)

    def forward(self, x):
        x = self.shuffle(self.up(self.prelu(self.conv(x))))
        x = F.leaky_relu(self.down(x), 0.2)
        a, b = torch.split(x, [4, 2], dim=1)
        x = torch.cat([self.a(a), self.b(b)], 1)
        x = self.pool(x[:, 1:3])
        return self.fc(self.norm(x.reshape(x.size(0), -1)))


def test_other_readers_and_functions():
    doc = check(Misc(), hw=(2, 2))
    split = next(x for x in _layers(doc) if x.get("split"))
    assert split["split"] == [4, 2] and split["merge"] == "concat"
    assert {"deconv", "upsample", "prelu", "leaky_relu", "channel_shuffle", "slice",
            "layer_norm", "avg_pool"} <= _types(doc)


def test_a_module_that_fails_at_the_input_size_is_an_error():
    with pytest.raises(CostModelError, match=r"fails on a 1×3×8×8 input.*normalized_shape"):
        import_module(nn.Sequential(nn.Flatten(), nn.LayerNorm(5)), (8, 8), name="m")


class PoolBySize(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, x.size()[2:])  # the window read from the tensor at run time


def test_an_argument_known_only_at_run_time_is_an_unmapped_op():
    with pytest.raises(CostModelError, match="avg_pool2d"):
        import_module(PoolBySize(), (8, 8), name="m")


class ResBottleneckBlock(nn.Module):  # torchvision.models.regnet: shortcut written first
    def __init__(self, c_in, c_out):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, 2, bias=False), nn.BatchNorm2d(c_out))
        self.f = nn.Sequential(conv_bn(c_in, c_out, 1), conv_bn(c_out, c_out, 3, 2, groups=2),
                               nn.Conv2d(c_out, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.activation = nn.ReLU()

    def forward(self, x):
        return self.activation(self.proj(x) + self.f(x))


def test_regnet_block_main_path_is_the_longer_one():
    doc = check(nn.Sequential(ResBottleneckBlock(3, 8)), hw=(16, 16))
    residual = doc["layers"][0]["layers"][0]
    assert residual["type"] == "residual"
    assert [x["name"] for x in residual["layers"]] == ["f"]
    assert [x["name"] for x in residual["shortcut"]] == ["proj"]


class TorchvisionLayerNorm2d(nn.LayerNorm):  # torchvision.models.convnext.LayerNorm2d
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


TorchvisionLayerNorm2d.__module__ = "torchvision.models.convnext"
TorchvisionLayerNorm2d.__name__ = TorchvisionLayerNorm2d.__qualname__ = "LayerNorm2d"


def test_convnext_downsample_layer_norm_2d_by_name():
    model = nn.Sequential(nn.Conv2d(3, 8, 4, 4), TorchvisionLayerNorm2d(8, eps=1e-6),
                          nn.Conv2d(8, 16, 2, 2))
    doc = check(model, hw=(32, 32))
    assert doc["layers"][1] == {"name": "1", "type": "layer_norm"}
