"""A verification's data, and the tables ``costmodel verify`` prints. No torch here: the data
is plain integers and strings, so rendering needs none of the optional extras."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from costmodel.render import Column, Table

Reason = Literal["ignored", "unsupported"]
REASONS: dict[str, str] = {
    "ignored": "fvcore ignores it by design (its list of ops that cost no FLOPs)",
    "unsupported": "fvcore has no counter for it: unsupported, counted as 0 (fvcore warns)",
}
"""fvcore's two reasons for counting an op as nothing, in its own terms."""

NO_FLOPS_NOTE = ("fvcore counts these ops as 0 FLOPs; so does the analytic fvcore scope "
                 "(activations, pooling other than adaptive average, element-wise merges, "
                 "views and copies are not multiply-adds)")


@dataclass(frozen=True)
class LayerCheck:
    """One layer: analytic numbers (fvcore scope) next to fvcore's and torch's.

    For a parallel node's split and merge, ``path`` is the node's (its torch module) and the
    numbers are the split's and merge's together; a container module that fvcore attributes
    FLOPs to directly appears with analytic 0."""

    path: str
    type: str
    flops: int
    fvcore_flops: int
    params: int
    torch_params: int
    shape: list[int] | None
    torch_shape: list[int] | None

    @property
    def differs(self) -> list[str]:
        """The columns that disagree: flops, params, shape."""
        return [name for name, a, b in (("flops", self.flops, self.fvcore_flops),
                                        ("params", self.params, self.torch_params),
                                        ("shape", self.shape, self.torch_shape)) if a != b]

    @property
    def ok(self) -> bool:
        return not self.differs


@dataclass(frozen=True)
class OpCheck:
    """FLOPs per fvcore operator (its by_operator() names: conv, linear, batch_norm, ...)."""

    op: str
    flops: int
    fvcore_flops: int

    @property
    def ok(self) -> bool:
        return self.flops == self.fvcore_flops


@dataclass(frozen=True)
class Uncounted:
    """An op fvcore met in the traced graph and counted as nothing, with its reason."""

    op: str
    reason: Reason
    occurrences: int
    layers: tuple[str, ...]

    @property
    def explanation(self) -> str:
        return REASONS[self.reason]


@dataclass(frozen=True)
class CounterGap:
    """A layer whose FlopCounterMode count is not its analytic 2×madds.

    ``lstm_x2``: 2× the layer's multiply-adds that run inside an LSTM cell (analytic);
    ``ops``: the ops that ran in the layer, read its weights and have no FlopCounterMode
    formula. Explained when FlopCounterMode missed exactly the cell's multiply-adds and such an
    op ran: torch ran the cell as one fused kernel that FlopCounterMode cannot count."""

    path: str
    type: str
    madds_x2: int
    flop_counter: int
    lstm_x2: int
    ops: tuple[str, ...]

    @property
    def unseen(self) -> int:
        return self.madds_x2 - self.flop_counter

    @property
    def explained(self) -> bool:
        return bool(self.ops) and self.lstm_x2 > 0 and self.unseen == self.lstm_x2


