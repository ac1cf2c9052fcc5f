"""Compound scaling and design-space sweeps.

``scale`` applies width, depth and resolution multipliers (or EfficientNet's compound
coefficient φ) to a model and measures what they do: the actual growth of every metric next
to the growth the multipliers predict (FLOPs ∝ d·w²·r²), factor by factor and stage by stage,
so that the effects of rounding (channels to the family's rule, repeats to ceil(n·d), the
input to whole pixels, strided maps to whole cells) are visible. ``sweep`` evaluates a grid
of configurations, marks the Pareto front and names the largest configuration within a
budget.

Multipliers are relative to the model as named: ``mobilenet-0.5`` scaled by width 2 is
MobileNet at α = 1. Data first (dataclasses), then Tables, then rendering by the caller.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Sequence

from costmodel.errors import CostModelError, LimitError
from costmodel.engine import Result, Row, Totals, evaluate
from costmodel.options import Options, parse_input
from costmodel.layers.base import MAX_MULTIPLIER, check_multiplier  # noqa: F401 (re-exported)
from costmodel.render import Column, Table
from costmodel.render.format import parse_si, si
from costmodel.shape import Shape
from costmodel.spec.model import ModelSpec

MAX_GRID_POINTS = 100_000
"""A sweep refuses larger grids (a mistyped step), rather than run for hours."""

METRIC_LABELS = {"flops": "FLOPs", "params": "params", "mac": "MAC",
                 "peak_activation": "peak activation"}

WEIGHTED = frozenset({"conv1x1", "depthwise", "conv", "fc"})
"""Row categories that hold multiply-adds: the layers counted as a stage's depth."""


# --------------------------------------------------------------------------------------------
# Multipliers
# --------------------------------------------------------------------------------------------

def _check_multiplier(name: str, value: float) -> float:
    return check_multiplier(value, name)


@dataclass(frozen=True)
class Coefficients:
    """EfficientNet's compound-scaling coefficients (Tan & Le 2019, eq. 3): depth α^φ,
    width β^φ, resolution γ^φ, chosen so that α·β²·γ² ≈ 2 (FLOPs double per unit of φ)."""

    alpha: float = 1.2
    beta: float = 1.1
    gamma: float = 1.15

    def __post_init__(self):
        for name in ("alpha", "beta", "gamma"):
            _check_multiplier(name, getattr(self, name))

    @property
    def flops_base(self) -> float:
        """α·β²·γ²: the predicted FLOPs growth per unit of φ."""
        return self.alpha * self.beta ** 2 * self.gamma ** 2


EFFICIENTNET = Coefficients()


@dataclass(frozen=True)
class Multipliers:
    """Width w, depth d and resolution r, relative to the model as named. ``phi`` and
    ``coefficients`` are set when they come from compound scaling."""

    width: float = 1.0
    depth: float = 1.0
    resolution: float = 1.0
    phi: float | None = None
    coefficients: Coefficients | None = None

    def __post_init__(self):
        for name in ("width", "depth", "resolution"):
            _check_multiplier(name, getattr(self, name))

    @classmethod
    def compound(cls, phi: float, coefficients: Coefficients = EFFICIENTNET) -> "Multipliers":
        """EfficientNet's compound scaling: d = α^φ, w = β^φ, r = γ^φ."""
        if not isinstance(phi, (int, float)) or not math.isfinite(phi):
            raise CostModelError(f"φ must be a finite number, got {phi!r}", field="phi")
        c = coefficients
        return cls(width=c.beta ** phi, depth=c.alpha ** phi, resolution=c.gamma ** phi,
                   phi=float(phi), coefficients=c)

    def predicted(self) -> dict[str, float]:
        """Growth the multipliers predict, before any rounding: FLOPs ∝ d·w²·r² (each layer's
        multiply-adds ∝ C_in·C_out·H·W), params ∝ d·w² (weights ∝ C_in·C_out), the largest
        feature map ∝ w·r². MAC mixes maps and weights, so no single law predicts it."""
        d, w, r = self.depth, self.width, self.resolution
        return {"flops": d * w * w * r * r, "params": d * w * w, "peak_activation": w * r * r}


def scaled_input(hw: tuple[int, int], resolution: float, multiple: int = 1) -> tuple[int, int]:
    """The input size times ``resolution``, each side rounded half up to a multiple of
    ``multiple`` pixels (at least one multiple)."""
    if multiple < 1:
        raise CostModelError(f"the input must round to a positive multiple, got {multiple}")
    return tuple(max(multiple, math.floor(side * resolution / multiple + 0.5) * multiple)
                 for side in hw)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Stages: where the network's cost sits, before and after scaling
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupStats:
    """One stage (or the stem, the head, a top-level layer) of an evaluated network."""

    layers: int
    """Layers holding multiply-adds (conv, depthwise, linear): the stage's depth."""
    out: Shape
    flops: int
    params: int
    mac: int

    @classmethod
    def of(cls, rows: Sequence[Row]) -> "GroupStats":
        return cls(layers=sum(r.category in WEIGHTED for r in rows), out=rows[-1].out,
                   flops=sum(r.flops for r in rows), params=sum(r.params for r in rows),
                   mac=sum(r.mac for r in rows))


def _top(row: Row) -> str:
    return row.path.split(".", 1)[0]


