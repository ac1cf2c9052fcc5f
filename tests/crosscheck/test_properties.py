"""Random valid configurations: analytic FLOPs and params = fvcore's, analytic shapes = torch's,
layer by layer (verify's zero-tolerance check on the built module)."""

from __future__ import annotations

import os

from conftest import verify_layers
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from costmodel.errors import ShapeError

SETTINGS = settings(max_examples=int(os.environ.get("COSTMODEL_PROPERTY_EXAMPLES", 30)),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
"""Each example builds, traces and runs a torch module (~0.05 s); 30 per property keeps the file
near ten seconds on 2 cores. COSTMODEL_PROPERTY_EXAMPLES=1000 searches harder."""

side = st.integers(1, 14)
size2 = lambda lo, hi: st.one_of(st.integers(lo, hi),  # noqa: E731
                                 st.lists(st.integers(lo, hi), min_size=2, max_size=2))
"""An int or a per-axis [h, w] pair: kernels 1×k and k×1 included."""
padding = st.one_of(st.none(), st.just("same"), st.just("valid"), size2(0, 3))
activation = st.sampled_from(["relu", "relu6", "leaky_relu", "hswish", "hsigmoid", "swish",
                              "silu", "sigmoid", "tanh"])


def check(layers: list[dict], c_in: int, hw: tuple[int, int]) -> None:
    """Verify, discarding configurations whose shapes do not fit (a side below 1, ...)."""
    try:
        v = verify_layers(layers, input=hw, in_channels=c_in)
    except ShapeError:
        assume(False)
    assert v.differing == [], v.differing
    assert v.ok, (v.ops, v.flops, v.fvcore_flops, v.madds_x2, v.flop_counter)


@st.composite
def conv(draw):
    c_in = draw(st.integers(1, 8))
    groups = draw(st.sampled_from([g for g in range(1, c_in + 1) if c_in % g == 0]))
    layer = {"type": "conv", "out": groups * draw(st.integers(1, 3)), "groups": groups,
             "kernel": draw(size2(1, 5)), "stride": draw(size2(1, 3)),
             "dilation": draw(size2(1, 3)), "padding": draw(padding), "bias": draw(st.booleans())}
    return [{k: v for k, v in layer.items() if v is not None}], c_in


@st.composite
def dwconv(draw):
    layer = {"type": "dwconv", "kernel": draw(size2(1, 5)), "stride": draw(size2(1, 3)),
             "dilation": draw(size2(1, 2)), "padding": draw(padding),
             "multiplier": draw(st.integers(1, 3)), "bias": draw(st.booleans())}
    return [{k: v for k, v in layer.items() if v is not None}], draw(st.integers(1, 6))


@st.composite
def deconv(draw):
    c_in = draw(st.integers(1, 8))
    groups = draw(st.sampled_from([g for g in range(1, c_in + 1) if c_in % g == 0]))
    stride, dilation = [draw(st.integers(1, 3)) for _ in "hw"], [draw(st.integers(1, 2))
                                                                 for _ in "hw"]
    layer = {"type": "deconv", "out": groups * draw(st.integers(1, 3)), "groups": groups,
             "kernel": draw(size2(1, 4)), "stride": stride, "dilation": dilation,
             "padding": draw(size2(0, 2)), "bias": draw(st.booleans()),
             # torch: output padding below the stride or the dilation, per axis
             "output_padding": [draw(st.integers(0, max(s, d) - 1))
                                for s, d in zip(stride, dilation)]}
    return [layer], c_in


@st.composite
def pool(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kernel = kh if kh == kw and draw(st.booleans()) else [kh, kw]
    layer = {"type": draw(st.sampled_from(["max_pool", "avg_pool"])), "kernel": kernel,
             # torch allows padding up to half the window
             "padding": [draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))],
             "ceil_mode": draw(st.booleans())}
    stride = draw(st.one_of(st.none(), size2(1, 3)))
    if stride is not None:
        layer["stride"] = stride
    return [layer], draw(st.integers(1, 4))