@dataclass(frozen=True)
class Verification:
    """A model's analytic counts checked against fvcore and against PyTorch's own counters.

    flops / fvcore_flops: totals in fvcore's scope, 1 per multiply-add. madds_x2 /
    flop_counter: the analytic conv + linear multiply-adds ×2 (paper scope, 2 per multiply-add)
    and torch.utils.flop_counter.FlopCounterMode's total. params / fvcore_params / numel: the
    analytic params (BN γ/β included), fvcore's parameter_count and sum(p.numel()).
    counter_gaps: the layers FlopCounterMode counts differently (see CounterGap); ``unseen``
    sums the explained ones, and the totals agree when madds_x2 = flop_counter + unseen."""

    model: str
    input: tuple[int, int]
    layers: tuple[LayerCheck, ...]
    ops: tuple[OpCheck, ...]
    uncounted: tuple[Uncounted, ...]
    flops: int
    fvcore_flops: int
    madds_x2: int
    flop_counter: int
    params: int
    fvcore_params: int
    numel: int
    counter_gaps: tuple[CounterGap, ...] = ()

    @property
    def differing(self) -> list[LayerCheck]:
        return [c for c in self.layers if not c.ok]

    @property
    def unseen(self) -> int:
        """2×madds FlopCounterMode cannot see, every one explained layer by layer."""
        return sum(g.unseen for g in self.counter_gaps if g.explained)

    @property
    def totals_ok(self) -> bool:
        return (self.flops == self.fvcore_flops
                and self.madds_x2 == self.flop_counter + self.unseen
                and self.params == self.fvcore_params == self.numel)

    @property
    def ok(self) -> bool:
        """Every layer, every operator and every total agree exactly, but for FlopCounterMode's
        explained gaps."""
        return (not self.differing and all(o.ok for o in self.ops) and self.totals_ok
                and all(g.explained for g in self.counter_gaps))

    @property
    def verdict(self) -> str:
        """exact; explained (exact but for FlopCounterMode's explained gaps); DIFFERS."""
        return "DIFFERS" if not self.ok else "explained" if self.counter_gaps else "exact"

    def record(self) -> dict[str, Any]:
        """The ``verify --format json`` contract for one model (raw integers)."""
        return {
            "model": self.model, "input": list(self.input), "ok": self.ok,
            "totals": {"flops": self.flops, "fvcore_flops": self.fvcore_flops,
                       "madds_x2": self.madds_x2, "flop_counter": self.flop_counter,
                       "flop_counter_unseen": self.unseen, "params": self.params,
                       "fvcore_params": self.fvcore_params, "numel": self.numel},
            "differing": [c.path for c in self.differing],
            "layers": [{**asdict(c), "ok": c.ok} for c in self.layers],
            "operators": [{**asdict(o), "ok": o.ok} for o in self.ops],
            "uncounted": [{"op": u.op, "reason": u.reason, "explanation": u.explanation,
                           "occurrences": u.occurrences, "layers": list(u.layers)}
                          for u in self.uncounted],
            "flop_counter_gaps": [{**asdict(g), "ops": list(g.ops), "unseen": g.unseen,
                                   "explained": g.explained} for g in self.counter_gaps],
        }


def _shape(s: list[int] | None) -> str:
    return "—" if s is None else "×".join(map(str, s))


def _verdict(ok: bool) -> str:
    return "exact" if ok else "DIFFERS"


def summary_table(results: list[Verification]) -> Table:
    cols = [Column("model", "model"), Column("input", "input"),
            Column("layers", "layers", "int"), Column("differing", "differ", "int"),
            Column("flops", "FLOPs", "int"), Column("fvcore_flops", "fvcore", "int"),
            Column("madds_x2", "2×madds", "int"), Column("flop_counter", "FlopCounterMode", "int"),
            Column("unseen", "unseen", "int"), Column("params", "params", "int"),
            Column("fvcore_params", "fvcore", "int"), Column("numel", "Σ numel", "int"),
            Column("verdict", "verdict")]
    rows, marks = [], set()
    for i, v in enumerate(results):
        rows.append({"model": v.model, "input": "×".join(map(str, v.input)),
                     "layers": len(v.layers), "differing": len(v.differing), "flops": v.flops,
                     "fvcore_flops": v.fvcore_flops, "madds_x2": v.madds_x2,
                     "flop_counter": v.flop_counter, "unseen": v.unseen, "params": v.params,
                     "fvcore_params": v.fvcore_params, "numel": v.numel,
                     "verdict": v.verdict})
        for key, a, b in (("fvcore_flops", v.flops, v.fvcore_flops),
                          ("flop_counter", v.madds_x2, v.flop_counter + v.unseen),
                          ("fvcore_params", v.params, v.fvcore_params),
                          ("numel", v.params, v.numel)):
            if a != b:
                marks.add((i, key))
        if v.differing:
            marks.add((i, "differing"))
    notes = ["FLOPs: analytic, in fvcore's scope (1 per multiply-add; conv, linear, batch norm in "
             "eval mode, adaptive avg pool, upsample), against fvcore's FlopCountAnalysis. "
             "2×madds: analytic conv, linear and LSTM multiply-adds × 2, against PyTorch's "
             "FlopCounterMode; unseen: the part of it FlopCounterMode cannot see, explained "
             "layer by layer (2 × an LSTM cell's multiply-adds, run as one fused kernel). "
             "params: analytic (BN γ/β included), against fvcore's parameter_count and "
             "sum(p.numel()).",
             "Tolerance: zero. 'exact' means every layer, operator and total agrees; "
             "'explained', the same but for FlopCounterMode's listed, explained gaps."]
    return Table("Analytic counts vs fvcore and PyTorch", cols, rows, notes=notes, marks=marks)


