"""What ``costmodel scale`` shows: the JSON record and the Tables of a Scaling (totals, each
factor alone, each stage), and the file ``--write`` takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costmodel.analysis.scale import (METRIC_LABELS, GroupStats, Multipliers, Scaling,
                                      StageGrowth, fmt, hw_text, ratio)
from costmodel.errors import CostModelError
from costmodel.render import Column, Table

SPEC_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


def format_by_suffix(path: str, formats: dict[str, str], what: str) -> str:
    """The format a file name's suffix asks for (``formats``: suffix → format), or an error
    naming the option ``what`` and the suffixes it takes."""
    suffix = Path(path).suffix.lower()
    if suffix not in formats:
        raise CostModelError(f"{what} {path}: use a {', '.join(formats)} file name")
    return formats[suffix]


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
    """The factors, then what they make of the network: its α, its d and its input."""
    m, b, n = s.multipliers, s.base, s.scaled
    how = f"φ = {m.phi:g}" if m.phi is not None else "scaled"
    return (f"{b.model} {how}: width ×{fmt(m.width)}, depth ×{fmt(m.depth)}, "
            f"resolution ×{fmt(m.resolution)} → {s.spec.name} (α {fmt(b.width)} → "
            f"{fmt(n.width)}, depth {fmt(b.depth)} → {fmt(n.depth)}, {hw_text(b.input)} → "
            f"{hw_text(n.input)})")


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
    totals = Table(_title(s),
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
        r["multiplier"] = "" if r["multiplier"] is None else fmt(r["multiplier"])
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
              "flops_growth": ratio(g.scaled.flops, g.base.flops) if g.base and g.scaled else None,
              "params": g.scaled.params if g.scaled else None,
              "params_growth": (ratio(g.scaled.params, g.base.params)
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
