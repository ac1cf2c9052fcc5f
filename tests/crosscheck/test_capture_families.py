"""The importer on hand-written modules in the style of the torchvision families that need the
newer vocabulary (torchvision itself is not needed): MNASNet's mean head, ConvNeXt's CNBlock
(permute, channels-last LayerNorm and Linear, layer scale), GoogLeNet's training-only aux
classifier, DenseNet's dense block (a graph), EfficientNetV2's FusedMBConv and RegNet Y's
block with squeeze-excitation; ViT's encoder (nn.MultiheadAttention, class token, position
embedding), Swin's window attention and patch merging, MaxViT's partition attention. Each: import → exact against fvcore module by module, params
= Σ numel, and FlopCounterMode in the paper scope (``check``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_capture import StochasticDepth, _layers, _types, check, conv_bn
from torch import nn

from costmodel.capture import import_module
from costmodel.engine import evaluate
from costmodel.errors import CostModelError
from costmodel.spec.loader import validate_spec


# --- MNASNet: x.mean([2, 3]) before the classifier -------------------------------------


class MNASNetHead(nn.Module):  # torchvision.models.mnasnet.MNASNet.forward
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(conv_bn(3, 16, 3, 2), conv_bn(16, 32, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.layers(x).mean([2, 3]))


def test_mnasnet_mean_head():
    doc = check(MNASNetHead(), hw=(16, 16))
    mean = next(x for x in _layers(doc) if x["type"] == "mean")
    assert mean == {"name": "mean", "type": "mean", "axes": [2, 3], "keepdim": False}
    assert "global_pool" not in _types(doc)  # fvcore counts no aten::mean: not a pool


class KeepdimMean(nn.Module):
    def forward(self, x):
        return torch.mean(x, dim=(-1, -2), keepdim=True)


def test_mean_keepdim_and_negative_axes():
    doc = check(nn.Sequential(nn.Conv2d(3, 4, 3), KeepdimMean()), hw=(8, 8))
    mean = next(x for x in _layers(doc) if x["type"] == "mean")
    assert mean["keepdim"] is True and mean["axes"] == [-1, -2]


class ChannelMean(nn.Module):
    def forward(self, x):
        return x.mean(1)  # over the channels: no spec layer


def test_a_mean_over_channels_is_unmapped():
    with pytest.raises(CostModelError, match="Tensor.mean"):
        import_module(nn.Sequential(nn.Conv2d(3, 4, 3), ChannelMean()), (8, 8), name="m")


# --- ConvNeXt: CNBlock -------------------------------------------------------------------


class Permute(nn.Module):  # torchvision.ops.misc.Permute (traced into: torch.permute)
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class TorchvisionPermute(Permute):  # the same class under its own name: read as a module
    pass


TorchvisionPermute.__module__ = "torchvision.ops.misc"
TorchvisionPermute.__name__ = TorchvisionPermute.__qualname__ = "Permute"


class CNBlock(nn.Module):  # torchvision.models.convnext.CNBlock
    def __init__(self, dim, layer_scale=1e-6, p=0.1, permute=TorchvisionPermute):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim, bias=True),
            permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(p)

    def forward(self, x):
        result = self.layer_scale * self.block(x)
        result = self.stochastic_depth(result)
        result += x
        return result


@pytest.mark.parametrize("permute", [Permute, TorchvisionPermute])
def test_convnext_cnblock(permute):
    """torch.permute inside a module fx traces into, or torchvision's Permute read by name."""
    model = nn.Sequential(nn.Conv2d(3, 8, 4, 4), CNBlock(8, permute=permute),
                          CNBlock(8, p=0.2, permute=permute),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(8, 5))
    doc = check(model, hw=(32, 32))
    layers = _layers(doc)
    permutes = [x["to"] for x in layers if x["type"] == "permute"]
    assert permutes == ["channels_last", "channels_first"] * (len(permutes) // 2)
    assert {x["type"] for x in layers if x.get("channels_last")} == {"layer_norm", "linear"}
    scale = next(x for x in layers if x["type"] == "layer_scale")
    assert scale["init"] == 1e-6


class FlattenChannelsLast(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1)  # a flatten of H×W×C: another order


def test_only_element_wise_ops_run_on_a_channels_last_value():
    with pytest.raises(CostModelError, match="channels-last") as e:
        import_module(FlattenChannelsLast(), (4, 4), 4, name="m")
    assert e.value.path == "flatten"
    conv = nn.Sequential(TorchvisionPermute([0, 2, 3, 1]), nn.Conv2d(4, 4, 1))
    with pytest.raises(CostModelError, match="Conv2d on a channels-last") as e:
        import_module(conv, (4, 4), 4, name="m")
    assert e.value.path == "1"
    twice = nn.Sequential(TorchvisionPermute([0, 2, 3, 1]), TorchvisionPermute([0, 2, 3, 1]))
    with pytest.raises(CostModelError, match="already channels-last"):
        import_module(twice, (4, 4), 4, name="m")


class ScaleByBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("gamma", torch.ones(3, 1, 1))

    def forward(self, x):
        return self.gamma * x


def test_a_multiply_by_a_buffer_is_no_layer_scale():
    with pytest.raises(CostModelError, match="mul"):
        import_module(ScaleByBuffer(), (4, 4), name="m")


# --- GoogLeNet: a training-only auxiliary classifier ---------------------------------


class InceptionAux(nn.Module):  # torchvision.models.googlenet.InceptionAux
    def __init__(self, c_in, classes):
        super().__init__()
        self.conv = conv_bn(c_in, 8, 1)
        self.fc1 = nn.Linear(8 * 2 * 2, 16)
        self.fc2 = nn.Linear(16, classes)
        self.dropout = nn.Dropout(0.7)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, (2, 2))
        x = torch.flatten(self.conv(x), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


class AuxNet(nn.Module):  # GoogLeNet's forward with aux_logits=True
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8, 3, 2)
        self.body = nn.Sequential(conv_bn(8, 8, 3), conv_bn(8, 16, 3))
        self.aux1 = InceptionAux(8, 4)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))

    def forward(self, x):
        x = self.stem(x)
        aux1 = self.aux1(x) if self.training else None
        x = self.head(self.body(x))
        return (x, aux1) if self.training else x


