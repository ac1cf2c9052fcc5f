"""Design-space sweeps: a grid of configurations of one model (widths, depths, resolutions or
input sizes, spec variables, declared variants), each evaluated, the Pareto front of FLOPs
against params or MAC marked, and the largest configuration within a budget named.

The front is named for what it is, "most FLOPs for the least params" (``front_name``): FLOPs
are the *gain* there, the compute a configuration spends, read as capacity bought for its
params (or MAC). A front with FLOPs and params both as costs would be meaningless on a grid:
width, depth and resolution only add to both, so the smallest configuration dominates every
other and the front is one point.

Width and depth are *absolute*: the α and d of the evaluated network, as ``compare --width``
means it (``sweep mobilenet-0.5 --width 1`` evaluates MobileNet at α = 1); a width or depth not
swept is the model's own. Resolution multiplies the spec's input (``--input`` gives sizes).
Views (records, the table) are in ``sweep_views``; the plot in ``costmodel.report.plots``.

With a latency profile (``costmodel calibrate``), each configuration also has its predicted
latency (``costmodel.latency``): a column, a budget (``latency_ms``) and a front (``cost
"latency"``: most FLOPs for the least predicted latency). Only then is each configuration
evaluated with its rows (the prediction is per layer); without a profile a sweep evaluates
totals only, for speed, and loads nothing of the latency package.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Literal, Sequence

from costmodel.analysis.scale import METRIC_LABELS, hw_text, scaled_input
from costmodel.engine import Totals, evaluate
from costmodel.errors import CostModelError, LimitError, ShapeError
from costmodel.layers.base import check_multiplier
from costmodel.options import LATENCY, LATENCY_LABEL, Options, parse_input
from costmodel.render.format import si
from costmodel.spec.model import ModelSpec

MAX_GRID_POINTS = 100_000
"""A sweep refuses larger grids (a mistyped step), rather than run for hours."""

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
                    check_multiplier(v, kind)
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


BUDGET_OPTIONS = {"flops": "--max-flops", "params": "--max-params", "mac": "--max-mac",
                  "peak_activation": "--max-activation", LATENCY: "--max-latency"}

Cost = Literal["params", "mac", "latency"]
"""What a front minimizes for its FLOPs: params, MAC, or the predicted latency (a profile)."""


@dataclass(frozen=True)
class SweepBudget:
    """Upper limits on a sweep's configurations (metric → a whole count, or ``latency_ms`` →
    milliseconds of predicted latency); a configuration fits when it is within every one.
    Counts are written as a budgets file writes an absolute limit
    (``costmodel.budgets.parse_limit``: 300M, 2.5M, 1.2G, 1e6), latency as milliseconds
    (12.5 or 12.5ms)."""

    limits: dict[str, int | float] = field(default_factory=dict)

    def __post_init__(self):
        for key in self.limits:
            if key not in METRIC_LABELS and key != LATENCY:
                raise CostModelError(f"unknown budget metric {key!r} (limits are on "
                                     f"{', '.join([*METRIC_LABELS, LATENCY])})", field="budget")

    @classmethod
    def parse(cls, **texts: str | None) -> "SweepBudget":
        """From the texts of the options (``flops="300M"``); None is no limit."""
        from costmodel.budgets import parse_limit

        limits = {}
        for key, text in texts.items():
            if text is None:
                continue
            if key == LATENCY:
                limits[key] = _milliseconds(text)
                continue
            what = f"{BUDGET_OPTIONS.get(key, key)}: {METRIC_LABELS.get(key, key)} budget"
            try:
                limit = parse_limit(text)
            except ValueError as e:
                raise CostModelError(f"{what} {e}") from None
            if limit.relative:
                raise CostModelError(f"{what} '{text}' is relative, and a sweep has no baseline: "
                                     "give a count (300M, 2.5M)")
            limits[key] = limit.absolute
        return cls(limits)

    def __bool__(self) -> bool:
        return bool(self.limits)

    @property
    def latency(self) -> bool:
        """Whether a limit is on the predicted latency (it needs a profile)."""
        return LATENCY in self.limits

    def fits(self, t: Totals, latency_ms: float | None = None) -> bool:
        return all((latency_ms if k == LATENCY else getattr(t, k)) <= v
                   for k, v in self.limits.items())

    def describe(self) -> str:
        return ", ".join(f"latency ≤ {v:g} ms" if k == LATENCY else
                         f"{METRIC_LABELS[k]} ≤ {si(v)}" for k, v in self.limits.items())


def _milliseconds(text: str) -> float:
    """A latency budget: milliseconds, ``12.5`` or ``12.5ms``."""
    what = f"{BUDGET_OPTIONS[LATENCY]}: {LATENCY_LABEL} budget"
    number = str(text).strip()
    number = number[:-2] if number.lower().endswith("ms") else number
    value = _number(number, what)
    if value < 0:
        raise CostModelError(f"{what} '{text}' must be a non-negative number of milliseconds")
    return value


@dataclass(frozen=True)
class Point:
    """One configuration of a sweep and what it costs."""

    model: str
    variant: str | None
    vars: dict[str, Any]
    width: float
    """The network's α (absolute, as ``compare --width``)."""
    depth: float
    """The network's depth multiplier d (absolute)."""
    resolution: float | None
    """The multiplier of the spec's input, where the grid has a resolution axis."""
    input: tuple[int, int]
    totals: Totals | None = None
    latency_ms: float | None = None
    """The predicted latency in milliseconds (None without a profile)."""

    def metric(self, key: str) -> int | float:
        """A total by its key, or the predicted latency (``latency`` or ``latency_ms``)."""
        return self.latency_ms if key in ("latency", LATENCY) else getattr(self.totals, key)


