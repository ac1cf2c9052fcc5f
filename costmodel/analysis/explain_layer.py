"""The closed-form derivation of one layer or block of an evaluated model (``explain MODEL
--layer PATH``): the formulas of ``costmodel.analysis.explain`` with the layer's own sizes,
each step checked against the engine's rows for it. Which layer classes have a derivation is
the table ``LAYER_DERIVATIONS``, keyed by class."""

from __future__ import annotations

from typing import Any, Callable

from fractions import Fraction

from costmodel.analysis._tree import find_node, node_input, node_output, node_type, rows_of
from costmodel.analysis.explain import (Derivation, Step, _area, _flops, _num, _sq, _weights,
                                        conv_steps, dwsep_steps, effnet_pool_steps, engine_run,
                                        mac_steps, shufflenet_steps)
from costmodel.engine import Branch, Dag, Node, Result, Row, Seq
from costmodel.errors import CostModelError
from costmodel.layers import LayerSpec
from costmodel.layers.conv import Conv, DepthwiseConv
from costmodel.layers.effnet import EffNetBlock
from costmodel.layers.linear import Linear
from costmodel.layers.mobilenet import DepthwiseSeparable
from costmodel.layers.shufflenet import ShuffleUnit
from costmodel.layers.traits import tags
from costmodel.shape import pair


def _parts(node: Seq) -> dict[str, Row]:
    """The rows of a block's parts, by the roles its class names (``Block.parts``)."""
    by_name = {r.path.rsplit(".", 1)[-1]: r for r in rows_of(node)}
    return {role: by_name[name] for role, name in node.layer.parts.items()}