def test_googlenet_aux_classifier_counts_params_not_flops():
    model = AuxNet()
    import_module(model, (16, 16), name="m")
    assert model.training is True  # the import leaves the module's mode as it was
    doc = check(model, hw=(16, 16))
    names = [x["name"] for x in doc["layers"]]
    assert names == ["stem", "aux1", "body", "head"]  # placed where it taps the main path
    aux = doc["layers"][1]
    assert aux["type"] == "aux"
    inside = {x["type"] for x in _layers({"layers": aux["layers"]})}
    assert {"adaptive_pool", "conv", "linear"} <= inside
    result = evaluate(validate_spec(doc, "m"))
    aux_params = sum(p.numel() for p in model.aux1.parameters())
    assert result.aux_params == aux_params


class Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.spare = nn.Linear(4, 4)  # never called, not even in training

    def forward(self, x):
        return self.conv(x)


def test_a_module_never_called_is_noted_not_silent():
    doc = import_module(Unused(), (8, 8), name="m")
    assert any("spare (20)" in note for note in doc["notes"])


# --- DenseNet: a dense block, as torchvision writes it (a graph) ---------------------------


class DenseLayer(nn.Module):  # torchvision.models.densenet._DenseLayer (bottleneck)
    def __init__(self, c_in, growth, bn_size=2):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(c_in), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, inputs):
        x = torch.cat(inputs, 1) if isinstance(inputs, list) else inputs
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):  # torchvision.models.densenet._DenseBlock
    def __init__(self, n, c_in, growth):
        super().__init__()
        for i in range(n):
            self.add_module(f"denselayer{i + 1}", DenseLayer(c_in + i * growth, growth))

    def forward(self, init_features):
        features = [init_features]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


def test_densenet_dense_block_and_transition():
    model = nn.Sequential(conv_bn(3, 8, 3), DenseBlock(3, 8, 4),
                          nn.Sequential(nn.BatchNorm2d(20), nn.ReLU(), nn.Conv2d(20, 10, 1),
                                        nn.AvgPool2d(2, 2)),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, 3))
    doc = check(model, hw=(12, 12))
    assert doc["layers"][1]["type"] == "graph"


# --- EfficientNetV2: FusedMBConv ----------------------------------------------------------


class FusedMBConv(nn.Module):  # torchvision.models.efficientnet.FusedMBConv
    def __init__(self, c_in, c_out, expand, stride):
        super().__init__()
        self.use_res_connect = stride == 1 and c_in == c_out
        hidden = c_in * expand
        self.block = nn.Sequential(conv_bn(c_in, hidden, 3, stride, act=nn.SiLU),
                                   nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False),
                                                 nn.BatchNorm2d(c_out)))
        self.stochastic_depth = StochasticDepth(0.1)

    def forward(self, x):
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += x
        return result