@dataclass(frozen=True)
class SweepResult:
    model: str
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]
    front: frozenset[int]
    """Indices of the Pareto front: no other point has as many FLOPs or more for no more of
    ``cost`` (one of them strictly). With a budget, among the points within it."""
    cost: Cost
    budget: SweepBudget
    fits: tuple[bool, ...]
    best: int | None
    """The largest configuration within the budget: the most FLOPs, then the fewest params,
    then the least MAC; None without a budget or when nothing fits."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(configuration, why) for points that could not be evaluated, with ``skip_invalid``."""
    options: Options = field(default_factory=Options)
    latency_note: str | None = None
    """What predicted each point's ``latency_ms`` (the profile, by its file name); None
    without a profile."""


def front_name(cost: str) -> str:
    """What the front is, in words, for help, titles, notes and JSON: FLOPs are its gain."""
    what = {"mac": "MAC", "latency": "predicted latency"}.get(cost, cost)
    return f"most FLOPs for the least {what}"


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


def describe_point(p: Point, axes: Sequence[Axis]) -> str:
    """The configuration by its swept values: ``width 0.5, input 128×128``."""
    parts = []
    for a in axes:
        if a.kind == "variant":
            parts.append(f"variant {p.variant}")
        elif a.kind == "var":
            parts.append(f"{a.var}={p.vars[a.var]}")
        elif a.kind == "input":
            parts.append(f"input {hw_text(p.input)}")
        elif a.kind == "resolution":
            parts.append(f"resolution {p.resolution:g} ({hw_text(p.input)})")
        else:
            parts.append(f"{a.kind} {getattr(p, a.kind):g}")
    return ", ".join(parts) or "the model as named"


def _load(model: str | os.PathLike | ModelSpec, input=None) -> ModelSpec:
    """The spec of ``model``; a Python target is traced at ``input`` (its default when None)."""
    from costmodel.targets import resolve_model

    return model if isinstance(model, ModelSpec) else resolve_model(os.fspath(model), input)


