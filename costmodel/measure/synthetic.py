"""Random networks for calibrating the latency model in context (``costmodel calibrate``'s
default method): built from the spec vocabulary at realistic widths and map sizes, never a zoo
model, so that every zoo model stays held out for ``benchmarks/bench_latency.py``.

Single layers timed alone run 1.5–1.7× faster than inside a network (their weights and input
stay in cache from the previous run, and no module dispatch sits between them), so calibration
times layers where they belong: inside these networks, per layer by bench's hooked passes and
as a whole in plain passes (``costmodel.measure.calibrate.measure_networks``).

Three families (``synthetic_network``): classifiers of the zoo's shape (most), dense networks on
large maps (segmentation's 256×512 to 512×1024 inputs at stride 2 to 8 and transposed-conv
decoders, where tensors of many MiB are allocated fresh on every pass), and transformers
(patches, tokens, global or windowed attention, MLPs). No torch here: specs only.
"""

from __future__ import annotations

_ACTS = ("relu", "relu", "relu6", "hswish", "swish", "leaky_relu", "prelu")


def _cba(out: int, k: int = 3, s: int = 1, g: int = 1, act: str | None = "relu") -> list[dict]:
    """conv → bn → activation."""
    conv: dict = {"type": "conv", "out": out, "kernel": k, "stride": s}
    if g > 1:
        conv["groups"] = g
    return [conv, {"type": "bn"}] + ([{"type": act}] if act else [])


