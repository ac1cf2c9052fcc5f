"""What each command shows, as plain data and Tables: small pure functions from Results."""

from __future__ import annotations

from typing import Any

from costmodel.engine import CATEGORY_LABELS, Result
from costmodel.options import METRICS
from costmodel.render import Column, Table


def compare_records(results: list[Result]) -> list[dict[str, Any]]:
    """One record per model with raw integers (the ``compare --format json`` contract):
    ``in_channels``, ``num_classes`` and ``warnings`` (how the model differs from the first,
    the baseline of every ``*_rel``, in head or input) are additions to the original fields."""
    base = results[0] if results else None
    records = []
    for r in results:
        t = r.totals
        rec: dict[str, Any] = {"model": r.model, "input": list(r.input), "flops": t.flops,
                               "params": t.params, "mac": t.mac,
                               "mac_bytes": t.mac * r.options.dtype_bytes,
                               "peak_activation": t.peak_activation,
                               "in_channels": r.in_channels, "num_classes": r.num_classes}
        for m in METRICS:
            b = getattr(base.totals, m)
            rec[f"{m}_rel"] = getattr(t, m) / b if b else None
        rec["warnings"] = _differences(r, base)
        records.append(rec)
    return records


def _differences(r: Result, base: Result) -> list[str]:
    """Why ``r`` is not a like-for-like comparison with ``base``: another head (class count)
    or another input. Empty for the same head and input."""
    out = []
    if r is base:
        return out
    if r.num_classes != base.num_classes:
        out.append(f"{r.model} has {r.num_classes} classes, {base.model} {base.num_classes}: "
                   "the heads differ (--classes N compares like for like)")
    if (r.in_channels, *r.input) != (base.in_channels, *base.input):
        out.append(f"{r.model}'s input is {_chw(r)}, {base.model}'s {_chw(base)} "
                   "(--input N compares like for like)")
    return out


def _chw(r: Result) -> str:
    return "×".join(map(str, (r.in_channels, *r.input)))


def compare_table(results: list[Result]) -> Table:
    """The comparison; a model whose head or input differs from the first is marked (⚠ in
    the classes or input cell) and explained under the table."""
    first = results[0].model if results else ""
    cols = [Column("model", "model"), Column("input_hw", "input"),
            Column("num_classes", "classes", "int"),
            Column("flops", "FLOPs", "si"), Column("flops_rel", "rel.", "ratio"),
            Column("params", "params", "si"), Column("params_rel", "rel.", "ratio"),
            Column("mac", "MAC", "si"), Column("mac_rel", "rel.", "ratio"),
            Column("mac_bytes", "MAC bytes", "si"),
            Column("peak_activation", "peak act.", "si"),
            Column("peak_activation_rel", "rel.", "ratio")]
    records = compare_records(results)
    rows = [{**rec, "input_hw": "×".join(map(str, rec["input"]))} for rec in records]
    marks = set()
    if results:
        base = results[0]
        for i, r in enumerate(results):
            if r.num_classes != base.num_classes:
                marks.add((i, "num_classes"))
            if (r.in_channels, *r.input) != (base.in_channels, *base.input):
                marks.add((i, "input_hw"))
    warnings = [f"⚠ {w}" for rec in records for w in rec["warnings"]]
    notes = [results[0].options.conventions(), f"rel. = relative to {first}; input = H×W; "
             "peak act. = largest feature map (elements)", *warnings] if results else []
    return Table("Model comparison", cols, rows, notes=notes, marks=marks)


def _shape(s) -> list[int]:
    return s.as_list()


def layer_records(result: Result) -> list[dict[str, Any]]:
    return [{"path": r.path, "type": r.type, "category": r.category, "stage": r.stage,
             "input": [_shape(s) for s in r.inputs], "output": _shape(r.out),
             "flops": r.flops, "params": r.params, "mac": r.mac, "activations": r.activations}
            for r in result.rows]


def totals_record(result: Result) -> dict[str, Any]:
    t = result.totals
    return {"flops": t.flops, "params": t.params, "mac": t.mac,
            "mac_bytes": t.mac * result.options.dtype_bytes, "peak_activation": t.peak_activation}


def breakdown_records(result: Result) -> list[dict[str, Any]]:
    """Share of FLOPs, params and MAC per layer category (MobileNet Table 2)."""
    t = result.totals
    return [{"category": c, "label": CATEGORY_LABELS.get(c, c), "flops": v.flops,
             "flops_share": v.flops / t.flops if t.flops else None, "params": v.params,
             "params_share": v.params / t.params if t.params else None, "mac": v.mac,
             "mac_share": v.mac / t.mac if t.mac else None}
            for c, v in result.by_category().items()]


def show_payload(result: Result) -> dict[str, Any]:
    """The ``show --format json`` contract."""
    return {"model": result.model, "input": list(result.input),
            "conventions": result.options.conventions().record(), "layers": layer_records(result),
            "totals": totals_record(result), "breakdown": breakdown_records(result)}


def layers_table(result: Result) -> Table:
    cols = [Column("path", "layer"), Column("type", "type"), Column("output", "output"),
            Column("flops", "FLOPs", "si"), Column("params", "params", "si"),
            Column("mac", "MAC", "si")]
    rows = [{"path": r.path, "type": r.type, "output": str(r.out), "flops": r.flops,
             "params": r.params, "mac": r.mac} for r in result.rows]
    t = totals_record(result)
    footer = [{"path": "total", "output": str(result.output), **t}]
    h, w = result.input
    return Table(f"{result.model} — {result.in_channels}×{h}×{w} input, per layer", cols, rows,
                 footer=footer, notes=[result.options.conventions(),
                                       f"peak activation: {t['peak_activation']:,} elements"])


def breakdown_table(result: Result) -> Table:
    cols = [Column("label", "layer type"), Column("flops", "FLOPs", "si"),
            Column("flops_share", "% FLOPs", "pct"), Column("params", "params", "si"),
            Column("params_share", "% params", "pct"), Column("mac", "MAC", "si"),
            Column("mac_share", "% MAC", "pct")]
    return Table(f"{result.model} — resources per layer type (MobileNet Table 2)", cols,
                 breakdown_records(result), notes=[result.options.conventions()])
