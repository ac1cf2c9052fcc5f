"""The report's own views: plain data and Tables from Results, like costmodel.views."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from costmodel.engine import Result
from costmodel.options import METRIC_LABELS, METRICS, Conventions
from costmodel.render import Column, Table
from costmodel.render.format import pct, si
from costmodel.views import breakdown_records


def without_conventions(table: Table) -> Table:
    """The table without its conventions note (the report states them once, at the top)."""
    return replace(table, notes=[n for n in table.notes if not isinstance(n, Conventions)])


def largest_layer_records(result: Result, metric: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` layers with the most ``metric`` (execution order breaks ties), with shares."""
    t = result.totals
    ranked = sorted(enumerate(result.rows), key=lambda ir: (-getattr(ir[1], metric), ir[0]))
    return [{"rank": k + 1, "path": r.path, "type": r.type, "output": str(r.out),
             "flops": r.flops, "flops_share": r.flops / t.flops if t.flops else None,
             "mac": r.mac, "mac_share": r.mac / t.mac if t.mac else None, "params": r.params}
            for k, (_, r) in enumerate(ranked[:n]) if getattr(r, metric) > 0]


def largest_layers_table(result: Result, metric: str, n: int = 8) -> Table:
    cols = [Column("rank", "#", "int"), Column("path", "layer"), Column("type", "type"),
            Column("output", "output"), Column("flops", "FLOPs", "si"),
            Column("flops_share", "% FLOPs", "pct"), Column("mac", "MAC", "si"),
            Column("mac_share", "% MAC", "pct"), Column("params", "params", "si")]
    return Table(f"{result.model} — the {n} layers with the most {METRIC_LABELS[metric]}", cols,
                 largest_layer_records(result, metric, n))


def highlights(labels: list[str], results: list[Result]) -> list[str]:
    """Which compared model is lowest on each metric, as Markdown bullet items."""
    if len(results) < 2:
        return []
    items = []
    for m in METRICS:
        values = [getattr(r.totals, m) for r in results]
        low, high = min(values), max(values)
        if low == high:
            items.append(f"{METRIC_LABELS[m][:1].upper()}{METRIC_LABELS[m][1:]}: the same for "
                         f"all ({si(low)}).")
            continue
        best = [lab for lab, v in zip(labels, values) if v == low]
        worst = next(lab for lab, v in zip(labels, values) if v == high)
        spread = f"; the highest, {worst}, is {high / low:.3g}× that" if low else ""
        items.append(f"Lowest {METRIC_LABELS[m]}: **{', '.join(best)}** ({si(low)}{spread}).")
    return items


def where_cost_sits(result: Result) -> str:
    """One sentence: the layer types holding the most FLOPs and the most MAC."""
    records = breakdown_records(result)
    parts = []
    for metric in ("flops", "mac"):
        top = max(records, key=lambda r: r[metric], default=None)
        if top and top[metric]:
            parts.append(f"most {METRIC_LABELS[metric]} sit in **{top['label']}** layers "
                         f"({pct(top[f'{metric}_share'])})")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""