def stage_groups(result: Result) -> dict[str, list[Row]]:
    """The rows grouped by stage, in network order.

    Where the spec marks stages (``type: stage``), each stage is a group, and the layers outside
    them form ``stem`` (before the first stage), ``head`` (after the last) or a group named by
    its top-level layers. Where it marks none, each top-level layer is a group, and one holding
    no multiply-adds (batch norm, activation, pooling) joins the group before it.
    """
    rows = result.rows
    runs: list[tuple[str | None, list[Row]]] = []
    if any(r.stage for r in rows):
        for r in rows:
            if runs and runs[-1][0] == r.stage:
                runs[-1][1].append(r)
            else:
                runs.append((r.stage, [r]))
        staged = [i for i, (key, _) in enumerate(runs) if key]
        groups: dict[str, list[Row]] = {}
        for i, (key, run) in enumerate(runs):
            if key is None:
                if i < staged[0]:
                    key = "stem"
                elif i > staged[-1]:
                    key = "head"
                else:
                    first, last = _top(run[0]), _top(run[-1])
                    key = first if first == last else f"{first}…{last}"
            groups.setdefault(key, []).extend(run)
        return groups
    for r in rows:
        if runs and runs[-1][0] == _top(r):
            runs[-1][1].append(r)
        else:
            runs.append((_top(r), [r]))
    groups = {}
    for key, run in runs:
        weighted = any(r.category in WEIGHTED for r in run)
        if groups and not weighted:
            groups[next(reversed(groups))].extend(run)
        else:
            groups[key] = run
    # leading layers without multiply-adds (a stem's normalisation) join the first real group
    keys = list(groups)
    if len(keys) > 1 and not any(r.category in WEIGHTED for r in groups[keys[0]]):
        lead = groups.pop(keys[0])
        groups = {keys[1]: lead + groups[keys[1]], **{k: groups[k] for k in keys[2:]}}
    return groups


@dataclass(frozen=True)
class StageGrowth:
    name: str
    base: GroupStats | None
    scaled: GroupStats | None


def stage_growth(base: Result, scaled: Result) -> tuple[StageGrowth, ...]:
    """Each stage before and after scaling, matched by name (a stage that only one side has,
    e.g. inside a repeat the depth multiplier extends, has the other side None)."""
    b, s = stage_groups(base), stage_groups(scaled)
    names = list(dict.fromkeys([*b, *s]))
    return tuple(StageGrowth(n, GroupStats.of(b[n]) if n in b else None,
                             GroupStats.of(s[n]) if n in s else None) for n in names)


# --------------------------------------------------------------------------------------------
# scale
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Factor:
    """One multiplier applied on its own: the growth it predicts and the growth measured."""

    name: Literal["width", "depth", "resolution", "combined"]
    multiplier: float | None
    applied: str
    predicted: dict[str, float]
    actual: dict[str, float | None]


@dataclass(frozen=True)
class Scaling:
    """A model before and after scaling, with the growth predicted and measured."""

    multipliers: Multipliers
    base: Result
    scaled: Result
    spec: ModelSpec
    """The scaled model as a spec of its own (``spec_text`` writes it; it loads back)."""
    factors: tuple[Factor, ...]
    stages: tuple[StageGrowth, ...]
    notes: tuple[str, ...] = ()

    @property
    def predicted(self) -> dict[str, float]:
        return self.multipliers.predicted()

    def growth(self, metric: str) -> float | None:
        return _ratio(getattr(self.scaled.totals, metric), getattr(self.base.totals, metric))


def _ratio(new: float, old: float) -> float | None:
    return new / old if old else None


def _growths(new: Totals, old: Totals) -> dict[str, float | None]:
    return {m: _ratio(getattr(new, m), getattr(old, m))
            for m in ("flops", "params", "mac", "peak_activation")}


def _hw(hw: tuple[int, int]) -> str:
    return f"{hw[0]}×{hw[1]}"


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _phi_name(phi: float) -> str:
    return f"{phi:g}".replace("-", "m")


def scaled_spec(spec: ModelSpec, m: Multipliers, base_hw: tuple[int, int],
                input_hw: tuple[int, int], name: str | None = None) -> ModelSpec:
    """The spec with the multipliers folded in (width and depth multiplied into the spec's own,
    the scaled input as its input): a spec of its own that evaluates to the scaled model.

    Variants and variables are dropped: their values are already substituted, and a variant
    would set the width or input back absolutely."""
    from costmodel.spec.loader import validate_spec

    data = spec.model_dump(mode="json", exclude_unset=True,
                           exclude={"variants", "vars", "aliases"})
    how = (f"compound scaling φ={m.phi:g} (α={m.coefficients.alpha:g}, β={m.coefficients.beta:g}, "
           f"γ={m.coefficients.gamma:g})" if m.phi is not None and m.coefficients else
           "scaling")
    square = input_hw[0] == input_hw[1]
    if name is None:
        size = str(input_hw[0]) if square else f"{input_hw[0]}x{input_hw[1]}"
        name = (f"{spec.name}-phi{_phi_name(m.phi)}" if m.phi is not None else
                f"{spec.name}-w{m.width:g}-d{m.depth:g}-r{size}")
    data.update(
        name=name,
        width=spec.width * m.width,
        depth=spec.depth * m.depth,
        input=input_hw[0] if square else list(input_hw),
        notes=[*spec.notes, f"Written by `costmodel scale` from {spec.name} at "
               f"{_hw(base_hw)}: {how}, width ×{_fmt(m.width)}, depth ×{_fmt(m.depth)}, "
               f"resolution ×{_fmt(m.resolution)} ({_hw(input_hw)})."],
    )
    return validate_spec(data, f"<{name}>")