def _block(rng, c: int, out: int, s: int, act: str) -> tuple[list[dict], int]:
    """One random block of the zoo's kinds (plain, grouped, depthwise-separable, inverted
    residual ± SE, bottleneck, basic, shuffle unit, inception, ESP, fire) on c channels:
    (layers, out channels)."""
    kind = rng.choice(["plain", "dwsep", "ir", "bottleneck", "shuffle", "fire", "grouped",
                       "basic", "inception", "esp"])
    if s == 2 and kind in ("ir", "bottleneck", "shuffle", "basic", "inception", "esp"):
        kind = rng.choice(["plain", "dwsep", "grouped"])
    if kind == "grouped" and (c % 8 or out % 8):
        kind = "plain"
    if kind == "shuffle" and c % 4:
        kind = "plain"
    if kind == "plain":
        return _cba(out, rng.choice((1, 3, 3, 5)), s, act=act), out
    if kind == "grouped":  # ResNeXt's 3×3, or ShuffleNet's 1×1 group convs around a shuffle
        g = rng.choice((2, 4, 8))
        if s == 2 or rng.random() < 0.5:
            return _cba(out, 3, s, g, act), out
        return (_cba(out, 1, 1, g, act) + [{"type": "channel_shuffle", "groups": g}]
                + _cba(out, 1, 1, g, None)), out
    if kind == "dwsep":
        return ([{"type": "dwconv", "kernel": rng.choice((3, 3, 5, 7)), "stride": s},
                 {"type": "bn"}, {"type": act}] + _cba(out, 1, act=act)), out
    if kind == "ir":
        inner = _cba(c * rng.choice((1, 3, 4, 6)), 1, act=act) + [
            {"type": "dwconv", "kernel": rng.choice((3, 5))}, {"type": "bn"}, {"type": act}]
        if rng.random() < 0.5:
            inner.append({"type": "se", "ratio": 0.25})
        return [{"type": "residual", "layers": inner + _cba(c, 1, act=None)}], c
    if kind == "bottleneck":
        m = max(8, c // 4)
        g = rng.choice((1, 1, 4)) if m % 4 == 0 else 1
        inner = _cba(m, 1) + _cba(m, 3, g=g) + _cba(c, 1, act=None)
        return [{"type": "residual", "layers": inner}, {"type": "relu"}], c
    if kind == "basic":
        return [{"type": "residual", "layers": _cba(c, 3) + _cba(c, 3, act=None)},
                {"type": "relu"}], c
    if kind == "shuffle":
        h = c // 2
        right = _cba(h, 1) + [{"type": "dwconv", "kernel": 3}, {"type": "bn"}] + _cba(h, 1)
        return [{"type": "parallel", "split": "half", "branches": [[], right],
                 "merge": "concat"}, {"type": "channel_shuffle", "groups": 2}], c
    if kind == "inception":  # GoogLeNet's: 1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 max pool → 1×1
        b = max(8, out // 32 * 8)
        branches = [_cba(b, 1, act=act), _cba(b // 2, 1, act=act) + _cba(b, 3, act=act),
                    _cba(b // 4, 1, act=act) + _cba(b // 2, 5, act=act),
                    [{"type": "max_pool", "kernel": 3, "stride": 1, "padding": 1}]
                    + _cba(b // 2, 1, act=act)]
        return [{"type": "parallel", "merge": "concat", "branches": branches}], 3 * b
    if kind == "esp":  # ESPNet's: a 1×1 reduction, dilated 3×3s side by side, concatenated
        k = rng.choice((3, 4, 5))
        n = max(4, out // k)
        branches = [[{"type": "conv", "out": n, "kernel": 3, "dilation": d}]
                    for d in (1, 2, 4, 8, 16)[:k]]
        return ([{"type": "conv", "out": n, "kernel": 1},
                 {"type": "parallel", "merge": "concat", "branches": branches},
                 {"type": "bn"}, {"type": act}]), n * k
    e = max(8, out // 2)  # fire: squeeze, then 1×1 and 3×3 expands concatenated
    return ([{"type": "conv", "out": max(8, c // 8), "kernel": 1}, {"type": "relu"},
             {"type": "parallel", "merge": "concat", "branches": [
                 [{"type": "conv", "out": e, "kernel": 1}, {"type": "relu"}],
                 [{"type": "conv", "out": e, "kernel": 3}, {"type": "relu"}]]}]), 2 * e


def synthetic_network(rng) -> tuple[list[dict], int | tuple[int, int]]:
    """A random network (spec layers, input side or H×W): a classifier (65%), a dense network
    on a large map (20%) or a transformer (15%)."""
    family = rng.random()
    if family < 0.2:
        return _dense_network(rng)
    if family < 0.35:
        return _transformer(rng)
    return _classifier(rng)


def _dense_network(rng) -> tuple[list[dict], tuple[int, int]]:
    """A segmentation network (ESPNet's shape): a 256×512 to 512×1024 input, narrow stages down
    to stride 4 or 8, a 1×1 classifier at every position, then (mostly) transposed convs or an
    upsampling back towards the input's size."""
    h, w = rng.choice(((512, 1024), (384, 768), (256, 512), (512, 512)))
    act = rng.choice(("prelu", "prelu", "relu", "relu6"))
    c = rng.choice((12, 16, 24, 32))
    layers = _cba(c, 3, 2, act=act)
    for stage in range(rng.choice((1, 2))):
        out = min(256, int(c * rng.choice((2, 3, 4))) // 4 * 4)
        for i in range(rng.choice((1, 2, 3))):
            b, c = _block(rng, c, out if i == 0 else c, 2 if i == 0 else 1, act)
            layers += b
    classes = rng.choice((19, 20, 21))
    layers += [{"type": "conv", "out": classes, "kernel": 1}]
    up = rng.random()
    if up < 0.75:  # ESPNet's decoder: transposed convs back towards the input's size
        for _ in range(rng.choice((1, 2, 3))):
            layers.append({"type": "deconv", "out": classes, "kernel": rng.choice((2, 2, 4)),
                           "stride": 2, "padding": 0})
            if layers[-1]["kernel"] == 4:
                layers[-1]["padding"] = 1
            if rng.random() < 0.5:
                layers += [{"type": "bn"}, {"type": act}]
    elif up < 0.9:
        layers.append({"type": "upsample", "scale": 2,
                       "mode": rng.choice(("nearest", "bilinear"))})
    return layers, (h, w)


def _transformer(rng) -> tuple[list[dict], int]:
    """A vision transformer: a patch conv, tokens, then pre-norm blocks of attention (global
    with a class token, as ViT; or in 7×7 windows, as Swin) and an MLP, a pooled head."""
    side, patch = rng.choice(((224, 16), (224, 16), (224, 8), (224, 32), (32, 4)))
    grid = side // patch
    d = rng.choice((96, 128, 192, 256, 384, 512))
    heads = d // rng.choice((32, 64))
    windowed = grid % 7 == 0 and grid > 7 and rng.random() < 0.5
    layers: list[dict] = [{"type": "conv", "out": d, "kernel": patch, "stride": patch,
                           "bias": True}]
    if windowed:
        layers += [{"type": "permute", "to": "channels_last"},
                   {"type": "layer_norm", "channels_last": True}]
    else:
        layers += [{"type": "tokens"}, {"type": "permute", "to": "channels_last"},
                   {"type": "class_token"}, {"type": "pos_embed"}]
    mlp = d * rng.choice((2, 4))
    for i in range(rng.choice((2, 3, 4, 6))):
        attn: dict = {"type": "attention", "heads": heads}
        if windowed:
            attn.update(window=7, shift=3 if i % 2 else 0, relative_position_bias=True,
                        impl="matmul")
        layers += [
            {"type": "residual", "layers": [{"type": "layer_norm", "channels_last": True},
                                            attn]},
            {"type": "residual", "layers": [
                {"type": "layer_norm", "channels_last": True},
                {"type": "linear", "out": mlp, "channels_last": True}, {"type": "gelu"},
                {"type": "linear", "out": d, "channels_last": True}]}]
    layers.append({"type": "layer_norm", "channels_last": True})
    if windowed:
        layers += [{"type": "permute", "to": "channels_first"}, {"type": "global_pool"},
                   {"type": "flatten"}]
    else:
        layers.append({"type": "select_token", "index": 0})
    layers.append({"type": "linear", "out": 1000})
    return layers, side


def _classifier(rng) -> tuple[list[dict], int]:
    """A classifier of the zoo's shape (spec layers, input side): a stem, stages halving
    the map down to 7×7 (or 4×4 from a 32×32 input) with random blocks and widths, a head
    (global pool and linear, sometimes a 1×1 conv before it, sometimes a wide FC stack)."""
    side = rng.choice((224, 224, 224, 160, 192, 32, 32, 320))
    act = rng.choice(_ACTS)
    c = rng.choice((8, 16, 16, 24, 32, 48, 64))
    layers = _cba(c, rng.choice((3, 3, 7)), 1 if side == 32 else 2, act=act)
    s = side if side == 32 else side // 2
    if side > 32 and rng.random() < 0.6:
        layers.append({"type": rng.choice(("max_pool", "avg_pool")), "kernel": 3, "stride": 2,
                       "padding": 1})
        s = -(-s // 2)
    while s > 7:
        out = min(2048, int(c * rng.choice((1.5, 2, 2, 3))) // 8 * 8)
        for i in range(rng.choice((1, 2, 3, 4))):
            b, c = _block(rng, c, out if i == 0 else c, 2 if i == 0 else 1, act)
            layers += b
        s = -(-s // 2)
    if rng.random() < 0.5:
        c = rng.choice((512, 1024, 1280))
        layers += _cba(c, 1, act=act)
    if rng.random() < 0.15 and c * s * s <= 16384:  # alexnet/vgg-like head: wide FC layers
        layers += [{"type": "flatten"}, {"type": "linear", "out": 4096}, {"type": "relu"},
                   {"type": "linear", "out": 4096}, {"type": "relu"}]
    else:
        layers += [{"type": "global_pool"}, {"type": "flatten"}]
    layers.append({"type": "linear", "out": 1000})
    return layers, side


MAX_SYNTHETIC_FLOPS = 3e9
"""A synthetic network over this many FLOPs is drawn again (calibration time stays short)."""


def synthetic_results(n: int, seed: int = 0, options=None) -> list:
    """``n`` evaluated synthetic networks (deterministic for a seed)."""
    import random

    from costmodel.engine import evaluate
    from costmodel.options import Options
    from costmodel.spec.loader import layers_spec

    rng = random.Random(seed)
    out = []
    while len(out) < n:
        layers, side = synthetic_network(rng)
        result = evaluate(layers_spec(layers, input=side, name=f"synthetic{len(out)}"),
                          options=options or Options())
        if result.totals.flops <= MAX_SYNTHETIC_FLOPS:
            out.append(result)
    return out