def layers_table(v: Verification, every_layer: bool = False) -> Table:
    """The layers that differ (all layers with ``every_layer``), differing cells marked."""
    checks = v.layers if every_layer else v.differing
    cols = [Column("path", "layer"), Column("type", "type"),
            Column("flops", "FLOPs analytic", "int"), Column("fvcore_flops", "FLOPs fvcore", "int"),
            Column("params", "params analytic", "int"), Column("torch_params", "params torch", "int"),
            Column("shape", "shape analytic"), Column("torch_shape", "shape torch")]
    rows, marks = [], set()
    for i, c in enumerate(checks):
        rows.append({**asdict(c), "shape": _shape(c.shape), "torch_shape": _shape(c.torch_shape)})
        marks |= {(i, {"flops": "fvcore_flops", "params": "torch_params",
                       "shape": "torch_shape"}[d]) for d in c.differs}
    what = "every layer" if every_layer else \
        (f"{len(checks)} of {len(v.layers)} layers differ" if checks else
         f"all {len(v.layers)} layers agree")
    h, w = v.input
    return Table(f"{v.model} ({h}×{w}) — {what}", cols, rows, marks=marks,
                 notes=["A parallel node's split and merge are checked at the node's path."])


def operators_table(v: Verification) -> Table:
    cols = [Column("op", "fvcore operator"), Column("flops", "FLOPs analytic", "int"),
            Column("fvcore_flops", "FLOPs fvcore", "int"), Column("verdict", "verdict")]
    rows = [{**asdict(o), "verdict": _verdict(o.ok)} for o in v.ops]
    marks = {(i, "fvcore_flops") for i, o in enumerate(v.ops) if not o.ok}
    return Table(f"{v.model} — FLOPs per operator", cols, rows, marks=marks)


def uncounted_table(v: Verification, shown: int = 3) -> Table:
    cols = [Column("op", "op"), Column("reason", "fvcore's reason"),
            Column("occurrences", "times", "int"), Column("layers", "layers")]
    rows = []
    for u in v.uncounted:
        more = len(u.layers) - shown
        layers = ", ".join(p or "(model)" for p in u.layers[:shown])
        rows.append({"op": u.op, "reason": u.reason, "occurrences": u.occurrences,
                     "layers": layers + (f", … {more} more" if more > 0 else "")})
    notes = [f"{r}: {text}" for r, text in REASONS.items()] + [NO_FLOPS_NOTE]
    return Table(f"{v.model} — ops fvcore counts as nothing", cols, rows, notes=notes)


COUNTER_GAP_NOTE = (
    "FlopCounterMode counts only the ops it has formulas for (matmuls, convolutions, "
    "attention). On CPU torch runs an "
    "nn.LSTM step as oneDNN's fused aten.mkldnn_rnn_layer, which has none: the cell's "
    "4·h·(n_in + h) multiply-adds go uncounted. (Without oneDNN the cell decomposes into "
    "aten.addmm, which FlopCounterMode counts, and the gap closes.) A gap is explained only "
    "when it is exactly 2× the cell's multiply-adds and such an op ran in the layer.")


def counter_gaps_table(v: Verification) -> Table:
    cols = [Column("path", "layer"), Column("type", "type"),
            Column("madds_x2", "2×madds analytic", "int"),
            Column("flop_counter", "FlopCounterMode", "int"), Column("unseen", "unseen", "int"),
            Column("lstm_x2", "2×LSTM madds", "int"), Column("ops", "ops without a formula"),
            Column("verdict", "verdict")]
    rows = [{**asdict(g), "unseen": g.unseen, "ops": ", ".join(g.ops) or "—",
             "verdict": "explained" if g.explained else "DIFFERS"} for g in v.counter_gaps]
    marks = {(i, "flop_counter") for i, g in enumerate(v.counter_gaps) if not g.explained}
    return Table(f"{v.model} — layers FlopCounterMode counts differently", cols, rows,
                 marks=marks, notes=[COUNTER_GAP_NOTE])


def verify_tables(results: list[Verification], every_layer: bool = False) -> list[Table]:
    """The summary, then per model: differing layers (if any, or every layer), operators,
    the ops fvcore does not count, and the layers FlopCounterMode counts differently (if
    any)."""
    tables = [summary_table(results)]
    for v in results:
        if every_layer or v.differing:
            tables.append(layers_table(v, every_layer))
        tables += [operators_table(v), uncounted_table(v)]
        if v.counter_gaps:
            tables.append(counter_gaps_table(v))
    return tables