def _is_target(model: str | os.PathLike | ModelSpec) -> bool:
    from costmodel.targets import is_target

    return not isinstance(model, ModelSpec) and is_target(os.fspath(model))


def _spec_at(model: str | os.PathLike | ModelSpec, spec: ModelSpec, hw: tuple[int, int],
             target: bool) -> ModelSpec:
    """The spec to evaluate at ``hw``: a Python target (``target``) traced at that size (a
    module's shapes need not follow from its first input's: a flatten before a linear fixes
    them; each size is traced once, ``targets.load_target`` caches it), any other model's
    own spec."""
    return _load(model, hw) if target and hw != spec.input_hw else spec


def _settings(model: str | ModelSpec, variants: list[Axis] | None, var_axes: list[Axis] | None,
              input=None):
    """(variant, variables, spec) for each variant × variable setting: the spec is loaded again
    for each, since variants and variables change the layers themselves. A Python target is
    traced at ``input``."""
    from costmodel.spec.loader import load_spec
    from costmodel.spec.zoo import locate

    if not variants and not var_axes:
        yield None, {}, _load(model, input)
        return
    if isinstance(model, ModelSpec) or _is_target(model):
        what = "a loaded spec" if isinstance(model, ModelSpec) else "a Python target"
        raise CostModelError(f"variant and variable axes need a zoo name or a spec file, "
                             f"not {what}")
    file, pieces = locate(os.fspath(model))
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


def parse_grid(model: str | ModelSpec, *, variant: str | None = None,
               depth: str | None = None, width: str | None = None,
               resolution: str | None = None, input: str | None = None,
               var: Iterable[str] = (), groups: str | None = None) -> tuple[Axis, ...]:
    """The axes of a grid as the command line gives them: each a text for ``parse_axis``,
    ``var`` as NAME=VALUES items, ``groups`` the values of the spec's group variable."""
    axes = [parse_axis(kind, text) for kind, text in
            (("variant", variant), ("depth", depth), ("width", width),
             ("resolution", resolution), ("input", input)) if text is not None]
    for item in var:
        key, sep, values = item.partition("=")
        if not sep or not key.strip():
            raise CostModelError(f"--var {item}: write NAME=VALUES, e.g. g=1,2,3,4,8")
        axes.append(parse_axis("var", values, key.strip()))
    if groups is not None:
        if _is_target(model):  # refused before it is traced: a target declares no variables
            raise CostModelError("--groups sweeps a spec's group variable; a Python target "
                                 "has none (give the group count as its argument)",
                                 field="groups")
        axes.append(parse_axis("var", groups, groups_var(_load(model))))
    if not axes:
        raise CostModelError("nothing to sweep: give --width, --depth, --resolution, --input, "
                             "--var, --groups or --variant")
    return tuple(axes)


def _group_hint(spec: ModelSpec, axes: Sequence[Axis]) -> str:
    """For a group count that does not divide a width: the variants that set matching ones."""
    if spec.variants and any(a.kind == "var" and a.var in GROUP_VARS for a in axes):
        return (f"; a group count may need matching widths, which {spec.name}'s variants set "
                f"({', '.join(spec.variants)}): try --variant")
    return ""


def _profile(profile, budget: SweepBudget, cost: str):
    """(the Profile, the note naming it) from a Profile or a profile file (named by its file
    name only: an output states no path of the machine); (None, None) without one, which a
    latency budget or front refuses. The latency package loads only when a profile is given."""
    if profile is None:
        for needs, option in ((budget.latency, "--max-latency"),
                              (cost == "latency", "--pareto latency")):
            if needs:
                raise CostModelError(f"{option} needs a latency profile (--profile FILE or "
                                     "COSTMODEL_PROFILE; costmodel calibrate writes one)")
        return None, None
    from costmodel.latency import Profile, load_profile

    if isinstance(profile, Profile):
        return profile, profile.describe()
    loaded = load_profile(profile)
    return loaded, f"{loaded.describe()}: {os.path.basename(os.fspath(profile))}"