@st.composite
def head(draw):
    """Pooling or flattening into vectors, then linear layers, batch norm and activations."""
    layers = [{"type": "global_pool", "mode": draw(st.sampled_from(["avg", "max"]))}] \
        if draw(st.booleans()) else []
    layers.append({"type": "flatten"})
    for _ in range(draw(st.integers(1, 3))):
        layers.append({"type": "linear", "out": draw(st.integers(1, 12)),
                       "bias": draw(st.booleans())})
        if draw(st.booleans()):
            layers.append({"type": "bn", "affine": draw(st.booleans())})
        if draw(st.booleans()):
            layers.append({"type": draw(activation)})
    return layers, draw(st.integers(1, 6))


@st.composite
def block(draw, c: int) -> dict:
    """One small block or structural node on ``c`` input channels (c even)."""
    kind = draw(st.sampled_from(["dwsep", "effnet", "shufflenet", "se", "residual", "split",
                                 "upsample", "shuffle", "bn_act"]))
    if kind == "dwsep":
        return {"type": "dwsep", "out": draw(st.integers(2, 12)),
                "kernel": draw(st.sampled_from([1, 3, 5])), "stride": draw(st.integers(1, 2)),
                "activation": draw(activation)}
    if kind == "effnet":
        return {"type": "effnet_block", "out": 2 * draw(st.integers(1, 6)),
                "bottleneck": draw(st.integers(1, 2)), "depth_multiplier": draw(st.integers(1, 2))}
    if kind == "shufflenet":
        g = draw(st.sampled_from([g for g in (1, 2) if c % g == 0]))
        if draw(st.booleans()):  # stride 1 adds its input: out = c, bottleneck c/4 in g groups
            return {"type": "shufflenet_unit", "out": c, "groups": g, "stride": 1}
        return {"type": "shufflenet_unit", "out": c + 4 * g * draw(st.integers(1, 3)),
                "groups": g, "stride": 2}
    if kind == "se":
        return {"type": "se", "ratio": draw(st.sampled_from([0.25, 0.5, 1.0])),
                "gate": draw(st.sampled_from(["sigmoid", "hsigmoid"]))}
    if kind == "residual":
        shortcut = [{"type": "conv", "out": c, "kernel": 1}] if draw(st.booleans()) else []
        return {"type": "residual", "shortcut": shortcut,
                "layers": [{"type": "conv", "out": c, "kernel": draw(size2(1, 3))},
                           {"type": "bn"}, {"type": draw(activation)}]}
    if kind == "split":
        return {"type": "parallel", "split": "half", "merge": "concat",
                "branches": [[], [{"type": "dwconv", "kernel": draw(size2(1, 3))},
                                  {"type": "conv", "out": draw(st.integers(1, 6)), "kernel": 1}]]}
    if kind == "upsample":
        return {"type": "upsample", "scale": draw(size2(1, 2)),
                "mode": draw(st.sampled_from(["nearest", "bilinear"]))}
    if kind == "shuffle":
        return {"type": "channel_shuffle", "groups": 2}
    return {"type": "bn", "affine": draw(st.booleans())}


@st.composite
def blocks(draw):
    """A stem conv to an even width, then one to three blocks (each on an even width: blocks
    that change it end in a conv, and a final conv restores evenness for the next)."""
    c = 2 * draw(st.integers(2, 6))
    layers = [{"type": "conv", "out": c, "kernel": 3}]
    for _ in range(draw(st.integers(1, 3))):
        layers.append(draw(block(c)))
        layers.append({"type": "conv", "out": c, "kernel": 1})
    return layers, 3


small = st.tuples(side, side)
roomy = st.tuples(st.integers(4, 16), st.integers(4, 16))  # blocks downsample up to 4×


@SETTINGS
@given(case=conv(), hw=small)
def test_conv(case, hw):
    check(*case, hw)


@SETTINGS
@given(case=dwconv(), hw=small)
def test_depthwise_conv(case, hw):
    check(*case, hw)


@SETTINGS
@given(case=deconv(), hw=small)
def test_transposed_conv(case, hw):
    check(*case, hw)


@SETTINGS
@given(case=pool(), hw=small)
def test_pooling(case, hw):
    check(*case, hw)


@SETTINGS
@given(case=head(), hw=small)
def test_linear_head(case, hw):
    check(*case, hw)


@SETTINGS
@given(case=blocks(), hw=roomy)
def test_blocks(case, hw):
    check(*case, hw)