def _conv_row(row: Row) -> list[Step]:
    layer = row.layer
    x, y = row.inputs[0], row.out
    kh, kw = pair(layer.kernel)
    g = layer.groups
    steps = conv_steps(kh, x.c, y.c, y.h, g, kh=kh, kw=kw, ho=y.h, wo=y.w, bias=layer.bias,
                       engine_rows=[row])
    bias = y.c if layer.bias else 0
    weights = kh * kw * (x.c // g) * y.c
    steps.append(Step("MAC", "M·H·W + N·Ho·Wo + weights" + (" + bias" if bias else ""),
                      f"{x.c}·{_area(x.h, x.w)} + {y.c}·{_area(y.h, y.w)} + {weights:,}"
                      + (f" + {bias}" if bias else ""),
                      x.numel + y.numel + weights + bias, row.mac, "MAC"))
    if g > 1:
        same = layer.model_dump(mode="json", exclude_unset=True, exclude={"name"})
        same.update(type="conv", out=y.c, groups=1, channel_scaling="fixed")
        dense = engine_run([same], x.c, x.h, x.w).rows  # the same conv with one group
        steps.append(Step("grouped / dense", "1/g", f"1/{g}", Fraction(1, g),
                          Fraction(row.flops, _flops(dense)), "ratio"))
    if (kh, kw) == (1, 1) and (x.h, x.w) == (y.h, y.w) and not bias:
        dense_mac = None
        if g > 1:
            (d,) = engine_run([{"type": "conv", "out": y.c // g, "kernel": 1}], x.c, x.h,
                              x.w).rows
            dense_mac = d.mac
        steps += [s for s in mac_steps(x.c, y.c, x.h, x.w, g, row.flops, row.mac, dense_mac)
                  if s.quantity != "MAC" and s.quantity != "FLOPs B"]
    return steps


def _dw_row(row: Row) -> list[Step]:
    x, y = row.inputs[0], row.out
    kh, kw = pair(row.layer.kernel)
    mult = y.c // x.c
    ksym, kval = ("Dk²", _sq(kh)) if kh == kw else ("Kh·Kw", f"{kh}·{kw}")
    dsym = "Df²" if y.h == y.w else "Ho·Wo"
    msym = "M" if mult == 1 else "M·d"
    mval = f"{x.c}" if mult == 1 else f"{x.c}·{mult}"
    flops = kh * kw * y.c * y.h * y.w
    return [Step("depthwise FLOPs", f"{ksym}·{msym}·{dsym}", f"{kval}·{mval}·{_area(y.h, y.w)}",
                 flops, row.flops),
            Step("depthwise params", f"{ksym}·{msym}", f"{kval}·{mval}", kh * kw * y.c,
                 _weights([row]), "params"),
            Step("MAC", "M·H·W + N·Ho·Wo + weights",
                 f"{x.c}·{_area(x.h, x.w)} + {y.c}·{_area(y.h, y.w)} + {kh * kw * y.c}",
                 x.numel + y.numel + kh * kw * y.c, row.mac, "MAC")]


def _linear_row(row: Row) -> list[Step]:
    m, n = row.inputs[0].c, row.out.c
    bias = n if row.params > m * n else 0
    x = row.inputs[0]
    if not x.flat and x.hw > 1:  # channels-last: the same product at each of the H·W positions
        return [Step("FC FLOPs", "M·N·H·W", f"{m}·{n}·{x.h}·{x.w}", m * n * x.hw, row.flops),
                Step("FC params", "M·N + N" if bias else "M·N",
                     f"{m}·{n}" + (f" + {n}" if bias else ""), m * n + bias, row.params,
                     "params")]
    return [Step("FC FLOPs", "M·N", f"{m}·{n}", m * n, row.flops),
            Step("FC params", "M·N + N" if bias else "M·N", f"{m}·{n}" + (f" + {n}" if bias
                                                                           else ""),
                 m * n + bias, row.params, "params")]


def _dwsep_node(node: Seq) -> list[Step]:
    rows = list(rows_of(node))
    x, y = node_input(node), node_output(node)
    layer = node.layer
    conv = engine_run([{"type": "conv", "out": y.c, "kernel": layer.kernel,
                        "stride": layer.stride}], x.c, x.h, x.w).rows
    return dwsep_steps(layer.kernel, x.c, y.c, y.h, y.w, rows, conv)


def _shufflenet_node(node: Seq) -> list[Step]:
    layer = node.layer
    rows = list(rows_of(node))
    x, y = node_input(node), node_output(node)
    part = _parts(node)
    m = part["pw1"].out.c
    g = layer.groups
    if layer.stride == 1 and layer.group_first_pw and layer.kernel == 3:
        resnet = engine_run([{"type": "residual", "layers": [
            {"type": "conv", "out": m, "kernel": 1}, {"type": "conv", "out": m, "kernel": 3},
            {"type": "conv", "out": x.c, "kernel": 1}]}], x.c, x.h, x.w).rows
        resnext = engine_run([{"type": "residual", "layers": [
            {"type": "conv", "out": m, "kernel": 1},
            {"type": "conv", "out": m, "kernel": 3, "groups": g},
            {"type": "conv", "out": x.c, "kernel": 1}]}], x.c, x.h, x.w).rows
        return shufflenet_steps(x.c, m, g, x.h, x.w, _flops(rows), _flops(resnet),
                                _flops(resnext))
    # stride 2 (or a dense first 1×1): the paper's terms one by one
    g1 = g if layer.group_first_pw else 1
    k = layer.kernel
    main_out = part["pw2"].out.c
    ho, wo = y.h, y.w
    t1 = Fraction(x.h * x.w * x.c * m, g1)
    t2 = k * k * m * ho * wo
    t3 = Fraction(ho * wo * m * main_out, g)
    g1s = "" if g1 == 1 else "/g"
    return [
        Step("1×1 (group) conv FLOPs", f"hw·c·m{g1s}",
             f"{_area(x.h, x.w)}·{x.c}·{m}" + (f"/{g1}" if g1 > 1 else ""), t1,
             part["pw1"].flops),
        Step("depthwise FLOPs", "Dk²·m·Ho·Wo" if layer.stride > 1 else "Dk²·m·hw",
             f"{_sq(k)}·{m}·{_area(ho, wo)}", t2, part["dw"].flops),
        Step("1×1 group conv FLOPs", "Ho·Wo·m·c_main/g",
             f"{_area(ho, wo)}·{m}·{main_out}/{g}", t3, part["pw2"].flops),
        Step("unit FLOPs", "sum of the three", f"{_num(t1)} + {t2:,} + {_num(t3)}", t1 + t2 + t3,
             _flops(rows)),
    ]


def _effnet_node(node: Seq) -> list[Step]:
    rows = list(rows_of(node))
    x, y = node_input(node), node_output(node)
    pw, dw1, dw2, conv = (_parts(node)[k] for k in ("pw", "dw1", "dw2", "conv"))
    mid, dm = pw.out.c, dw1.out.c // pw.out.c
    h, w = x.h, x.w
    steps = [Step("1×1 bottleneck FLOPs", "H·W·C·M", f"{_area(h, w)}·{x.c}·{mid}",
                  h * w * x.c * mid, pw.flops)]
    if dm == 1:
        dw3 = engine_run([{"type": "dwconv", "kernel": 3}], mid, h, w).rows
        steps += effnet_pool_steps(mid, h, w, dw1.flops, dw2.flops, _flops(dw3))
    else:
        steps += [Step("dw 1×3 FLOPs", "3·H·W·M·d", f"3·{_area(h, w)}·{mid}·{dm}",
                       3 * h * w * mid * dm, dw1.flops),
                  Step("dw 3×1 FLOPs", "3·⌊H/2⌋·W·M·d", f"3·{h // 2}·{w}·{mid}·{dm}",
                       3 * (h // 2) * w * mid * dm, dw2.flops)]
    ci = dw2.out.c
    steps += [
        Step("2×1 conv, stride (1,2), FLOPs", "2·M·N·Ho·Wo", f"2·{ci}·{y.c}·{_area(y.h, y.w)}",
             2 * ci * y.c * y.h * y.w, conv.flops),
    ]
    terms = [h * w * x.c * mid, 3 * h * w * mid * dm, 3 * (h // 2) * w * mid * dm,
             2 * ci * y.c * y.h * y.w]
    steps.append(Step("block FLOPs", "1×1 + dw 1×3 + dw 3×1 + 2×1 conv",
                      " + ".join(f"{t:,}" for t in terms), sum(terms), _flops(rows)))
    return steps


LAYER_DERIVATIONS: dict[type[LayerSpec], tuple[str, Callable[[Any], list[Step]]]] = {
    Conv: ("convolution", lambda n: _dw_row(n) if n.category == "depthwise" else _conv_row(n)),
    DepthwiseConv: ("depthwise convolution", _dw_row),
    Linear: ("fully connected layer", _linear_row),
    DepthwiseSeparable: ("MobileNet depthwise separable block", _dwsep_node),
    ShuffleUnit: ("ShuffleNet V1 unit", _shufflenet_node),
    EffNetBlock: ("EffNet block", _effnet_node),
}
"""Layer class → (what it is, its derivation from its row or its block's node)."""


def _derivation(node: Node) -> tuple[str, Callable[[Any], list[Step]]] | None:
    return LAYER_DERIVATIONS.get(type(node.layer))


def _derivable(node: Node) -> list[str]:
    found = []

    def walk(n: Node):
        if _derivation(n) is not None:
            found.append(n.path)
            return
        if isinstance(n, Seq):
            for c in n.children:
                walk(c)
        elif isinstance(n, (Branch, Dag)):
            for s in n.branches:
                walk(s)

    walk(node)
    return found


def explain_layer(result: Result, path: str) -> Derivation:
    """The derivation for the layer or block at ``path`` of an evaluated model, each step
    checked against the engine's rows for it."""
    node = find_node(result, path)
    entry = _derivation(node)
    if entry is None:
        inside = _derivable(node) if not isinstance(node, Row) else []
        hint = (f"; inside it: {', '.join(inside[:6])}" + (" …" if len(inside) > 6 else "")) \
            if inside else ""
        covered = ", ".join(tags(cls)[0] for cls in LAYER_DERIVATIONS)
        raise CostModelError(f"no closed-form derivation for a '{node_type(node)}' layer "
                             f"(explain covers {covered}){hint}", path=node.path, field="layer")
    what, fn = entry
    x, y = node_input(node), node_output(node)
    h, w = result.input
    symbols = {"input": str(x), "output": str(y)}
    return Derivation(f"{result.model} · {node.path}: {what}",
                      f"{result.model} {node.path}", symbols, fn(node),
                      [f"model input {result.in_channels}×{h}×{w}; shapes C×H×W"])
