"""What each command shows, as plain data and Tables: small pure functions from Results."""

from __future__ import annotations

from typing import Any

from costmodel.engine import CATEGORY_LABELS, Result
from costmodel.options import LATENCY, LATENCY_LABEL, METRICS
from costmodel.render import Column, Table


def latency_of(results: list[Result], path: str | None
               ) -> tuple[list[list[float]] | None, str | None]:
    """The latency predicted from the profile at ``path`` (``--profile``, COSTMODEL_PROFILE):
    each result's milliseconds per row, and the note naming the profile (by its file name: an
    output states no path of the machine); (None, None) without one. The latency package,
    and the profile's validation, load only when a profile is given."""
    if not path:
        return None, None
    from pathlib import Path

    from costmodel.latency import latency_ms, load_profile

    profile = load_profile(path)
    return ([latency_ms(r, profile)[0] for r in results],
            f"{profile.describe()}: {Path(path).name}")


def compare_records(results: list[Result], latency: list[float] | None = None
                    ) -> list[dict[str, Any]]:
    """One record per model with raw integers (the ``compare --format json`` contract):
    ``in_channels``, ``num_classes`` and ``warnings`` (how the model differs from the first,
    the baseline of every ``*_rel``, in head or input) are additions to the original fields.
    ``latency``: each model's predicted milliseconds (a profile was given), added as
    ``latency_ms`` and ``latency_ms_rel``."""
    base = results[0] if results else None
    records = []
    for i, r in enumerate(results):
        t = r.totals
        rec: dict[str, Any] = {"model": r.model, "input": list(r.input), "flops": t.flops,
                               "params": t.params, "mac": t.mac,
                               "mac_bytes": t.mac * r.options.dtype_bytes,
                               "peak_activation": t.peak_activation,
                               "in_channels": r.in_channels, "num_classes": r.num_classes}
        for m in METRICS:
            b = getattr(base.totals, m)
            rec[f"{m}_rel"] = getattr(t, m) / b if b else None
        if latency is not None:
            rec[LATENCY] = latency[i]
            rec[f"{LATENCY}_rel"] = latency[i] / latency[0] if latency[0] else None
        rec.update(_apart(r))
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


def _latency_columns(latency_note: str | None, relative: bool = False) -> list[Column]:
    if latency_note is None:
        return []
    cols = [Column(LATENCY, LATENCY_LABEL, "ms")]
    return cols + [Column(f"{LATENCY}_rel", "rel.", "ratio", drop=2)] if relative else cols


def compare_table(results: list[Result], latency: list[float] | None = None,
                  latency_note: str | None = None) -> Table:
    """The comparison; a model whose head or input differs from the first is marked (⚠ in
    the classes or input cell) and explained under the table. ``latency`` (predicted ms per
    model) adds a latency column; ``latency_note`` says what predicted it."""
    first = results[0].model if results else ""
    cols = [Column("model", "model"), Column("input_hw", "input"),
            Column("num_classes", "classes", "int"),
            Column("flops", "FLOPs", "si"), Column("flops_rel", "rel.", "ratio", drop=2),
            Column("params", "params", "si"), Column("params_rel", "rel.", "ratio", drop=2),
            Column("mac", "MAC", "si"), Column("mac_rel", "rel.", "ratio", drop=2),
            Column("mac_bytes", "MAC bytes", "si", drop=1),
            Column("peak_activation", "peak act.", "si"),
            Column("peak_activation_rel", "rel.", "ratio", drop=2),
            *_latency_columns(latency_note if latency is not None else None, relative=True)]
    records = compare_records(results, latency)
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
             "peak act. = largest feature map (elements)", *warnings,
             *(n for r in results for n in caveats(r, named=True))] if results else []
    if latency is not None and latency_note:
        notes.append(latency_note)
    return Table("Model comparison", cols, rows, notes=notes, marks=marks)


def _shape(s) -> list[int]:
    return s.as_list()


def layer_records(result: Result, latency: list[float] | None = None) -> list[dict[str, Any]]:
    """One record per layer; ``latency`` (predicted ms per row) adds ``latency_ms``."""
    records = [{"path": r.path, "type": r.type, "category": r.category, "stage": r.stage,
                "input": [_shape(s) for s in r.inputs], "output": _shape(r.out),
                "flops": r.flops, "params": r.params, "mac": r.mac, "activations": r.activations,
                **({"training_only": True} if r.training_only else {})}
               for r in result.rows]
    if latency is not None:
        for rec, ms in zip(records, latency, strict=True):
            rec[LATENCY] = ms
    return records