def _at(what: str, fn, *args, **kwargs):
    """Call ``fn``; a shape error (a collapsed map, indivisible groups) says what it tried."""
    try:
        return fn(*args, **kwargs)
    except CostModelError as e:
        e.message = f"{e.message} ({what})"
        raise


def _rounding_text(spec: ModelSpec) -> str:
    r = spec.rounding
    if r.rule == "divisible":
        return f"channels to multiples of {r.divisor}"
    return f"channels truncated (at least {r.min})"


def scale(spec: ModelSpec, multipliers: Multipliers, *, input=None, options: Options = Options(),
          resolution_multiple: int = 1, name: str | None = None) -> Scaling:
    """Scale ``spec`` (at ``input``, default the spec's) by ``multipliers`` and measure it.

    Evaluates the model as named, the scaled model, and each multiplier on its own, so each
    factor's rounding shows separately from the others'.
    """
    m = multipliers
    base_hw = parse_input(input) if input is not None else spec.input_hw
    new_hw = scaled_input(base_hw, m.resolution, resolution_multiple)
    base = evaluate(spec, input=base_hw, options=options)
    new_spec = scaled_spec(spec, m, base_hw, new_hw, name)
    where = f"scaled to width ×{_fmt(m.width)}, depth ×{_fmt(m.depth)}, input {_hw(new_hw)}"
    scaled = _at(where, evaluate, new_spec, options=options)
    only_width = _at(f"width ×{_fmt(m.width)}", evaluate, spec, input=base_hw,
                     width=spec.width * m.width, options=options, totals_only=True)
    only_depth = _at(f"depth ×{_fmt(m.depth)}", evaluate, spec, input=base_hw,
                     depth=spec.depth * m.depth, options=options)
    only_res = _at(f"input {_hw(new_hw)}", evaluate, spec, input=new_hw, options=options,
                   totals_only=True)

    def layers(r: Result) -> int:
        return sum(row.category in WEIGHTED for row in r.rows)

    factors = (
        Factor("width", m.width, f"α {spec.width:g} → {_fmt(spec.width * m.width)}, "
                                 f"{_rounding_text(spec)}",
               Multipliers(width=m.width).predicted(), _growths(only_width.totals, base.totals)),
        Factor("depth", m.depth, f"{layers(base)} → {layers(only_depth)} layers",
               Multipliers(depth=m.depth).predicted(), _growths(only_depth.totals, base.totals)),
        Factor("resolution", m.resolution, f"{_hw(base_hw)} → {_hw(new_hw)}",
               Multipliers(resolution=m.resolution).predicted(),
               _growths(only_res.totals, base.totals)),
        Factor("combined", None, "all three", m.predicted(), _growths(scaled.totals, base.totals)),
    )
    notes = []
    if m.depth != 1 and layers(only_depth) == layers(base):
        notes.append(f"depth ×{_fmt(m.depth)} changes nothing here: {spec.name} has no `repeat` "
                     "that depth scaling applies to")
    return Scaling(m, base, scaled, new_spec, factors, stage_growth(base, scaled), tuple(notes))


def spec_text(spec: ModelSpec, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """A spec as YAML (short layers on one line) or JSON; loading the text gives ``spec``."""
    data = _ordered(spec.model_dump(mode="json", exclude_unset=True))
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def represent_dict(dumper, d):
        flow = all(not isinstance(v, (dict, list)) or
                   (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))
                   for v in d.values())
        return dumper.represent_mapping("tag:yaml.org,2002:map", d.items(), flow_style=flow)

    Dumper.add_representer(dict, represent_dict)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


def _ordered(node: Any) -> Any:
    """Layers read better with ``name`` and ``type`` first."""
    if isinstance(node, list):
        return [_ordered(v) for v in node]
    if isinstance(node, dict):
        keys = [k for k in ("name", "type") if k in node]
        keys += [k for k in node if k not in ("name", "type")]
        return {k: _ordered(node[k]) for k in keys}
    return node


# --------------------------------------------------------------------------------------------
# sweep
# --------------------------------------------------------------------------------------------

AxisKind = Literal["variant", "var", "depth", "width", "resolution", "input"]
AXIS_ORDER: tuple[str, ...] = ("variant", "var", "depth", "width", "resolution", "input")
"""Grid order, outermost first: a spec is loaded once per variant and variable setting."""


@dataclass(frozen=True)
class Axis:
    """One dimension of a sweep grid. ``var`` names the spec variable of a ``var`` axis."""

    kind: AxisKind
    values: tuple
    var: str | None = None

    @property
    def key(self) -> str:
        return self.var if self.kind == "var" else self.kind

    @property
    def label(self) -> str:
        return f"${self.var}" if self.kind == "var" else self.kind


_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")
"""A decimal number, ASCII digits (``float()`` alone also takes ``nan``, ``inf``, ``1_0``)."""


def _number(text: str, what: str) -> float:
    if not _NUMBER.fullmatch(text.strip()):
        raise CostModelError(f"{what}: '{text}' is not a number")
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise CostModelError(f"{what}: '{text}' is too large")
    return value