def sweep(model: str | ModelSpec, axes: Sequence[Axis], *, budget: SweepBudget = SweepBudget(),
          options: Options = Options(), cost: Cost = "params",
          input=None, skip_invalid: bool = False, profile=None) -> SweepResult:
    """Evaluate every configuration of the grid spanned by ``axes``.

    ``model`` is a zoo name or spec path (or, without variant/var axes, a ModelSpec or a
    Python target, traced at each input size of the grid: ``input``, the default 224, each
    ``input`` axis value, each resolution's). Width and
    depth are the evaluated network's α and d (absolute; not swept, the spec's own); resolution
    multiplies the input (``input=``, default the spec's); ``input`` sizes are absolute. A
    configuration that does not evaluate (a collapsed feature map, groups that do not divide)
    is an error naming it, or, with ``skip_invalid``, is left out and listed in ``skipped``.

    ``profile`` (a ``costmodel.latency.Profile`` or a profile file) adds each configuration's
    predicted latency (``Point.latency_ms``); a ``latency_ms`` budget or ``cost="latency"``
    needs one.
    """
    latency, latency_note = _profile(profile, budget, cost)
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
    # a target is traced first where the grid starts (an input axis's first size): not at
    # its default 224, which the grid may never use
    first = input if input is not None or "input" not in by_kind else values("input")[0]
    target = _is_target(model)
    for variant, var_set, spec in _settings(model, by_kind.get("variant"), by_kind.get("var"),
                                            first):
        base_hw = parse_input(input) if input is not None else spec.input_hw
        for depth, width, res, hw in shapes:
            hw = scaled_input(base_hw, res) if res is not None else (hw or base_hw)
            point = Point(spec.name, variant, var_set, spec.width if width is None else width,
                          spec.depth if depth is None else depth, res, hw)
            try:
                # totals only unless a profile needs the rows (the speed of a plain sweep)
                evaluated = evaluate(_spec_at(model, spec, hw, target), input=hw,
                                     width=point.width, depth=point.depth, options=options,
                                     totals_only=latency is None)
            except CostModelError as e:
                where = describe_point(point, ordered)
                if not skip_invalid:
                    e.message = f"{e.message} (at {where})"
                    if isinstance(e, ShapeError):
                        e.message += _group_hint(spec, ordered)
                    raise
                skipped.append((where, str(e)))
                continue
            ms = None if latency is None else _predict(evaluated, latency)
            points.append(replace(point, totals=evaluated.totals, latency_ms=ms))
    if not points:
        raise CostModelError(f"no configuration of the grid evaluates ({len(skipped)} tried; "
                             f"first: {skipped[0][0]}: {skipped[0][1]})" if skipped else
                             "the grid is empty")
    fits = tuple(budget.fits(p.totals, p.latency_ms) for p in points)
    fitting = [i for i, ok in enumerate(fits) if ok]
    # with a budget, the front of what fits it (the front of the whole grid is its
    # largest-resolution edge, mostly over budget)
    candidates = fitting if budget else list(range(len(points)))
    sub = pareto_front([(points[i].totals.flops, points[i].metric(cost)) for i in candidates])
    front = frozenset(candidates[k] for k in sub)
    best = min(fitting, key=lambda i: (-points[i].totals.flops, points[i].totals.params,
                                       points[i].totals.mac, i)) \
        if budget and fitting else None
    name = model.name if isinstance(model, ModelSpec) else os.fspath(model)
    return SweepResult(name, ordered, tuple(points), front, cost, budget, fits, best,
                       tuple(skipped), options, latency_note)


def _predict(result, profile) -> float:
    """Predicted total milliseconds of an evaluated configuration (imported here: only a sweep
    with a profile loads the latency package)."""
    from costmodel.latency import latency_ms

    return latency_ms(result, profile)[1]
