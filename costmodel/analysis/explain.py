"""Closed-form derivations, with numbers, checked against the engine.

Each derivation is a list of steps: a quantity, its formula as the paper writes it, the formula
with the sizes substituted, the exact value (integers and fractions, never floats, except for
ShuffleNet V2's square-root lower bound), and the engine's own count for the same thing. The
engine's count comes from evaluating the same layer through ``costmodel.engine`` — the
layer of a model (``explain_layer`` in ``explain_layer.py``), or a one-block spec with the given sizes
(``explain_formula``) — so ``match`` says that the paper's formula and the engine agree.

Formulas (``FORMULAS``):

- ``conv``: standard convolution, Dk²·M·N·Df² (MobileNet eq. 2); with ``g`` groups 1/g of it.
- ``group``: grouped convolution, Dk²·(M/g)·N·Df², 1/g of the dense conv.
- ``dwsep``: depthwise separable, Dk²·M·Df² + M·N·Df², 1/N + 1/Dk² of the standard conv
  (MobileNet eq. 5).

The papers write these for a Df×Df output as large as the input. Here Df is the input's side
and the output's side Do is its own step, computed with the textbook formula for the padding
chosen (``padding``: the engine's default (Dk−1)//2, ``same``, ``valid`` or a number) and the
stride, and checked against the engine's output shape: an even kernel with the default padding
loses a pixel, and the formulas then use Do, not Df. ``mobilenet`` assumes stride 1 and the
default padding.
- ``mobilenet``: MobileNet's Table 3 chain: standard conv → depthwise separable → width
  multiplier α → resolution multiplier ρ (cost ∝ α², ρ²).
- ``effnet``: EffNet's separable pooling, 1×3 dw → 2×1 pool → 3×1 dw = 3·Df²·M +
  3·(Df²/2)·M = 1.5·(3·Df²·M), against 9·Df²·M for a 3×3 dw conv.
- ``shufflenet``: the ShuffleNet V1 unit hw(2cm/g + 9m), against ResNet's hw(2cm + 9m²) and
  ResNeXt's hw(2cm + 9m²/g).
- ``mac``: ShuffleNet V2's memory access cost of a 1×1 conv, hw(c1+c2) + c1c2/g, its lower
  bound 2·√(hw·g·B) + B/hw for B = hw·c1·c2/g FLOPs (eq. 1 for g = 1) and, for g > 1, the MAC
  of the dense conv with the same FLOPs (G2, eq. 2).

FLOPs are multiply-adds (the papers' convention); params count conv weights only (no batch
norm) so that they compare with MobileNet's Table 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from costmodel.analysis._tree import WEIGHTED
from costmodel.engine import Result, evaluate_layers
from costmodel.errors import CostModelError
from costmodel.limits import INPUT_SIDE, INT_DIGITS
from costmodel.render import Column, Table
from costmodel.render.format import si

Number = int | Fraction | float


@dataclass(frozen=True)
class Step:
    """One line of a derivation. ``engine`` is the engine's count for the same quantity, or
    None where there is nothing to count (a bound, a paper's approximation)."""

    quantity: str
    formula: str
    substituted: str
    value: Number
    engine: Number | None = None
    unit: str = "mult-adds"

    @property
    def match(self) -> bool | None:
        if self.engine is None:
            return None
        return Fraction(self.value) == Fraction(self.engine) \
            if not isinstance(self.value, float) else math.isclose(self.value, self.engine)

    def record(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "formula": self.formula,
                "substituted": self.substituted, "value": _json_number(self.value),
                "exact": _exact(self.value), "engine": _json_number(self.engine),
                "unit": self.unit, "match": self.match}


@dataclass(frozen=True)
class Derivation:
    title: str
    subject: str
    symbols: dict[str, Any]
    steps: list[Step]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every step with an engine count agrees with it."""
        return all(s.match is not False for s in self.steps)

    def step(self, quantity: str) -> Step:
        return next(s for s in self.steps if s.quantity == quantity)

    def record(self) -> dict[str, Any]:
        return {"title": self.title, "subject": self.subject,
                "symbols": {k: _json_number(v) for k, v in self.symbols.items()},
                "steps": [s.record() for s in self.steps], "notes": self.notes, "ok": self.ok}


def _json_number(v):
    if v is None or isinstance(v, (int, float, str)):
        return v
    return v.numerator if v.denominator == 1 else float(v)


def _exact(v) -> str:
    if isinstance(v, Fraction):
        return str(v)
    return str(v) if isinstance(v, int) else repr(v)


# --- the engine on a one-block spec ----------------------------------------------------------

def engine_run(layers: list[dict], c: int, h: int, w: int | None = None, **model) -> Result:
    """Evaluate a throwaway spec of ``layers`` on a c×h×w input (paper scope)."""
    return evaluate_layers(layers, input=(h, w or h), in_channels=c, name="explain", **model)


def _flops(rows, *categories) -> int:
    return sum(r.flops for r in rows if not categories or r.category in categories)


def _weights(rows) -> int:
    return sum(r.params for r in rows if r.category in WEIGHTED)


def _num(v) -> str:
    """An exact number for a substituted formula: 1,234 or 7/3."""
    v = Fraction(v)
    return f"{v.numerator:,}" if v.denominator == 1 else str(v)


def _sq(v) -> str:
    return f"{v}²"


def _area(h: int, w: int) -> str:
    return _sq(h) if h == w else f"{h}·{w}"


# --- formulas ----------------------------------------------------------------------------------

def conv_steps(k: int, m: int, n: int, df: int, g: int = 1, *, kh: int | None = None,
               kw: int | None = None, ho: int | None = None, wo: int | None = None,
               bias: bool = False, engine_rows=None, side: str = "Df") -> list[Step]:
    """Standard (g = 1) or grouped conv: FLOPs, params (weights, + N with a bias); ``df`` (or
    ``ho``×``wo``) is the output map's side, written ``side`` in the formulas."""
    kh, kw = kh or k, kw or k
    ho, wo = ho or df, wo or df
    rows = engine_rows if engine_rows is not None else engine_run(
        [{"type": "conv", "out": n, "kernel": [kh, kw], "groups": g}], m, ho, wo).rows
    pointwise = (kh, kw) == (1, 1)
    ksym = "" if pointwise else ("Dk²·" if kh == kw else "Kh·Kw·")
    kval = "" if pointwise else (_sq(kh) + "·" if kh == kw else f"{kh}·{kw}·")
    dsym = f"{side}²" if ho == wo else "Ho·Wo"
    msym, mval = ("M", f"{m}") if g == 1 else ("(M/g)", f"({m}/{g})")
    flops = kh * kw * (m // g) * n * ho * wo
    weights = kh * kw * (m // g) * n
    name = ("1×1 conv" if pointwise else "standard conv") if g == 1 else \
        ("1×1 group conv" if pointwise else "grouped conv")
    return [Step(f"{name} FLOPs", f"{ksym}{msym}·N·{dsym}",
                 f"{kval}{mval}·{n}·{_area(ho, wo)}", flops, _flops(rows)),
            Step(f"{name} params", f"{ksym}{msym}·N" + (" + N" if bias else ""),
                 f"{kval}{mval}·{n}" + (f" + {n}" if bias else ""), weights + (n if bias else 0),
                 _weights(rows), "params")]


# --- the output's side, by the padding chosen ---------------------------------------------------

Padding = int | str | None
"""None: the engine's default, (Dk−1)//2 per side; 'same' (TensorFlow's); 'valid' (none); or
a number of pixels per side."""


def parse_padding(value: Padding) -> Padding:
    """``padding`` as the engine takes it: None, 'same', 'valid' or a whole number ≥ 0 (also
    given as text, as the command line does; 'default' is None)."""
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        if value is not None and value < 0:
            raise CostModelError(f"padding must be at least 0, got {value}", field="padding")
        return value
    text = str(value).strip().lower()
    if text in ("default", ""):
        return None
    if text in ("same", "valid"):
        return text
    if text.isdigit() and len(text) <= 9:
        return int(text)
    raise CostModelError(f"padding must be default, same, valid or a number of pixels, got "
                         f"{value!r}", field="padding")


def describe_padding(padding: Padding, k: int) -> str:
    if padding is None:
        return f"default, (Dk−1)//2 = {(k - 1) // 2} per side"
    if padding == "same":
        return "'same' (TensorFlow's: Do = ⌈Df/s⌉, an odd extra pixel after)"
    if padding == "valid":
        return "'valid' (none)"
    return f"{padding} per side"


def output_side(df: int, k: int, stride: int, padding: Padding) -> tuple[int, str, str]:
    """The output's side Do by the textbook formula for ``padding``, written out: (Do,
    formula, substituted). Computed here, not taken from the engine, so that the engine's
    output shape is checked against it."""
    if padding == "same":
        return -(-df // stride), "⌈Df/s⌉", f"⌈{df}/{stride}⌉"
    if padding == "valid":
        return (df - k) // stride + 1, "⌊(Df − Dk)/s⌋ + 1", f"⌊({df} − {k})/{stride}⌋ + 1"
    p = (k - 1) // 2 if padding is None else padding
    return ((df + 2 * p - k) // stride + 1, "⌊(Df + 2p − Dk)/s⌋ + 1",
            f"⌊({df} + 2·{p} − {k})/{stride}⌋ + 1")


def _side_step(df: int, k: int, stride: int, padding: Padding, engine: int) -> Step:
    do, formula, substituted = output_side(df, k, stride, padding)
    return Step("output side Do", formula, substituted, do, engine, "pixels")


def _checked_side(df: int, k: int, stride: int, padding: Padding) -> int:
    """Do, or an error when the kernel does not fit (before the engine says it less plainly)."""
    do = output_side(df, k, stride, padding)[0]
    if do < 1:
        raise CostModelError(f"a {k}×{k} kernel does not fit a {df}×{df} input with padding "
                             f"{describe_padding(padding, k)}: Do = {do}", field="df")
    return do


def _geometry(k: int, stride: int, padding: Padding) -> dict:
    """The engine's layer fields for the kernel, stride and padding."""
    return {"kernel": k, "stride": stride, **({} if padding is None else {"padding": padding})}


def _side_notes(df: int, do: int, stride: int, padding: Padding, k: int) -> list[str]:
    notes = [f"Df is the input's side, Do the output's: padding {describe_padding(padding, k)}, "
             f"stride {stride}"]
    if do != df:
        notes.append(f"Do = {do} ≠ Df = {df}: the formulas count the output's Do×Do positions "
                     "(the paper's Df² assumes an output as large as the input)")
    return notes


def derive_conv(k: int = 3, m: int = 512, n: int = 512, df: int = 14, g: int = 1,
                stride: int = 1, padding: Padding = None) -> Derivation:
    _positive(k=k, m=m, n=n, df=df, g=g, stride=stride)
    _divides(g, m=m, n=n)
    padding = parse_padding(padding)
    do = _checked_side(df, k, stride, padding)
    geometry = _geometry(k, stride, padding)
    rows = engine_run([{"type": "conv", "out": n, "groups": g, **geometry}], m, df).rows
    side = "Df" if do == df else "Do"
    steps = [_side_step(df, k, stride, padding, rows[0].out.h),
             *conv_steps(k, m, n, do, g, engine_rows=rows, side=side)]
    if g > 1:
        dense_rows = engine_run([{"type": "conv", "out": n, **geometry}], m, df).rows
        dense = conv_steps(k, m, n, do, 1, engine_rows=dense_rows, side=side)
        steps += dense
        steps.append(Step("grouped / dense", "1/g", f"1/{g}", Fraction(1, g),
                          Fraction(steps[1].engine, dense[0].engine), "ratio"))
    title = "Standard convolution (MobileNet eq. 2)" if g == 1 else \
        "Grouped convolution: 1/g of the dense conv's FLOPs and weights"
    return Derivation(title, "formula conv",
                      {"Dk": k, "M": m, "N": n, "Df": df, "g": g, "s": stride,
                       "padding": describe_padding(padding, k), "Do": do},
                      steps, _side_notes(df, do, stride, padding, k))


def derive_group(k: int = 3, m: int = 512, n: int = 512, df: int = 14, g: int = 4,
                 stride: int = 1, padding: Padding = None) -> Derivation:
    return derive_conv(k, m, n, df, g, stride, padding)


def dwsep_steps(k: int, m: int, n: int, ho: int, wo: int, rows, conv_rows,
                side: str = "Df") -> list[Step]:
    """Depthwise separable vs standard conv at the same sizes (Ho×Wo: the output map, written
    ``side`` in the formulas when square)."""
    dsym = f"{side}²" if ho == wo else "Ho·Wo"
    area = _area(ho, wo)
    dw = k * k * m * ho * wo
    pw = m * n * ho * wo
    std = k * k * m * n * ho * wo
    e_dw, e_pw = _flops(rows, "depthwise"), _flops(rows, "conv1x1")
    e_std = _flops(conv_rows)
    return [
        Step("depthwise FLOPs", f"Dk²·M·{dsym}", f"{_sq(k)}·{m}·{area}", dw, e_dw),
        Step("pointwise FLOPs", f"M·N·{dsym}", f"{m}·{n}·{area}", pw, e_pw),
        Step("depthwise separable FLOPs", f"Dk²·M·{dsym} + M·N·{dsym}",
             f"{dw:,} + {pw:,}", dw + pw, e_dw + e_pw),
        Step("depthwise separable params", "Dk²·M + M·N", f"{_sq(k)}·{m} + {m}·{n}",
             k * k * m + m * n, _weights(rows), "params"),
        Step("standard conv FLOPs", f"Dk²·M·N·{dsym}", f"{_sq(k)}·{m}·{n}·{area}", std, e_std),
        Step("separable / standard", "1/N + 1/Dk²", f"1/{n} + 1/{_sq(k)}",
             Fraction(1, n) + Fraction(1, k * k), Fraction(e_dw + e_pw, e_std), "ratio"),
    ]


def derive_dwsep(k: int = 3, m: int = 512, n: int = 512, df: int = 14, stride: int = 1,
                 padding: Padding = None) -> Derivation:
    _positive(k=k, m=m, n=n, df=df, stride=stride)
    padding = parse_padding(padding)
    do = _checked_side(df, k, stride, padding)
    geometry = _geometry(k, stride, padding)
    if padding is None:  # the engine's own block
        rows = engine_run([{"type": "dwsep", "out": n, **geometry}], m, df).rows
    else:  # the block has no padding field: its two convs
        rows = engine_run([{"type": "dwconv", **geometry},
                           {"type": "conv", "out": n, "kernel": 1}], m, df).rows
    conv_rows = engine_run([{"type": "conv", "out": n, **geometry}], m, df).rows
    dw = next(r for r in rows if r.category == "depthwise")
    side = "Df" if do == df else "Do"
    return Derivation("Depthwise separable convolution (MobileNet eqs. 3–5)", "formula dwsep",
                      {"Dk": k, "M": m, "N": n, "Df": df, "s": stride,
                       "padding": describe_padding(padding, k), "Do": do},
                      [_side_step(df, k, stride, padding, dw.out.h),
                       *dwsep_steps(k, m, n, do, do, rows, conv_rows, side)],
                      _side_notes(df, do, stride, padding, k))


def derive_mobilenet(k: int = 3, m: int = 512, n: int = 512, df: int = 14,
                     alpha: float = 0.75, rho: float = 0.714) -> Derivation:
    """MobileNet Table 3: 462M → 52.3M → 29.6M → 15.1M mult-adds at the defaults (stride 1,
    the engine's default padding; an even Dk makes the output Do = Df − 1)."""
    _positive(k=k, m=m, n=n, df=df, alpha=alpha, rho=rho)
    am, an = max(int(alpha * m), 1), max(int(alpha * n), 1)  # slim's int(d·α)
    _bounded_int(am, "alpha")
    _bounded_int(an, "alpha")
    rdf = round(rho * df)
    if rdf < 1:
        raise CostModelError(f"ρ·Df = {rho * df:g} rounds below 1", field="rho")
    INPUT_SIDE.check(rdf, field="rho")
    do, rdo = _checked_side(df, k, 1, None), _checked_side(rdf, k, 1, None)
    conv = engine_run([{"type": "conv", "out": n, "kernel": k}], m, df).rows
    sep = engine_run([{"type": "dwsep", "out": n, "kernel": k}], m, df).rows
    # α through the engine's own width multiplier (the input's channels come from the
    # previous layer, already α-scaled)
    rounding = {"rule": "truncate", "min": 1}
    sep_a = engine_run([{"type": "dwsep", "out": n, "kernel": k}], am, df, width=alpha,
                       rounding=rounding).rows
    sep_ar = engine_run([{"type": "dwsep", "out": n, "kernel": k}], am, rdf, width=alpha,
                        rounding=rounding).rows
    # the output's sides: Df and ρDf as the paper writes them when the padding keeps the size
    D, R = ("Df", "(ρDf)") if do == df else ("Do", "Do'")
    d2, r2 = _sq(do), _sq(rdo)
    std = k * k * m * n * do * do
    dws = k * k * m * do * do + m * n * do * do
    a = k * k * am * do * do + am * an * do * do
    ar = k * k * am * rdo * rdo + am * an * rdo * rdo
    side, rside = _side_step(df, k, 1, None, conv[0].out.h), \
        _side_step(rdf, k, 1, None, sep_ar[0].out.h)
    steps = [
        side,
        Step("standard conv FLOPs", f"Dk²·M·N·{D}²", f"{_sq(k)}·{m}·{n}·{d2}", std,
             _flops(conv)),
        Step("standard conv params", "Dk²·M·N", f"{_sq(k)}·{m}·{n}", k * k * m * n,
             _weights(conv), "params"),
        Step("depthwise separable FLOPs", f"Dk²·M·{D}² + M·N·{D}²",
             f"{_sq(k)}·{m}·{d2} + {m}·{n}·{d2}", dws, _flops(sep)),
        Step("depthwise separable params", "Dk²·M + M·N", f"{_sq(k)}·{m} + {m}·{n}",
             k * k * m + m * n, _weights(sep), "params"),
        Step(f"α = {alpha:g} FLOPs", f"Dk²·αM·{D}² + αM·αN·{D}²",
             f"{_sq(k)}·{am}·{d2} + {am}·{an}·{d2}", a, _flops(sep_a)),
        Step(f"α = {alpha:g} params", "Dk²·αM + αM·αN", f"{_sq(k)}·{am} + {am}·{an}",
             k * k * am + am * an, _weights(sep_a), "params"),
        Step(rside.quantity + " at ρDf", rside.formula.replace("Df", "ρDf"), rside.substituted,
             rside.value, rside.engine, rside.unit),
        Step(f"ρ = {rho:g} FLOPs", f"Dk²·αM·{R}² + αM·αN·{R}²",
             f"{_sq(k)}·{am}·{r2} + {am}·{an}·{r2}", ar, _flops(sep_ar)),
        Step(f"ρ = {rho:g} params", "Dk²·αM + αM·αN (ρ changes no weights)",
             f"{_sq(k)}·{am} + {am}·{an}", k * k * am + am * an, _weights(sep_ar), "params"),
        Step("α cost ratio", "(Dk²·αM + αM·αN) / (Dk²·M + M·N) → α² as N ≫ Dk²",
             f"{k * k * am + am * an:,} / {k * k * m + m * n:,}",
             Fraction(k * k * am + am * an, k * k * m + m * n),
             Fraction(_flops(sep_a), _flops(sep)), "ratio"),
        Step("ρ cost ratio", f"{R}² / {D}²" + (" = ρ²" if do == df else ""), f"{r2} / {d2}",
             Fraction(rdo * rdo, do * do), Fraction(_flops(sep_ar), _flops(sep_a)), "ratio"),
    ]
    notes = [f"αM = int({alpha:g}·{m}) = {am}, αN = int({alpha:g}·{n}) = {an} (truncated, as "
             f"MobileNet's code does); ρDf = round({rho:g}·{df}) = {rdf} (ρ is applied "
             f"through the input resolution)",
             f"α² = {alpha * alpha:.4g}: the pointwise term scales by α², the depthwise term "
             f"by α, so the ratio is a little above α²",
             *_side_notes(df, do, 1, None, k)]
    if do != df:
        notes.append(f"Do' = {rdo}: the output's side for the input ρDf = {rdf}")
    return Derivation("MobileNet: depthwise separable, width α and resolution ρ (Table 3)",
                      "formula mobilenet",
                      {"Dk": k, "M": m, "N": n, "Df": df, "α": alpha, "ρ": rho,
                       "padding": describe_padding(None, k), "Do": do}, steps, notes)


def effnet_pool_steps(m: int, h: int, w: int, e_dw1: int, e_dw2: int, e_dw3x3: int | None
                      ) -> list[Step]:
    """1×3 dw on H×W, 2×1 pool (⌊H/2⌋×W), 3×1 dw on the pooled map; against a 3×3 dw."""
    hp = h // 2
    dw1, dw2 = 3 * h * w * m, 3 * hp * w * m
    area = _area(h, w)
    sym = "Df²" if h == w else "H·W"
    if h % 2:  # the 2×1 pool floors
        half = "⌊Df/2⌋·Df" if h == w else "⌊H/2⌋·W"
    else:
        half = "(Df²/2)" if h == w else "(H/2·W)"
    steps = [
        Step("dw 1×3 FLOPs", f"3·{sym}·M", f"3·{area}·{m}", dw1, e_dw1),
        Step("dw 3×1 FLOPs (after the 2×1 pool)", f"3·{half}·M", f"3·{hp}·{w}·{m}", dw2, e_dw2),
        Step("separable part FLOPs", f"3·{sym}·M + 3·{half}·M", f"{dw1:,} + {dw2:,}", dw1 + dw2,
             e_dw1 + e_dw2),
        Step("paper's form", f"1.5·(3·{sym}·M)", f"1.5·(3·{area}·{m})",
             Fraction(3, 2) * 3 * h * w * m, e_dw1 + e_dw2 if h % 2 == 0 else None),
    ]
    if e_dw3x3 is not None:
        steps += [
            Step("dw 3×3 FLOPs", f"9·{sym}·M", f"9·{area}·{m}", 9 * h * w * m, e_dw3x3),
            Step("separable / 3×3", "1.5·3 / 9 = 1/2", f"{dw1 + dw2:,} / {9 * h * w * m:,}",
                 Fraction(dw1 + dw2, 9 * h * w * m), Fraction(e_dw1 + e_dw2, e_dw3x3), "ratio"),
        ]
    return steps


def derive_effnet(m: int = 64, df: int = 16) -> Derivation:
    _positive(m=m, df=df)
    if df < 2:
        raise CostModelError("Df must be at least 2 (the 2×1 pool halves it)", field="df")
    rows = engine_run([{"type": "dwconv", "kernel": [1, 3]},
                       {"type": "max_pool", "kernel": [2, 1]},
                       {"type": "dwconv", "kernel": [3, 1]}], m, df).rows
    dw3 = engine_run([{"type": "dwconv", "kernel": 3}], m, df).rows
    dws = [r.flops for r in rows if r.category == "depthwise"]
    notes = ["M: the channels the depthwise convs see (the block's bottleneck); Df: the "
             "block's input side"]
    if df % 2:
        notes.append("Df is odd: the 2×1 pool floors H/2, so the paper's 1.5·(3·Df²·M) is "
                     "approximate (not checked)")
    return Derivation("EffNet: separable pooling (1×3 dw → 2×1 pool → 3×1 dw)", "formula effnet",
                      {"M": m, "Df": df},
                      effnet_pool_steps(m, df, df, dws[0], dws[1], _flops(dw3)), notes)


def shufflenet_steps(c: int, m: int, g: int, h: int, w: int, e_unit: int, e_resnet: int | None,
                     e_resnext: int | None) -> list[Step]:
    hw = _area(h, w)
    unit = h * w * (Fraction(2 * c * m, g) + 9 * m)
    steps = [Step("ShuffleNet unit FLOPs", "hw(2cm/g + 9m)",
                  f"{hw}·(2·{c}·{m}/{g} + 9·{m})", unit, e_unit)]
    if e_resnet is not None:
        steps.append(Step("ResNet bottleneck FLOPs", "hw(2cm + 9m²)",
                          f"{hw}·(2·{c}·{m} + 9·{_sq(m)})", h * w * (2 * c * m + 9 * m * m),
                          e_resnet))
    if e_resnext is not None:
        steps.append(Step("ResNeXt bottleneck FLOPs", "hw(2cm + 9m²/g)",
                          f"{hw}·(2·{c}·{m} + 9·{_sq(m)}/{g})",
                          h * w * (2 * c * m + Fraction(9 * m * m, g)), e_resnext))
    if e_resnet is not None:
        steps.append(Step("ShuffleNet / ResNet", "(2cm/g + 9m) / (2cm + 9m²)",
                          f"{_num(unit / (h * w))} / {2 * c * m + 9 * m * m:,}",
                          unit / (h * w * (2 * c * m + 9 * m * m)),
                          Fraction(e_unit, e_resnet), "ratio"))
    return steps


def derive_shufflenet(c: int = 240, m: int = 60, g: int = 3, df: int = 28) -> Derivation:
    _positive(c=c, m=m, g=g, df=df)
    if c % m:
        raise CostModelError(f"the unit's bottleneck is c/ratio: m = {m} must divide c = {c}",
                             field="m")
    _divides(g, c=c, m=m)
    ratio = c // m
    unit = engine_run([{"type": "shufflenet_unit", "out": c, "groups": g,
                        "bottleneck_ratio": ratio}], c, df).rows
    resnet = engine_run([{"type": "residual", "layers": [
        {"type": "conv", "out": m, "kernel": 1}, {"type": "conv", "out": m, "kernel": 3},
        {"type": "conv", "out": c, "kernel": 1}]}], c, df).rows
    resnext = engine_run([{"type": "residual", "layers": [
        {"type": "conv", "out": m, "kernel": 1},
        {"type": "conv", "out": m, "kernel": 3, "groups": g},
        {"type": "conv", "out": c, "kernel": 1}]}], c, df).rows
    return Derivation("ShuffleNet V1 unit against ResNet and ResNeXt bottlenecks (§3.2)",
                      "formula shufflenet", {"c": c, "m": m, "g": g, "h = w": df},
                      shufflenet_steps(c, m, g, df, df, _flops(unit), _flops(resnet),
                                       _flops(resnext)),
                      ["stride-1 units on a c×h×w input with bottleneck m; the engine's "
                       "ResNet/ResNeXt are 1×1 → 3×3 (g groups for ResNeXt) → 1×1 residuals"])


def mac_steps(c1: int, c2: int, h: int, w: int, g: int, e_flops: int, e_mac: int,
              e_dense_mac: int | None) -> list[Step]:
    """ShuffleNet V2's MAC of a 1×1 conv (no bias), its G1 bound, and G2's dense comparison."""
    hw = h * w
    area = _area(h, w)
    b = Fraction(hw * c1 * c2, g)
    mac = hw * (c1 + c2) + Fraction(c1 * c2, g)
    bound = 2 * math.sqrt(hw * g * b) + float(b) / hw
    gs = "" if g == 1 else "/g"
    steps = [
        Step("FLOPs B", f"hw·c1·c2{gs}", f"{area}·{c1}·{c2}" + (f"/{g}" if g > 1 else ""), b,
             e_flops),
        Step("MAC", f"hw(c1+c2) + c1·c2{gs}",
             f"{area}·({c1}+{c2}) + {c1}·{c2}" + (f"/{g}" if g > 1 else ""), mac, e_mac, "MAC"),
        Step("MAC lower bound", "2·√(hw·B) + B/hw" if g == 1 else "2·√(hw·g·B) + B/hw",
             f"2·√({hw}·{b}) + {b}/{hw}" if g == 1 else f"2·√({hw}·{g}·{b}) + {b}/{hw}",
             bound, None, "MAC"),
        Step("MAC over the bound", "MAC / bound − 1 (0 when c1 = c2)",
             f"{_num(mac)} / {bound:,.6g} − 1",
             float(mac) / bound - 1, None, "%"),
    ]
    if g > 1:
        dense = hw * (c1 + Fraction(c2, g)) + Fraction(c1 * c2, g)
        steps += [
            Step("MAC, dense conv with the same FLOPs", "hw(c1 + c2/g) + c1·c2/g",
                 f"{area}·({c1} + {c2}/{g}) + {c1}·{c2}/{g}", dense, e_dense_mac, "MAC"),
            Step("MAC increase from groups (G2)", "MAC / MAC(g=1, same FLOPs) − 1",
                 f"{_num(mac)} / {_num(dense)} − 1", float(mac / dense - 1), None, "%"),
        ]
    return steps


def derive_mac(c1: int = 128, c2: int = 128, df: int = 56, g: int = 1) -> Derivation:
    _positive(c1=c1, c2=c2, df=df, g=g)
    _divides(g, c1=c1, c2=c2)
    (row,) = engine_run([{"type": "conv", "out": c2, "kernel": 1, "groups": g}], c1, df).rows
    dense = None
    if g > 1:
        (d,) = engine_run([{"type": "conv", "out": c2 // g, "kernel": 1}], c1, df).rows
        dense = d.mac
    return Derivation("ShuffleNet V2: memory access cost of a 1×1 conv and its lower bound "
                      "(G1, G2)", "formula mac", {"c1": c1, "c2": c2, "h = w": df, "g": g},
                      mac_steps(c1, c2, df, df, g, row.flops, row.mac, dense),
                      ["MAC = elements read + written: input and output maps, weights"])


FORMULAS: dict[str, Callable[..., Derivation]] = {
    "conv": derive_conv,
    "group": derive_group,
    "dwsep": derive_dwsep,
    "mobilenet": derive_mobilenet,
    "effnet": derive_effnet,
    "shufflenet": derive_shufflenet,
    "mac": derive_mac,
}
"""Formula name → derivation; each takes its sizes as keyword arguments (defaults: the
papers' own examples — MobileNet Table 3's Dk=3, M=N=512, Df=14; ShuffleNet 1× g=3 stage 2;
EffNet's stage 2; ShuffleNet V2's G1 benchmark at 56×56)."""


def explain_formula(name: str, **sizes) -> Derivation:
    """The derivation of formula ``name`` with the given sizes (None: the default)."""
    fn = FORMULAS.get(name)
    if fn is None:
        raise CostModelError(f"unknown formula '{name}' ({', '.join(FORMULAS)}); to explain a "
                             "layer of a model, give --layer PATH")
    import inspect

    accepted = inspect.signature(fn).parameters
    given = {k: v for k, v in sizes.items() if v is not None}
    extra = sorted(set(given) - set(accepted))
    if extra:
        raise CostModelError(f"formula '{name}' takes {', '.join('--' + a for a in accepted)}; "
                             f"not {', '.join('--' + e for e in extra)}")
    return fn(**given)


def _positive(**values) -> None:
    """Each value a positive number: finite (no NaN or ∞, which no size or multiplier is) and
    within the documented size of an integer (``costmodel.limits.INT_DIGITS``)."""
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CostModelError(f"{k} must be a number, got {v!r}", field=k)
        if isinstance(v, float) and not math.isfinite(v):
            raise CostModelError(f"--{k} must be a finite number, got {v}", field=k)
        if not v > 0:
            raise CostModelError(f"--{k} must be positive, got {v:g}", field=k)
        _bounded_int(int(v), k)


def _bounded_int(v: int, field: str) -> None:
    if abs(v) >= 10 ** INT_DIGITS.value:  # compared, not printed: str() of a huge int is slow
        raise INT_DIGITS.exceeded(f"--{field}", field=field)


def _divides(g: int, **values) -> None:
    for k, v in values.items():
        if v % g:
            raise CostModelError(f"{k} = {v} is not divisible by g = {g}", field=k)


# --- table -----------------------------------------------------------------------------------

def format_value(v: Number | None, unit: str = "") -> str:
    if v is None:
        return ""
    if unit == "%":
        return f"{100 * float(v):.2f}%"
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, Fraction) and v.denominator != 1:
        return f"{v} ≈ {float(v):.4g}"
    n = int(v)
    return f"{n:,}" + (f" ({si(n)})" if abs(n) >= 1000 else "")


def derivation_table(d: Derivation, raw: bool = False) -> Table:
    """The derivation as a Table: values written for people (1,234 (1.23k), 521/4608 ≈
    0.1131, 24.38%), or with ``raw`` (for CSV) as plain numbers plus the exact fraction."""
    cols = [Column("quantity", "quantity"), Column("formula", "formula"),
            Column("substituted", "substituted"), Column("value", "value"),
            Column("engine", "engine"), Column("check", "")]
    if raw:
        cols[-1:] = [Column("exact", "exact"), Column("unit", "unit"), Column("match", "match")]
        rows = [s.record() for s in d.steps]
    else:
        rows = [{"quantity": s.quantity, "formula": s.formula, "substituted": s.substituted,
                 "value": format_value(s.value, s.unit),
                 "engine": format_value(s.engine, s.unit),
                 "check": {True: "✓", False: "✗ differs", None: ""}[s.match]} for s in d.steps]
    marks = {(i, "match" if raw else "check") for i, s in enumerate(d.steps)
             if s.match is False}
    symbols = ", ".join(f"{k} = {v}" for k, v in d.symbols.items())
    checked = sum(s.match is not None for s in d.steps)
    verdict = (f"all {checked} checked values equal the engine's count" if d.ok else
               "some values differ from the engine's count (✗)")
    return Table(d.title, cols, rows, notes=[symbols, *d.notes, verdict,
                                             "FLOPs are multiply-adds; params are weights "
                                             "(no batch norm); MAC is memory access cost"],
                 marks=marks)