def _range(text: str, what: str, integer: bool) -> list[float]:
    """``start:stop:step``, both ends included (up to rounding of the step)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise CostModelError(f"{what}: a range is start:stop:step (e.g. 0.25:1.4:0.05), "
                             f"got '{text}'")
    start, stop, step = (_number(p, what) for p in parts)
    if step <= 0:
        raise CostModelError(f"{what}: the step of '{text}' must be positive")
    if stop < start:
        raise CostModelError(f"{what}: the range '{text}' is empty (stop < start)")
    if integer and not all(v == int(v) for v in (start, stop, step)):
        raise CostModelError(f"{what}: '{text}' must be whole numbers")
    span = (stop - start) / step  # inf for 0:1e300:1e-300: no count to floor
    count = math.floor(span + 1e-9) + 1 if span <= MAX_GRID_POINTS else None
    if count is None or count > MAX_GRID_POINTS:
        found = "too many" if not math.isfinite(span) else f"{count or math.floor(span) + 1:,}"
        raise LimitError(f"{what}: '{text}' has {found} values (at most "
                         f"{MAX_GRID_POINTS:,}); use a coarser step")
    values = [round(start + i * step, 10) for i in range(count)]
    return [int(v) for v in values] if integer else values


def _items(text: str, what: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",")]
    if not text or not str(text).strip() or any(not t for t in items):
        raise CostModelError(f"{what}: '{text}' is an empty or malformed list (e.g. 1,2,4 or "
                             "0.5:1:0.25)")
    return items


def parse_axis(kind: AxisKind, text: str, var: str | None = None) -> Axis:
    """A grid axis from the command line: a comma list of values or ranges
    (``0.25:1.4:0.05``, ``96:224:16``, ``0.5,0.75,1``, ``224x160``, ``g1,g8``)."""
    what = f"--{kind}" if kind != "var" else f"--var {var}"
    values: list[Any] = []
    for item in _items(text, what):
        if kind == "variant":
            values.append(item)
        elif kind == "input":
            if ":" in item:
                sizes = _range(item, what, integer=True)
                if sizes[0] < 1:
                    raise CostModelError(f"{what}: input sizes must be positive, got {sizes[0]} "
                                         f"in '{item}'")
                try:
                    parse_input(sizes[-1])  # the largest side within the limit
                except CostModelError as e:
                    raise type(e)(f"{what} {item}: {e.message}") from None
                values += [(v, v) for v in sizes]
            else:
                try:
                    values.append(parse_input(item))
                except CostModelError as e:
                    raise type(e)(f"{what}: {e.message}") from None
        elif kind == "var":
            values += _range(item, what, integer=False) if ":" in item else [_scalar(item)]
        else:
            vals = _range(item, what, integer=False) if ":" in item else [_number(item, what)]
            for v in vals:
                try:
                    _check_multiplier(kind, v)
                except CostModelError as e:
                    raise CostModelError(f"{what} {text}: {e.message}") from None
            values += vals
    if kind == "var":  # a whole-number range of a variable (groups 1:4:1) gives ints
        values = [int(v) if isinstance(v, float) and v == int(v) else v for v in values]
    values = list(dict.fromkeys(values))
    return Axis(kind, tuple(values), var)


def _scalar(text: str) -> Any:
    """A variable's value as YAML reads it: 3 → int, 0.5 → float, true → bool, else str."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, str, bool)) else text


@dataclass(frozen=True)
class Budget:
    """Upper limits; a configuration fits when it is within every one that is set."""

    flops: float | None = None
    params: float | None = None
    mac: float | None = None
    peak_activation: float | None = None

    @classmethod
    def parse(cls, **texts: str | None) -> "Budget":
        """From strings like ``300M``, ``2.5M``, ``300k``."""
        values = {}
        for key, text in texts.items():
            if text is None:
                continue
            try:
                v = parse_si(str(text))
            except ValueError:
                v = None
            if v is None or not math.isfinite(v) or v <= 0:
                raise CostModelError(f"{METRIC_LABELS[key]} budget '{text}' is not a positive "
                                     "number (e.g. 300M, 2.5M, 300k, 1.2G)")
            values[key] = v
        return cls(**values)

    def limits(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in METRIC_LABELS if getattr(self, k) is not None}

    def __bool__(self) -> bool:
        return bool(self.limits())

    def fits(self, t: Totals) -> bool:
        return all(getattr(t, k) <= v for k, v in self.limits().items())

    def describe(self) -> str:
        return ", ".join(f"{METRIC_LABELS[k]} ≤ {si(v)}" for k, v in self.limits().items())


@dataclass(frozen=True)
class Point:
    """One configuration of a sweep and what it costs."""

    model: str
    variant: str | None
    vars: dict[str, Any]
    width: float
    depth: float
    resolution: float | None
    input: tuple[int, int]
    totals: Totals | None = None


@dataclass(frozen=True)
class SweepResult:
    model: str
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]
    front: frozenset[int]
    """Indices of the Pareto front: no other point has as many FLOPs or more for no more of
    ``cost`` (one of them strictly). With a budget, among the points within it."""
    cost: Literal["params", "mac"]
    budget: Budget
    fits: tuple[bool, ...]
    best: int | None
    """The largest configuration within the budget: the most FLOPs, then the fewest params,
    then the least MAC; None without a budget or when nothing fits."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(configuration, why) for points that could not be evaluated, with ``skip_invalid``."""
    options: Options = field(default_factory=Options)


