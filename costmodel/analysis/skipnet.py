"""What a network with skippable blocks costs (SkipNet): the minimum, the maximum and the
expected cost for given per-block execution probabilities.

A ``gated_residual`` block (costmodel/layers/skipnet.py) costs its gate and its shortcut
whatever the gate decides, and the rest (the residual branch F, the merges, the ReLU) only
when it runs:

    expected = Σ always-paid rows + Σ_i p_i · skippable_i
    maximum  = every block runs (p_i = 1; what ``show`` and ``compare`` report)
    minimum  = every gated block is skipped (p_i = 0)
    plain    = the network without its gates, every block run (the ResNet SkipNet starts from)

for FLOPs and MAC; params do not depend on what runs. Data first (``skip_cost``), then Tables
(``summary_table``, ``blocks_table``) and the JSON payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from costmodel.errors import CostModelError
from costmodel.engine import Branch, Dag, Node, Result, Row, Seq, rows_of
from costmodel.layers.skipnet import BLOCK, GATE, GATED, RES, GatedResidual
from costmodel.render import Column, Table


@dataclass(frozen=True)
class Amount:
    """FLOPs and MAC (elements) of some rows."""

    flops: int = 0
    mac: int = 0

    @staticmethod
    def of(rows: Sequence[Row]) -> "Amount":
        return Amount(sum(r.flops for r in rows), sum(r.mac for r in rows))

    def __add__(self, other: "Amount") -> "Amount":
        return Amount(self.flops + other.flops, self.mac + other.mac)

    def __sub__(self, other: "Amount") -> "Amount":
        return Amount(self.flops - other.flops, self.mac - other.mac)


@dataclass(frozen=True)
class GatedBlockCost:
    """One gated block: its gate and shortcut (always paid) and what skipping it saves."""

    path: str
    gate_kind: str
    keep_prob: float
    gate: Amount
    shortcut: Amount
    skippable: Amount

    @property
    def expected_flops(self) -> float:
        return self.gate.flops + self.shortcut.flops + self.keep_prob * self.skippable.flops

    @property
    def expected_mac(self) -> float:
        return self.gate.mac + self.shortcut.mac + self.keep_prob * self.skippable.mac


@dataclass(frozen=True)
class SkipCost:
    """A model's cost when its gated blocks run with probabilities ``keep_prob``."""

    result: Result
    blocks: tuple[GatedBlockCost, ...]

    @property
    def maximum(self) -> Amount:
        return Amount(self.result.totals.flops, self.result.totals.mac)

    @property
    def minimum(self) -> Amount:
        skipped = Amount(sum(b.skippable.flops for b in self.blocks),
                         sum(b.skippable.mac for b in self.blocks))
        return self.maximum - skipped

    @property
    def plain(self) -> Amount:
        gates = Amount(sum(b.gate.flops for b in self.blocks), sum(b.gate.mac for b in self.blocks))
        return self.maximum - gates

    @property
    def expected(self) -> tuple[float, float]:
        """(FLOPs, MAC): fractional, as expectations are."""
        saved_flops = sum((1 - b.keep_prob) * b.skippable.flops for b in self.blocks)
        saved_mac = sum((1 - b.keep_prob) * b.skippable.mac for b in self.blocks)
        return (self.maximum.flops - saved_flops, self.maximum.mac - saved_mac)


# --- data ---------------------------------------------------------------------------------


def _branch(seq: Seq, name: str) -> Branch:
    """The child branching node called ``name`` of an expanded gated block."""
    for child in seq.children:
        if isinstance(child, Branch) and child.path.rsplit(".", 1)[-1] == name:
            return child
    raise AssertionError(  # pragma: no cover - GatedResidual.expand makes both
        f"{seq.path}: no '{name}' in a gated block's expansion")


def _gated_seqs(node: Node) -> Iterator[Seq]:
    if isinstance(node, Seq):
        if isinstance(node.layer, GatedResidual):
            yield node
            return
        for child in node.children:
            yield from _gated_seqs(child)
    elif isinstance(node, (Branch, Dag)):
        for seq in node.branches:
            yield from _gated_seqs(seq)


def gated_block_costs(result: Result) -> list[tuple[str, str, Amount, Amount, Amount]]:
    """(path, gate kind, gate, shortcut, skippable) for each gated block, in execution order."""
    if result.tree is None:
        raise CostModelError("this result keeps no layer tree (a lean evaluation)")
    found = []
    for seq in _gated_seqs(result.tree):
        res = _branch(seq, RES)
        main, shortcut = res.branches
        gated = _branch(main, GATED)
        gate_seq = gated.branches[gated.names.index(GATE)]
        assert gated.names.index(BLOCK) == 0
        total = Amount.of(list(rows_of(seq)))
        gate = Amount.of(list(rows_of(gate_seq)))
        short = Amount.of(list(rows_of(shortcut)))
        found.append((seq.path, seq.layer.gate, gate, short, total - gate - short))
    return found