def caveats(result: Result, named: bool = False) -> list[str]:
    """What a model's totals leave out or hold apart, for every output's notes: training-only
    params (aux blocks: counted in params, not run at inference) and layers of unknown cost
    (an import with unknown ops allowed: the totals exclude them). ``named``: say which model
    (compare's notes cover several)."""
    who = f"{result.model}: " if named else ""
    notes = []
    if result.aux_params:
        notes.append(f"{who}params include {result.aux_params:,} training-only (aux blocks: "
                     "not run at inference, so no FLOPs or MAC)")
    unknown = result.unknown
    if unknown:
        ops = ", ".join(f"{r.path} ({getattr(r.layer, 'op', '?')})" for r in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        notes.append(f"⚠ {who}costs exclude {len(unknown)} layer(s) of unknown cost: {ops}{more}")
    return notes


def totals_record(result: Result) -> dict[str, Any]:
    t = result.totals
    return {"flops": t.flops, "params": t.params, "mac": t.mac,
            "mac_bytes": t.mac * result.options.dtype_bytes, "peak_activation": t.peak_activation,
            **_apart(result)}


def _apart(result: Result) -> dict[str, Any]:
    """JSON fields only where a model has them: ``training_only_params`` (aux blocks, included
    in params) and ``unknown_layers`` (paths of layers of unknown cost, excluded from every
    total)."""
    out: dict[str, Any] = {}
    if result.aux_params:
        out["training_only_params"] = result.aux_params
    if result.unknown:
        out["unknown_layers"] = [r.path for r in result.unknown]
    return out


def breakdown_records(result: Result) -> list[dict[str, Any]]:
    """Share of FLOPs, params and MAC per layer category (MobileNet Table 2)."""
    t = result.totals
    return [{"category": c, "label": CATEGORY_LABELS.get(c, c), "flops": v.flops,
             "flops_share": v.flops / t.flops if t.flops else None, "params": v.params,
             "params_share": v.params / t.params if t.params else None, "mac": v.mac,
             "mac_share": v.mac / t.mac if t.mac else None}
            for c, v in result.by_category().items()]


def show_payload(result: Result, latency: list[float] | None = None,
                 profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``show --format json`` contract; with ``latency`` (predicted ms per row), each layer
    and the totals have ``latency_ms``, and ``latency_profile`` says what predicted them."""
    totals = totals_record(result)
    payload = {"model": result.model, "input": list(result.input),
               "conventions": result.options.conventions().record(),
               "layers": layer_records(result, latency), "totals": totals,
               "breakdown": breakdown_records(result)}
    if latency is not None:
        totals[LATENCY] = sum(latency)
        payload["latency_profile"] = profile
    return payload


SORT_KEYS = ("flops", "params", "mac", "activations", LATENCY)
"""What ``show --sort`` orders rows by (largest first; latency only with a profile)."""
_SUMMED = ("flops", "params", "mac", "activations", LATENCY)


def layer_view(result: Result, *, top: int | None = None, sort: str | None = None,
               depth: int | None = None, shapes: bool = False,
               latency: list[float] | None = None) -> list[dict[str, Any]]:
    """The per-layer rows ``show`` prints: with ``depth``, rows folded into their path's
    first ``depth`` segments (flops, params, MAC and activations summed, groups in order of
    first appearance, the group's output that of its last row); sorted by ``sort`` (largest
    first, ties in order); the first ``top`` of them (by FLOPs when ``sort`` is not given).
    ``shapes`` keeps each output a Shape (CSV splits it into C, H, W), not its text."""
    rows = [{"path": r.path, "type": r.type, "output": r.out if shapes else str(r.out),
             "flops": r.flops,
             "params": r.params, "mac": r.mac, "activations": r.activations}
            for r in result.rows]
    if latency is not None:
        for row, ms in zip(rows, latency, strict=True):
            row[LATENCY] = ms
    elif sort == LATENCY:
        from costmodel.errors import CostModelError

        raise CostModelError("--sort latency_ms needs a latency profile (--profile)",
                             field="sort")
    if depth is not None:
        rows = _fold(rows, depth)
    if top is not None and sort is None:
        sort = "flops"
    if sort is not None:
        rows = sorted(rows, key=lambda row: -row[sort])  # sorted() is stable: ties keep order
    return rows if top is None else rows[:top]


def _fold(rows: list[dict[str, Any]], depth: int) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = ".".join(row["path"].split(".")[:depth])
        group = groups.get(key)
        if group is None:
            groups[key] = {**row, "path": key, "layers": 1}
            continue
        group.update({m: group[m] + row[m] for m in _SUMMED if m in row}, output=row["output"],
                     layers=group["layers"] + 1)
        if group["type"] != row["type"]:
            group["type"] = "…"
    for group in groups.values():
        if group["layers"] > 1:
            group["type"] = f"{group['layers']} layers" if group["type"] == "…" \
                else f"{group['layers']}× {group['type']}"
    return list(groups.values())


def layers_table(result: Result, *, top: int | None = None, sort: str | None = None,
                 depth: int | None = None, latency: list[float] | None = None,
                 latency_note: str | None = None) -> Table:
    cols = [Column("path", "layer"), Column("type", "type"),
            Column("output", "out C×H×W", drop=2),
            Column("flops", "FLOPs", "si"), Column("params", "params", "si"),
            Column("mac", "MAC", "si"), Column("activations", "activations", "si", drop=1),
            *_latency_columns(latency_note if latency is not None else None)]
    rows = layer_view(result, top=top, sort=sort, depth=depth, shapes=True, latency=latency)
    t = totals_record(result)
    if latency is not None:
        t[LATENCY] = sum(latency)
    footer = [{"path": "total", "output": str(result.output), **t}]
    notes = [result.options.conventions(),
             f"peak activation: {t['peak_activation']:,} elements", *caveats(result)]
    if latency is not None and latency_note:
        notes.append(latency_note)
    if depth is not None:
        notes.append(f"rows folded to {depth} path segment(s): sums per group")
    if top is not None or sort is not None:
        notes.append(f"{len(rows)} rows, largest {sort or 'flops'} first; total of all layers")
    h, w = result.input
    return Table(f"{result.model} — {result.in_channels}×{h}×{w} input, per layer", cols, rows,
                 footer=footer, notes=notes)


def breakdown_table(result: Result) -> Table:
    cols = [Column("label", "layer type"), Column("flops", "FLOPs", "si"),
            Column("flops_share", "% FLOPs", "pct"), Column("params", "params", "si"),
            Column("params_share", "% params", "pct"), Column("mac", "MAC", "si"),
            Column("mac_share", "% MAC", "pct")]
    return Table(f"{result.model} — resources per layer type (MobileNet Table 2)", cols,
                 breakdown_records(result), notes=[result.options.conventions()])


def add_peak_memory(layers: Table, payload: dict[str, Any], result: Result) -> None:
    """``show``'s peak memory by tensor lifetime (``costmodel.analysis.memory.peak_memory``)
    beside the largest feature map: a note after the layers table's "peak activation" note,
    and ``peak_memory`` (elements), ``peak_memory_bytes`` and ``peak_memory_layer`` in the
    JSON's totals. ``show`` alone: importing the memory replay (and the layer classes it
    names) costs ~20 ms, measured, which compare's cold path does without."""
    from costmodel.analysis.memory import peak_memory
    from costmodel.render.format import si

    memory = peak_memory(result)
    at = next((i + 1 for i, n in enumerate(layers.notes)
               if str(n).startswith("peak activation")), len(layers.notes))
    layers.notes.insert(at, f"peak memory (tensors alive at once): {memory.peak:,} elements, "
                            f"{si(memory.peak_bytes)}B {memory.dtype}, at {memory.peak_layer} "
                            f"(batch {memory.batch}, input included; see `costmodel memory`)")
    payload["totals"].update(peak_memory=memory.peak, peak_memory_bytes=memory.peak_bytes,
                             peak_memory_layer=memory.peak_layer)


def zoo_records(entries: list, results: list[Result]) -> list[dict[str, Any]]:
    """One record per zoo model (the ``list --format json`` contract): its default input and,
    at that input with the default options, its FLOPs and params."""
    return [{"name": e.name, "input": e.input, "flops": r.totals.flops,
             "params": r.totals.params, "variants": list(e.variants), "aliases": e.aliases,
             "description": e.description} for e, r in zip(entries, results)]


def zoo_table(records: list[dict[str, Any]]) -> Table:
    cols = [Column("name", "name"), Column("input_hw", "input"), Column("flops", "FLOPs", "si"),
            Column("params", "params", "si"), Column("variants_text", "variants"),
            Column("description", "description")]
    rows = [{**rec, "input_hw": "×".join(map(str, rec["input"])),
             "variants_text": ", ".join(rec["variants"])} for rec in records]
    return Table("Model zoo", cols, rows, notes=[
        "FLOPs (multiply-adds) and params at each model's default input, paper scope.",
        "Variants are name suffixes (mobilenet-0.5); a numeric suffix is a width multiplier. "
        "'-' and '_' are interchangeable."])