def pareto_front(points: Sequence[tuple[int, int]]) -> frozenset[int]:
    """Indices of the (gain, cost) pairs on the Pareto front: a point is on it when no other
    has at least its gain for at most its cost, one of them strictly. Equal points are all on
    it. O(n log n): scan by gain, descending, keeping the least cost seen at higher gain."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1]))
    front: set[int] = set()
    best_cost = math.inf  # least cost among points with strictly more gain
    k = 0
    while k < len(order):
        gain = points[order[k]][0]
        group = []
        while k < len(order) and points[order[k]][0] == gain:
            group.append(order[k])
            k += 1
        least = points[group[0]][1]  # sorted by cost within a gain
        if least < best_cost:
            front.update(i for i in group if points[i][1] == least)
            best_cost = least
    return frozenset(front)


GROUP_VARS = ("g", "groups")
"""The spec variables ``--groups`` stands for, in order of preference."""


def groups_var(spec: ModelSpec) -> str:
    """The name of the spec's group-count variable, or an error saying what to use instead."""
    for name in GROUP_VARS:
        if name in spec.vars:
            return name
    hint = (f"; its variants: {', '.join(spec.variants)} (sweep them with --variant)"
            if spec.variants else "")
    declared = ", ".join(spec.vars) or "none"
    raise CostModelError(f"{spec.name} declares no group variable (g or groups; its variables: "
                         f"{declared}){hint}", field="groups")


def _describe(p: Point, axes: Sequence[Axis]) -> str:
    parts = []
    for a in axes:
        if a.kind == "variant":
            parts.append(f"variant {p.variant}")
        elif a.kind == "var":
            parts.append(f"{a.var}={p.vars[a.var]}")
        elif a.kind == "input":
            parts.append(f"input {_hw(p.input)}")
        elif a.kind == "resolution":
            parts.append(f"resolution {p.resolution:g} ({_hw(p.input)})")
        else:
            parts.append(f"{a.kind} {getattr(p, a.kind):g}")
    return ", ".join(parts) or "the model as named"


def _settings(model: str | ModelSpec, variants: list[Axis] | None, var_axes: list[Axis] | None):
    """(variant, variables, spec) for each variant × variable setting: the spec is loaded again
    for each, since variants and variables change the layers themselves."""
    from costmodel.api import load
    from costmodel.spec.loader import load_spec
    from costmodel.spec.zoo import locate

    if not variants and not var_axes:
        yield None, {}, load(model)
        return
    if isinstance(model, ModelSpec):
        raise CostModelError("variant and variable axes need a zoo name or a spec file, "
                             "not a loaded spec")
    file, pieces = locate(model)
    var_axes = var_axes or []
    for variant in variants[0].values if variants else (None,):
        extra = variant.lower().replace("_", "-").split("-") if variant else []
        for setting in itertools.product(*(a.values for a in var_axes)):
            var_set = {a.var: v for a, v in zip(var_axes, setting)}
            try:
                spec = load_spec(file, [*pieces, *extra], var_set)
            except CostModelError as e:
                what = [*([f"variant {variant}"] if variant else []),
                        *(f"{k}={v}" for k, v in var_set.items())]
                e.message = f"{e.message} ({', '.join(what)})"
                raise
            yield variant, var_set, spec


def sweep(model: str | ModelSpec, axes: Sequence[Axis], *, budget: Budget = Budget(),
          options: Options = Options(), cost: Literal["params", "mac"] = "params",
          input=None, skip_invalid: bool = False) -> SweepResult:
    """Evaluate every configuration of the grid spanned by ``axes``.

    ``model`` is a zoo name or spec path (or, without variant/var axes, a ModelSpec). Width,
    depth and resolution are relative to the model as named; ``input`` sizes are absolute
    (``input=`` sets the size that ``resolution`` multiplies, default the spec's). A
    configuration that does not evaluate (a collapsed feature map, groups that do not divide)
    is an error naming it, or, with ``skip_invalid``, is left out and listed in ``skipped``.
    """
    by_kind: dict[str, list[Axis]] = {}
    for a in axes:
        if not a.values:
            raise CostModelError(f"the {a.label} axis has no values")
        if a.kind != "var" and a.kind in by_kind:
            raise CostModelError(f"the {a.kind} axis is given twice")
        if a.kind == "var" and any(b.var == a.var for b in by_kind.get("var", [])):
            raise CostModelError(f"the variable '{a.var}' is swept twice")
        by_kind.setdefault(a.kind, []).append(a)
    if "input" in by_kind and "resolution" in by_kind:
        raise CostModelError("sweep either --input sizes or --resolution multipliers, not both")
    ordered = tuple(a for kind in AXIS_ORDER for a in by_kind.get(kind, []))
    size = math.prod(len(a.values) for a in ordered)
    if size > MAX_GRID_POINTS:
        raise LimitError(f"the grid has {size:,} configurations (at most "
                         f"{MAX_GRID_POINTS:,}); use coarser steps")

    def values(kind: str) -> tuple:
        return by_kind[kind][0].values if kind in by_kind else (None,)

    points: list[Point] = []
    skipped: list[tuple[str, str]] = []
    shapes = list(itertools.product(values("depth"), values("width"), values("resolution"),
                                    values("input")))
    for variant, var_set, spec in _settings(model, by_kind.get("variant"), by_kind.get("var")):
        base_hw = parse_input(input) if input is not None else spec.input_hw
        for depth, width, res, hw in shapes:
            hw = scaled_input(base_hw, res) if res is not None else (hw or base_hw)
            point = Point(spec.name, variant, var_set, width or 1.0, depth or 1.0, res, hw)
            try:
                totals = evaluate(spec, input=hw, width=spec.width * point.width,
                                  depth=spec.depth * point.depth, options=options,
                                  totals_only=True).totals
            except CostModelError as e:
                where = _describe(point, ordered)
                if not skip_invalid:
                    e.message = f"{e.message} (at {where})"
                    raise
                skipped.append((where, str(e)))
                continue
            points.append(replace(point, totals=totals))
    if not points:
        raise CostModelError(f"no configuration of the grid evaluates ({len(skipped)} tried; "
                             f"first: {skipped[0][0]}: {skipped[0][1]})" if skipped else
                             "the grid is empty")
    fits = tuple(budget.fits(p.totals) for p in points)
    fitting = [i for i, ok in enumerate(fits) if ok]
    # with a budget, the front of what fits it (the front of the whole grid is its
    # largest-resolution edge, mostly over budget)
    candidates = fitting if budget else list(range(len(points)))
    sub = pareto_front([(points[i].totals.flops, getattr(points[i].totals, cost))
                        for i in candidates])
    front = frozenset(candidates[k] for k in sub)
    best = min(fitting, key=lambda i: (-points[i].totals.flops, points[i].totals.params,
                                       points[i].totals.mac, i)) \
        if budget and fitting else None
    name = model.name if isinstance(model, ModelSpec) else str(model)
    return SweepResult(name, ordered, tuple(points), front, cost, budget, fits, best,
                       tuple(skipped), options)