def test_efficientnet_v2_fused_mbconv():
    model = nn.Sequential(conv_bn(3, 8, 3, 2, act=nn.SiLU), FusedMBConv(8, 8, 4, 1),
                          FusedMBConv(8, 16, 4, 2))
    doc = check(model, hw=(16, 16))
    assert doc["layers"][1]["type"] in ("residual", "sequential")
    assert "residual" in _types(doc)


# --- RegNet Y: bottleneck with squeeze-excitation, projection written first ---------------


class SqueezeExcitation(nn.Module):  # torchvision.ops.SqueezeExcitation
    def __init__(self, c, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
        self.activation, self.scale_activation = nn.ReLU(), nn.Sigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class RegNetYBlock(nn.Module):  # torchvision.models.regnet.ResBottleneckBlock with se_ratio
    def __init__(self, c_in, c_out, stride, group_width=4):
        super().__init__()
        self.proj = None if c_in == c_out and stride == 1 else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.f = nn.Sequential(conv_bn(c_in, c_out, 1),
                               conv_bn(c_out, c_out, 3, stride, groups=c_out // group_width),
                               SqueezeExcitation(c_out, max(1, c_in // 4)),
                               nn.Conv2d(c_out, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        if self.proj is not None:
            return self.activation(self.proj(x) + self.f(x))
        return self.activation(x + self.f(x))


def test_regnet_y_block():
    model = nn.Sequential(conv_bn(3, 8, 3, 2), RegNetYBlock(8, 16, 2), RegNetYBlock(16, 16, 1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))
    doc = check(model, hw=(16, 16))
    merges = {x.get("merge") for x in _layers(doc) if x["type"] == "parallel"}
    assert "multiply" in merges  # the SE scale
    assert sum(x["type"] == "residual" for x in _layers(doc)) == 2


# --- repeats whose first copy differs ------------------------------------------------------


def _conv(name, **extra):
    return {"name": name, "type": "conv", "out": 8, "kernel": 3, **extra}


def test_fold_first_copy_by_overrides_and_refusals():
    from costmodel.capture.structure import fold

    copies = [{"name": str(i), "type": "residual",
               "layers": [_conv("a", **({"stride": 2} if i == 0 else {})), _conv("b")]}
              for i in range(3)]
    folded = fold({"name": "s", "type": "sequential", "layers": copies})
    assert folded["type"] == "repeat" and folded["n"] == 3
    assert folded["first"] == {"main.a.stride": 2}
    assert folded["layers"] == [{"type": "residual", "layers": [_conv("a"), _conv("b")]}]
    # a field the later copies set and the first leaves at its default: no override says that
    later = [{**c, "layers": [_conv("a", stride=2), _conv("b")]} if c["name"] != "0" else
             {**c, "layers": [_conv("a"), _conv("b")]} for c in copies]
    assert fold({"name": "s", "type": "sequential", "layers": later})["type"] == "sequential"
    # copies of another structure (a layer more): not a repeat
    other = [copies[0] | {"layers": copies[0]["layers"] + [_conv("c")]}] + copies[1:]
    assert fold({"name": "s", "type": "sequential", "layers": other})["type"] == "sequential"


class Stage(nn.Sequential):  # a stage whose first block strides and widens (EfficientNet)
    def __init__(self):
        super().__init__(conv_bn(8, 16, 3, 2), conv_bn(16, 16, 3), conv_bn(16, 16, 3))


def test_a_stage_whose_first_block_strides_is_a_repeat_and_exact():
    doc = check(nn.Sequential(conv_bn(3, 8, 3), Stage()), hw=(16, 16))
    stage = doc["layers"][1]
    assert stage["type"] == "repeat" and stage["n"] == 3
    assert stage["first"] == {"0.stride": 2}


# --- transformers: ViT (nn.MultiheadAttention), Swin, MaxViT ------------------------------


def check_tokens(model: nn.Module, hw=(32, 32)) -> dict:
    """Import ``model`` and compare with fvcore: total, every operator, params, output shape.
    fvcore runs without torch.no_grad(): under it nn.MultiheadAttention takes its fused fast
    path (aten::_native_multi_head_attention), which fvcore does not count at all."""
    import warnings

    from costmodel.crosscheck.builder import torch_layer
    from costmodel.crosscheck.verify import FVCORE_SCOPE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis
    model.eval()
    doc = import_module(model, hw, name="imported")
    result = evaluate(validate_spec(doc, "imported"), options=FVCORE_SCOPE)
    x = torch.randn(1, 3, *hw)
    fca = FlopCountAnalysis(model, x)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    ours: dict[str, int] = {}
    for row in result.rows:
        if row.flops:
            op = torch_layer(row).fvcore_op(row) or f"({row.type})"
            ours[op] = ours.get(op, 0) + row.flops
    assert result.totals.flops == fca.total()
    assert ours == {k: v for k, v in fca.by_operator().items() if v}
    assert result.totals.params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert result.output.as_list() == list(model(x).shape[1:])
    return doc


class MLPBlock(nn.Sequential):  # torchvision.models.vision_transformer.MLPBlock
    def __init__(self, d, mlp):
        super().__init__(nn.Linear(d, mlp), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp, d),
                         nn.Dropout(0.0))


class EncoderBlock(nn.Module):  # torchvision.models.vision_transformer.EncoderBlock
    def __init__(self, heads, d, mlp, need_weights=False):
        super().__init__()
        self.need_weights = need_weights
        self.ln_1 = nn.LayerNorm(d, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(d, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = MLPBlock(d, mlp)

    def forward(self, input):
        torch._assert(input.dim() == 3, "Expected (batch_size, seq_length, hidden_dim)")
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=self.need_weights)
        x = self.dropout(x)
        x = x + input
        y = self.ln_2(x)
        y = self.mlp(y)
        return x + y


class Encoder(nn.Module):  # torchvision.models.vision_transformer.Encoder
    def __init__(self, seq, layers, heads, d, mlp, **block):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq, d).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(*[EncoderBlock(heads, d, mlp, **block)
                                      for _ in range(layers)])
        self.ln = nn.LayerNorm(d, eps=1e-6)

    def forward(self, input):
        input = input + self.pos_embedding
        return self.ln(self.layers(self.dropout(input)))


class VisionTransformer(nn.Module):  # torchvision.models.vision_transformer.VisionTransformer
    def __init__(self, image=32, patch=8, layers=2, heads=4, d=32, mlp=64, classes=10,
                 transpose=False, **block):
        super().__init__()
        self.image_size, self.patch_size, self.hidden_dim = image, patch, d
        self.transpose = transpose  # timm's flatten(2).transpose(1, 2) instead
        self.conv_proj = nn.Conv2d(3, d, kernel_size=patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d))
        self.encoder = Encoder((image // patch) ** 2 + 1, layers, heads, d, mlp, **block)
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(d, classes))

    def _process_input(self, x):
        n, c, h, w = x.shape
        p = self.patch_size
        torch._assert(h == self.image_size, "Wrong image height!")
        n_h, n_w = h // p, w // p
        x = self.conv_proj(x)
        if self.transpose:
            return x.flatten(2).transpose(1, 2)
        x = x.reshape(n, self.hidden_dim, n_h * n_w)
        return x.permute(0, 2, 1)

    def forward(self, x):
        x = self._process_input(x)
        n = x.shape[0]
        batch_class_token = self.class_token.expand(n, -1, -1)
        x = torch.cat([batch_class_token, x], dim=1)
        x = self.encoder(x)
        x = x[:, 0]
        return self.heads(x)


@pytest.mark.parametrize("transpose", [False, True])
def test_vit_encoder_with_multihead_attention(transpose):
    doc = check_tokens(VisionTransformer(transpose=transpose))
    top = [(x["name"], x["type"]) for x in doc["layers"]]
    assert top[:4] == [("conv_proj", "conv"), ("flatten" if transpose else "reshape", "tokens"),
                       ("transpose" if transpose else "permute", "permute"),
                       ("class_token", "class_token")]
    assert top[-2:] == [("getitem", "select_token"), ("heads", "sequential")]
    encoder = doc["layers"][4]["layers"]
    assert encoder[0] == {"name": "pos_embedding", "type": "pos_embed"}
    attention = next(x for x in _layers(doc) if x["type"] == "attention")
    assert attention == {"name": "self_attention", "type": "attention", "heads": 4,
                         "qkv_bias": True, "proj_bias": True, "impl": "sdpa"}
    assert encoder[2]["type"] == "repeat" and encoder[2]["n"] == 2


def test_vit_linear_flops_by_hand():
    """17 tokens of 32, 2 blocks: qkv 17·32·96, proj 17·32·32, MLP 2·17·32·64; head 32·10.
    fvcore counts no attention product (aten::scaled_dot_product_attention)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis
    model = VisionTransformer().eval()
    fca = FlopCountAnalysis(model, torch.randn(1, 3, 32, 32))
    fca.unsupported_ops_warnings(False)
    assert fca.by_operator()["linear"] == \
        2 * (17 * 32 * 96 + 17 * 32 * 32 + 2 * 17 * 32 * 64) + 32 * 10


def test_multihead_attention_returning_weights_is_refused_by_path():
    with pytest.raises(CostModelError, match="need_weights=False") as e:
        import_module(VisionTransformer(need_weights=True).eval(), (32, 32), name="m")
    assert e.value.path == "encoder.layers.0.self_attention"


class BufferToken(VisionTransformer):  # a class "token" that is a buffer: no parameter
    def __init__(self):
        super().__init__()
        del self.class_token
        self.register_buffer("token", torch.zeros(1, 1, 32))

    def forward(self, x):
        x = torch.cat([self.token, self._process_input(x)], dim=1)
        return self.heads(self.encoder(x)[:, 0])


def test_a_cat_with_a_buffer_is_no_class_token():
    with pytest.raises(CostModelError, match="torch.cat"):
        import_module(BufferToken().eval(), (32, 32), name="m")


def _patch_merging_pad(x):  # torchvision.models.swin_transformer._patch_merging_pad
    h, w = x.shape[-3:-1]
    x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :],
                      x[..., 1::2, 1::2, :]], -1)


_patch_merging_pad.__module__ = "torchvision.models.swin_transformer"
torch.fx.wrap("_patch_merging_pad")


class ShiftedWindowAttention(nn.Module):  # torchvision's, read by its qualified name
    def __init__(self, dim, window, shift, heads):
        from costmodel.crosscheck.attention import Attend

        super().__init__()
        self.window_size, self.shift_size, self.num_heads = [window] * 2, [shift] * 2, heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attend = Attend(heads, window, shift, relative_bias=True, impl="matmul")

    def forward(self, x):
        return self.proj(self.attend(self.qkv(x)))


ShiftedWindowAttention.__module__ = "torchvision.models.swin_transformer"


class SwinBlock(nn.Module):  # torchvision.models.swin_transformer.SwinTransformerBlock
    def __init__(self, dim, heads, window, shift):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftedWindowAttention(dim, window, shift, heads)
        self.stochastic_depth = StochasticDepth(0.1)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, 4 * dim)

    def forward(self, x):
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):  # torchvision.models.swin_transformer.PatchMerging
    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        return self.reduction(self.norm(_patch_merging_pad(x)))


def test_swin_window_attention_and_patch_merging():
    model = nn.Sequential(
        nn.Conv2d(3, 16, 4, 4), TorchvisionPermute([0, 2, 3, 1]), nn.LayerNorm(16),
        SwinBlock(16, 2, 4, 0), SwinBlock(16, 2, 4, 2), PatchMerging(16), nn.LayerNorm(32),
        TorchvisionPermute([0, 3, 1, 2]), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 10))
    doc = check_tokens(model)
    attention = [x for x in _layers(doc) if x["type"] == "attention"]
    assert [(a["window"], a["shift"], a["impl"], a["relative_position_bias"])
            for a in attention] == [(4, 0, "matmul", True), (4, 2, "matmul", True)]
    assert "patch_merge" in _types(doc)


class RelativePositionalMultiHeadAttention(nn.Module):  # torchvision.models.maxvit's (names)
    def __init__(self, dim, heads, window, partition):
        from costmodel.crosscheck.attention import Attend

        super().__init__()
        self.n_heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.merge = nn.Linear(dim, dim)
        self.attend = Attend(heads, window, 0, relative_bias=True, impl="einsum",
                             partition=partition)

    def forward(self, x):
        return self.merge(self.attend(self.to_qkv(x)))


class PartitionAttentionLayer(nn.Module):  # torchvision.models.maxvit's, read by name
    """As torchvision's on an N×C×H×W map, but on the map channels-last (the same counts)."""

    def __init__(self, dim, heads, window, partition, grid):
        super().__init__()
        self.partition_type = partition
        self.p, self.g = (window, grid // window) if partition == "window" else \
            (grid // window, window)
        self.attn_layer = nn.Sequential(
            nn.LayerNorm(dim), RelativePositionalMultiHeadAttention(dim, heads, window,
                                                                    partition),
            nn.Dropout(0.0))
        self.mlp_layer = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(),
                                       nn.Linear(4 * dim, dim), nn.Dropout(0.0))

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = x + self.attn_layer(x)
        x = x + self.mlp_layer(x)
        return x.permute(0, 3, 1, 2)


PartitionAttentionLayer.__module__ = "torchvision.models.maxvit"


def test_maxvit_partition_attention_layers():
    model = nn.Sequential(conv_bn(3, 16, 3, 2), PartitionAttentionLayer(16, 2, 4, "window", 16),
                          PartitionAttentionLayer(16, 2, 4, "grid", 16),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    doc = check_tokens(model)
    attention = [x for x in _layers(doc) if x["type"] == "attention"]
    assert [(a["window"], a["partition"], a["impl"]) for a in attention] == \
        [(4, "window", "einsum"), (4, "grid", "einsum")]