def parse_keep_prob(text: str) -> list[float]:
    """``0.6`` (every block) or ``0.9,0.8,…`` (one per gated block, in order) → floats in
    [0, 1]."""
    values = []
    for piece in str(text).replace(";", ",").split(","):
        piece = piece.strip()
        try:
            p = float(piece)
        except ValueError:
            raise CostModelError(f"keep probability '{piece}' is not a number (give 0.6, or one "
                                 "per gated block: 0.9,0.8,…)", field="keep-prob") from None
        if not 0.0 <= p <= 1.0:  # also rejects nan
            raise CostModelError(f"keep probability {piece} is outside [0, 1]",
                                 field="keep-prob")
        values.append(p)
    return values


def skip_cost(result: Result, keep_prob: float | Sequence[float]) -> SkipCost:
    """The cost of ``result``'s gated blocks running with probability ``keep_prob`` (one value
    for every block, or one per gated block in execution order)."""
    found = gated_block_costs(result)
    if not found:
        raise CostModelError(f"'{result.model}' has no gated blocks (gated_residual layers) "
                             "to skip")
    probs = [keep_prob] if isinstance(keep_prob, (int, float)) else list(keep_prob)
    for p in probs:
        if not 0.0 <= p <= 1.0:
            raise CostModelError(f"keep probability {p} is outside [0, 1]", field="keep-prob")
    if len(probs) == 1:
        probs = probs * len(found)
    if len(probs) != len(found):
        raise CostModelError(f"{len(probs)} keep probabilities for the {len(found)} gated blocks "
                             f"of '{result.model}' (give one value, or one per gated block)",
                             field="keep-prob")
    return SkipCost(result, tuple(GatedBlockCost(path, kind, float(p), gate, short, skippable)
                                  for (path, kind, gate, short, skippable), p
                                  in zip(found, probs)))


# --- tables and JSON ----------------------------------------------------------------------


def _describe_probs(report: SkipCost) -> str:
    probs = {b.keep_prob for b in report.blocks}
    return f"keep-prob {probs.pop():g}" if len(probs) == 1 else "per-block keep-prob"


def summary_records(report: SkipCost) -> list[dict]:
    ef, em = report.expected
    top, plain = report.maximum, report.plain
    rows = [("plain", "no gates (every block runs)", plain.flops, plain.mac),
            ("maximum", "maximum (every gated block runs)", top.flops, top.mac),
            ("expected", f"expected ({_describe_probs(report)})", ef, em),
            ("minimum", "minimum (every gated block skipped)", report.minimum.flops,
             report.minimum.mac)]
    dtype = report.result.options.dtype_bytes
    return [{"case": key, "label": label, "flops": f, "mac": m, "mac_bytes": m * dtype,
             "flops_rel_max": f / top.flops if top.flops else None,
             "flops_rel_plain": f / plain.flops if plain.flops else None}
            for key, label, f, m in rows]


def block_records(report: SkipCost) -> list[dict]:
    return [{"path": b.path, "gate": b.gate_kind, "keep_prob": b.keep_prob,
             "gate_flops": b.gate.flops, "gate_mac": b.gate.mac,
             "shortcut_flops": b.shortcut.flops, "block_flops": b.skippable.flops,
             "block_mac": b.skippable.mac,
             "gate_share": b.gate.flops / b.skippable.flops if b.skippable.flops else None,
             "expected_flops": b.expected_flops, "expected_mac": b.expected_mac}
            for b in report.blocks]


def summary_table(report: SkipCost) -> Table:
    r = report.result
    cols = [Column("label", "case"), Column("flops", "FLOPs", "si"),
            Column("flops_rel_max", "of max", "pct"),
            Column("flops_rel_plain", "of no gates", "pct"),
            Column("mac", "MAC", "si"), Column("mac_bytes", "MAC bytes", "si")]
    h, w = r.input
    return Table(f"{r.model} — {r.in_channels}×{h}×{w} input, {len(report.blocks)} gated blocks",
                 cols, summary_records(report),
                 notes=[r.options.describe(),
                        "a gated block always pays its gate and its shortcut; skipping saves "
                        "its residual branch",
                        f"params: {r.totals.params:,} whatever runs"])


def blocks_table(report: SkipCost) -> Table:
    cols = [Column("path", "block"), Column("gate", "gate"), Column("keep_prob", "keep p", "text"),
            Column("gate_flops", "gate FLOPs", "si"), Column("gate_share", "gate/block", "pct"),
            Column("shortcut_flops", "shortcut FLOPs", "si"),
            Column("block_flops", "skippable FLOPs", "si"),
            Column("expected_flops", "expected FLOPs", "si")]
    return Table(f"{report.result.model} — gated blocks", cols, block_records(report),
                 notes=["expected = gate + shortcut + keep p × skippable"])


def payload(report: SkipCost, conventions: dict) -> dict:
    """The ``skipnet --format json`` contract."""
    r = report.result
    return {"model": r.model, "input": list(r.input), "conventions": conventions,
            "params": r.totals.params, "gated_blocks": len(report.blocks),
            "keep_prob": [b.keep_prob for b in report.blocks],
            "cost": {rec["case"]: {"flops": rec["flops"], "mac": rec["mac"],
                                   "mac_bytes": rec["mac_bytes"]}
                     for rec in summary_records(report)},
            "blocks": block_records(report)}