# --------------------------------------------------------------------------------------------
# Views: records (JSON, CSV) and Tables
# --------------------------------------------------------------------------------------------


def multipliers_record(m: Multipliers) -> dict[str, Any]:
    rec: dict[str, Any] = {"width": m.width, "depth": m.depth, "resolution": m.resolution}
    if m.phi is not None and m.coefficients is not None:
        c = m.coefficients
        rec.update(phi=m.phi, alpha=c.alpha, beta=c.beta, gamma=c.gamma,
                   flops_per_phi=c.flops_base)
    return rec


def _stats_record(g: GroupStats | None) -> dict[str, Any] | None:
    return None if g is None else {"layers": g.layers, "output": g.out.as_list(),
                                   "flops": g.flops, "params": g.params, "mac": g.mac}


def scale_payload(s: Scaling, conventions: dict[str, Any]) -> dict[str, Any]:
    """The ``scale --format json`` contract."""
    predicted = s.predicted
    return {
        "model": s.base.model, "scaled_model": s.spec.name,
        "multipliers": multipliers_record(s.multipliers),
        "base": {"width": s.base.width, "depth": s.base.depth, "input": list(s.base.input)},
        "scaled": {"width": s.scaled.width, "depth": s.scaled.depth,
                   "input": list(s.scaled.input)},
        "totals": {m: {"base": getattr(s.base.totals, m), "scaled": getattr(s.scaled.totals, m),
                       "growth": s.growth(m), "predicted": predicted.get(m)}
                   for m in METRIC_LABELS},
        "factors": [{"factor": f.name, "multiplier": f.multiplier, "applied": f.applied,
                     "predicted": f.predicted, "actual": f.actual} for f in s.factors],
        "stages": [{"stage": g.name, "base": _stats_record(g.base),
                    "scaled": _stats_record(g.scaled)} for g in s.stages],
        "notes": list(s.notes), "conventions": conventions,
    }


def _deviation(actual: float | None, predicted: float | None) -> float | None:
    return actual / predicted - 1 if actual is not None and predicted else None


def _title(s: Scaling) -> str:
    m = s.multipliers
    how = f"φ = {m.phi:g}" if m.phi is not None else "scaled"
    return (f"{s.base.model} {how}: width ×{_fmt(m.width)}, depth ×{_fmt(m.depth)}, "
            f"resolution ×{_fmt(m.resolution)} → {s.spec.name}")


