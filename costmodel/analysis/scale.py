"""Scaling a model by width, depth and resolution multipliers, or EfficientNet's compound
coefficient φ, and measuring what the multipliers do: the actual growth of every metric next to
the growth they predict (FLOPs ∝ d·w²·r²), factor by factor and stage by stage, so that the
effects of rounding (channels to the family's rule, repeats to ceil(n·d), the input to whole
pixels, strided maps to whole cells) are visible.

The multipliers here are *factors*, relative to the model as named: ``mobilenet-0.5`` scaled by
width factor 2 is MobileNet at α = 1 (the scaled network's own α and d are in ``Scaling.scaled``).
Views (records, tables) are in ``scale_views``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from costmodel.analysis._tree import WEIGHTED  # the rows counted as a stage's depth
from costmodel.engine import Result, Row, Totals, evaluate
from costmodel.errors import CostModelError
from costmodel.layers.base import check_multiplier
from costmodel.options import METRIC_LABELS as _LABELS
from costmodel.options import METRICS, Options, parse_input
from costmodel.shape import Shape
from costmodel.spec.model import ModelSpec

METRIC_LABELS = {m: _LABELS[m] for m in METRICS}
"""The totals scaling compares, with their labels (from costmodel.options)."""


# --------------------------------------------------------------------------------------------
# Multipliers
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Coefficients:
    """EfficientNet's compound-scaling coefficients (Tan & Le 2019, eq. 3): depth α^φ,
    width β^φ, resolution γ^φ, chosen so that α·β²·γ² ≈ 2 (FLOPs double per unit of φ)."""

    alpha: float = 1.2
    beta: float = 1.1
    gamma: float = 1.15

    def __post_init__(self):
        for name in ("alpha", "beta", "gamma"):
            check_multiplier(getattr(self, name), name)

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
            check_multiplier(getattr(self, name), name)

    @classmethod
    def compound(cls, phi: float, coefficients: Coefficients = EFFICIENTNET) -> "Multipliers":
        """EfficientNet's compound scaling: d = α^φ, w = β^φ, r = γ^φ."""
        if not isinstance(phi, (int, float)) or not math.isfinite(phi):
            raise CostModelError(f"φ must be a finite number, got {phi!r}", field="phi")
        c = coefficients

        def power(base: float, name: str) -> float:
            try:
                return base ** phi
            except OverflowError:  # 1.15 ** 5079: far past any multiplier allowed anyway
                raise CostModelError(f"φ = {phi:g} makes the {name} multiplier {base:g}^{phi:g}, "
                                     "too large to compute", field="phi") from None

        return cls(width=power(c.beta, "width"), depth=power(c.alpha, "depth"),
                   resolution=power(c.gamma, "resolution"), phi=float(phi), coefficients=c)

    @classmethod
    def given(cls, *, width: float | None = None, depth: float | None = None,
              resolution: float | None = None, phi: float | None = None,
              alpha: float | None = None, beta: float | None = None,
              gamma: float | None = None) -> "Multipliers":
        """The multipliers a user gave (``costmodel scale``'s options): factors, any missing one
        1, or φ with optional coefficients (the others EfficientNet's) — not both."""
        factors = {"--width-factor": width, "--depth-factor": depth,
                   "--resolution-factor": resolution}
        named = [k for k, v in factors.items() if v is not None]
        coefficients = {k: v for k, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma))
                        if v is not None}
        if phi is not None and named:
            raise CostModelError(f"give either --phi or {', '.join(named)}, not both")
        if phi is None and coefficients:
            raise CostModelError("--alpha, --beta and --gamma apply to compound scaling: add --phi")
        if phi is not None:
            return cls.compound(phi, Coefficients(**coefficients))
        if not named:
            raise CostModelError("give a multiplier: --width-factor, --depth-factor, "
                                 "--resolution-factor, or --phi")
        return cls(*(1.0 if v is None else v for v in factors.values()))

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
        return ratio(getattr(self.scaled.totals, metric), getattr(self.base.totals, metric))


def ratio(new: float, old: float) -> float | None:
    return new / old if old else None


def _growths(new: Totals, old: Totals) -> dict[str, float | None]:
    return {m: ratio(getattr(new, m), getattr(old, m))
            for m in ("flops", "params", "mac", "peak_activation")}


def hw_text(hw: tuple[int, int]) -> str:
    return f"{hw[0]}×{hw[1]}"


def fmt(v: float) -> str:
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
               f"{hw_text(base_hw)}: {how}, width ×{fmt(m.width)}, depth ×{fmt(m.depth)}, "
               f"resolution ×{fmt(m.resolution)} ({hw_text(input_hw)})."],
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
    where = f"scaled to width ×{fmt(m.width)}, depth ×{fmt(m.depth)}, input {hw_text(new_hw)}"
    scaled = _at(where, evaluate, new_spec, options=options)
    only_width = _at(f"width ×{fmt(m.width)}", evaluate, spec, input=base_hw,
                     width=spec.width * m.width, options=options, totals_only=True)
    only_depth = _at(f"depth ×{fmt(m.depth)}", evaluate, spec, input=base_hw,
                     depth=spec.depth * m.depth, options=options)
    only_res = _at(f"input {hw_text(new_hw)}", evaluate, spec, input=new_hw, options=options,
                   totals_only=True)

    def layers(r: Result) -> int:
        return sum(row.category in WEIGHTED for row in r.rows)

    factors = (
        Factor("width", m.width, f"α {spec.width:g} → {fmt(spec.width * m.width)}, "
                                 f"{_rounding_text(spec)}",
               Multipliers(width=m.width).predicted(), _growths(only_width.totals, base.totals)),
        Factor("depth", m.depth, f"{layers(base)} → {layers(only_depth)} layers",
               Multipliers(depth=m.depth).predicted(), _growths(only_depth.totals, base.totals)),
        Factor("resolution", m.resolution, f"{hw_text(base_hw)} → {hw_text(new_hw)}",
               Multipliers(resolution=m.resolution).predicted(),
               _growths(only_res.totals, base.totals)),
        Factor("combined", None, "all three", m.predicted(), _growths(scaled.totals, base.totals)),
    )
    notes = []
    if m.depth != 1 and layers(only_depth) == layers(base):
        notes.append(f"depth ×{fmt(m.depth)} changes nothing here: {spec.name} has no `repeat` "
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