def scale_tables(s: Scaling) -> list[Table]:
    """Totals (base, scaled, growth vs predicted), each factor alone, and each stage."""
    m, predicted = s.multipliers, s.predicted
    rows = [{"metric": label, "base": getattr(s.base.totals, k),
             "scaled": getattr(s.scaled.totals, k), "growth": s.growth(k),
             "predicted": predicted.get(k), "deviation": _deviation(s.growth(k), predicted.get(k))}
            for k, label in METRIC_LABELS.items()]
    notes = [s.base.options.describe(),
             "predicted: FLOPs ∝ d·w²·r², params ∝ d·w², peak activation ∝ w·r² (no rounding); "
             "deviation = actual / predicted − 1"]
    if m.phi is not None and m.coefficients is not None:
        c = m.coefficients
        notes.insert(0, f"compound scaling: d = α^φ = {c.alpha:g}^{m.phi:g}, w = β^φ = "
                        f"{c.beta:g}^{m.phi:g}, r = γ^φ = {c.gamma:g}^{m.phi:g}; predicted FLOPs "
                        f"growth (α·β²·γ²)^φ = {c.flops_base:.4f}^{m.phi:g} = "
                        f"{predicted['flops']:.4f} (≈ 2^φ = {2 ** m.phi:.4g})")
    notes += list(s.notes)
    totals = Table(_title(s) + f" ({_hw(s.base.input)} → {_hw(s.scaled.input)})",
                   [Column("metric", "metric"), Column("base", "base", "si"),
                    Column("scaled", "scaled", "si"), Column("growth", "growth", "ratio"),
                    Column("predicted", "predicted", "ratio"),
                    Column("deviation", "deviation", "pct")], rows, notes=notes)

    frows = [{"factor": f.name, "multiplier": f.multiplier, "applied": f.applied,
              "flops_predicted": f.predicted["flops"], "flops_actual": f.actual["flops"],
              "flops_deviation": _deviation(f.actual["flops"], f.predicted["flops"]),
              "params_predicted": f.predicted["params"], "params_actual": f.actual["params"],
              "params_deviation": _deviation(f.actual["params"], f.predicted["params"])}
             for f in s.factors]
    for r in frows:
        r["multiplier"] = "" if r["multiplier"] is None else _fmt(r["multiplier"])
    factors = Table("Growth by factor: each multiplier alone, then all three",
                    [Column("factor", "factor"), Column("multiplier", "×"),
                     Column("applied", "applied as"),
                     Column("flops_predicted", "FLOPs pred.", "ratio"),
                     Column("flops_actual", "FLOPs actual", "ratio"),
                     Column("flops_deviation", "dev.", "pct"),
                     Column("params_predicted", "params pred.", "ratio"),
                     Column("params_actual", "params actual", "ratio"),
                     Column("params_deviation", "dev.", "pct")], frows,
                    notes=["Rounding: channels to the family's rule, repeats to ceil(n·d), the "
                           "input to whole pixels and each strided map to whole cells; layers "
                           "that do not scale (the input channels, the classes, fixed widths) "
                           "pull growth below the prediction."])

    def pair(g: StageGrowth, fn) -> str:
        return " → ".join(fn(x) if x is not None else "—" for x in (g.base, g.scaled))

    srows = [{"stage": g.name,
              "layers": pair(g, lambda x: str(x.layers)),
              "channels": pair(g, lambda x: str(x.out.c)),
              "output": pair(g, lambda x: str(x.out) if x.out.flat else f"{x.out.h}×{x.out.w}"),
              "flops": g.scaled.flops if g.scaled else None,
              "flops_growth": _ratio(g.scaled.flops, g.base.flops) if g.base and g.scaled else None,
              "params": g.scaled.params if g.scaled else None,
              "params_growth": (_ratio(g.scaled.params, g.base.params)
                                if g.base and g.scaled else None)}
             for g in s.stages]
    stages = Table("By stage (base → scaled)",
                   [Column("stage", "stage"), Column("layers", "layers"),
                    Column("channels", "out channels"), Column("output", "output map"),
                    Column("flops", "FLOPs", "si"), Column("flops_growth", "growth", "ratio"),
                    Column("params", "params", "si"),
                    Column("params_growth", "growth", "ratio")], srows,
                   notes=["layers = layers holding multiply-adds (conv, depthwise, linear); "
                          f"predicted growth: FLOPs {predicted['flops']:.4g}×, params "
                          f"{predicted['params']:.4g}×"])
    return [totals, factors, stages]


def point_record(p: Point, result: SweepResult, i: int) -> dict[str, Any]:
    """One sweep row with raw numbers (the JSON and CSV contract)."""
    rec: dict[str, Any] = {"model": p.model}
    if any(a.kind == "variant" for a in result.axes):
        rec["variant"] = p.variant
    for k, v in p.vars.items():
        rec[k if k not in _RESERVED else f"var_{k}"] = v
    rec.update(width=p.width, depth=p.depth)
    if p.resolution is not None:
        rec["resolution"] = p.resolution
    rec.update(input=list(p.input), flops=p.totals.flops, params=p.totals.params,
               mac=p.totals.mac, mac_bytes=p.totals.mac * result.options.dtype_bytes,
               peak_activation=p.totals.peak_activation, pareto=i in result.front,
               fits=result.fits[i] if result.budget else None, best=i == result.best)
    return rec


_RESERVED = frozenset({"model", "variant", "width", "depth", "resolution", "input", "input_h",
                       "input_w", "flops", "params", "mac", "mac_bytes", "peak_activation",
                       "pareto", "fits", "best"})


def best_text(result: SweepResult) -> str | None:
    """One line naming the largest configuration within the budget (or saying none fits)."""
    if not result.budget:
        return None
    if result.best is None:
        small = min(result.points, key=lambda p: (p.totals.flops, p.totals.params))
        return (f"nothing fits {result.budget.describe()}; the smallest configuration, "
                f"{_describe(small, result.axes)}, has {si(small.totals.flops)} FLOPs and "
                f"{si(small.totals.params)} params")
    p = result.points[result.best]
    return (f"largest within {result.budget.describe()}: {_describe(p, result.axes)} — "
            f"{si(p.totals.flops)} FLOPs, {si(p.totals.params)} params, {si(p.totals.mac)} MAC")


def sweep_payload(result: SweepResult, conventions: dict[str, Any]) -> dict[str, Any]:
    """The ``sweep --format json`` contract."""
    return {
        "model": result.model,
        "axes": [{"axis": a.key, "kind": a.kind,
                  "values": [list(v) if isinstance(v, tuple) else v for v in a.values]}
                 for a in result.axes],
        "pareto": {"gain": "flops", "cost": result.cost,
                   "rule": "no other configuration has at least its FLOPs for at most its "
                           f"{result.cost} (one strictly)",
                   "among": "within budget" if result.budget else "all"},
        "budget": result.budget.limits() or None,
        "rows": [point_record(p, result, i) for i, p in enumerate(result.points)],
        "best": (point_record(result.points[result.best], result, result.best)
                 if result.best is not None else None),
        "best_text": best_text(result),
        "skipped": [{"configuration": c, "error": e} for c, e in result.skipped],
        "conventions": conventions,
    }


def sweep_table(result: SweepResult, *, raw: bool = False, front_only: bool = False) -> Table:
    """The grid as a Table: the swept axes, the metrics, the front and budget marks.

    ``raw`` (CSV) gives every configuration column and the input as input_h, input_w."""
    records = [point_record(p, result, i) for i, p in enumerate(result.points)]
    keep = [i for i in range(len(records)) if not front_only or i in result.front]
    cols: list[Column] = []
    swept = {a.kind for a in result.axes}
    if raw:
        cols.append(Column("model", "model"))
    if "variant" in swept:
        cols.append(Column("variant", "variant"))
    for a in result.axes:
        if a.kind == "var":
            k = a.var if a.var not in _RESERVED else f"var_{a.var}"
            cols.append(Column(k, a.label))
    for k in ("depth", "width", "resolution"):
        if k in swept or (raw and k != "resolution"):
            cols.append(Column(k, k))
    # variants may set their own input sizes: show them whenever they differ
    one_input = len({p.input for p in result.points}) == 1
    if raw:
        cols += [Column("input_h", "input_h"), Column("input_w", "input_w")]
    elif swept & {"input", "resolution"} or not one_input:
        cols.append(Column("input_hw", "input"))
    cols += [Column("flops", "FLOPs", "si"), Column("params", "params", "si"),
             Column("mac", "MAC", "si"), Column("peak_activation", "peak act.", "si")]
    rows = []
    for i in keep:
        rec = dict(records[i])
        rec.update(input_h=rec["input"][0], input_w=rec["input"][1],
                   input_hw=_hw(tuple(rec["input"])))
        if raw:
            rec.update(pareto=int(rec["pareto"]), best=int(rec["best"]),
                       fits="" if rec["fits"] is None else int(rec["fits"]))
        else:
            rec.update(pareto="●" if rec["pareto"] else "",
                       fits="✓" if rec["fits"] else "", best="◀ best" if rec["best"] else "")
        rows.append(rec)
    cols.append(Column("pareto", "front" if not raw else "pareto"))
    if result.budget:
        cols += [Column("fits", "fits"), Column("best", "best")]
    first = result.points[0]
    fixed = [f"{k} {getattr(first, k):g}" for k in ("depth", "width") if k not in swept]
    if not swept & {"input", "resolution"} and one_input:
        fixed.append(f"input {_hw(first.input)}")
    title = (f"{result.model} sweep: {len(result.points)} configurations"
             + (f" ({', '.join(fixed)})" if fixed else ""))
    among = " within the budget" if result.budget else ""
    notes = [result.options.describe(),
             f"front (●): Pareto front of FLOPs vs {result.cost}{among} — no other configuration"
             f"{among} has at least its FLOPs for at most its {result.cost}; width, depth and "
             "resolution are relative to the model as named"]
    if (line := best_text(result)) is not None:
        notes.append(line)
    if result.skipped:
        notes.append(f"{len(result.skipped)} configurations skipped (they do not evaluate), "
                     f"e.g. {result.skipped[0][0]}: {result.skipped[0][1]}")
    return Table(title, cols, rows, notes=notes)


def plot_sweep(result: SweepResult, fmt: str = "png") -> bytes:
    """FLOPs against params (or MAC) for every configuration, the Pareto front as a line, the
    budget as dashed limits and the best configuration circled, as a ``fmt`` (png, svg, pdf)
    image. matplotlib is imported here (Agg backend), never on the analytic path."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    cost = result.cost
    xs = [p.totals.flops for p in result.points]
    ys = [getattr(p.totals, cost) for p in result.points]
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=120)
    inside = [i for i, ok in enumerate(result.fits) if ok or not result.budget]
    outside = [i for i in range(len(xs)) if i not in set(inside)]
    ax.scatter([xs[i] for i in outside], [ys[i] for i in outside], s=14, color="0.75",
               label="over budget")
    ax.scatter([xs[i] for i in inside], [ys[i] for i in inside], s=14, color="tab:blue",
               label="within budget" if result.budget else "configurations")
    front = sorted(result.front, key=lambda i: (xs[i], ys[i]))
    ax.plot([xs[i] for i in front], [ys[i] for i in front], "-o", color="tab:orange", ms=4,
            lw=1.5, label=f"Pareto front (most FLOPs for the {cost})")
    limits = result.budget.limits()
    if "flops" in limits:
        ax.axvline(limits["flops"], ls="--", color="tab:red", lw=1)
    if cost in limits:
        ax.axhline(limits[cost], ls="--", color="tab:red", lw=1)
    if result.best is not None:
        ax.scatter([xs[result.best]], [ys[result.best]], s=140, facecolors="none",
                   edgecolors="tab:red", linewidths=2,
                   label="largest within " + result.budget.describe())
    ticks = FuncFormatter(lambda v, _: si(v))
    ax.xaxis.set_major_formatter(ticks)
    ax.yaxis.set_major_formatter(ticks)
    ax.set_xlabel("FLOPs (multiply-adds)" if result.options.flops_per_madd == 1 else "FLOPs")
    ax.set_ylabel(METRIC_LABELS[cost] + (" (elements read + written)" if cost == "mac" else ""))
    axes = ", ".join(a.label for a in result.axes) or "no axes"
    ax.set_title(f"{result.model}: {len(xs)} configurations over {axes}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt)
    finally:
        plt.close(fig)
    return buf.getvalue()
