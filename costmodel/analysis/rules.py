"""ShuffleNet V2's four guidelines (Ma et al. 2018, §2) and EffNet's data-compression warning as
measured checks, each finding with a severity and a one-line reason.

Rules and their measures (thresholds in ``Thresholds``; severities ok < info < warning < error):

- **G1 — equal channel width minimises MAC.** Every 1×1 conv (dense or grouped, stride 1; not
  depthwise): its c1:c2 ratio, its MAC (the engine's: hw(c1+c2) + c1c2/g, + bias) and the
  lower bound for its FLOPs B = hw·c1·c2/g, 2·√(hw·g·B) + B/hw (eq. 1; reached when c1 = c2).
  Severity by the excess over the bound: info ≥ 10%, warning ≥ 20% (a 4:1 bottleneck, as in
  ShuffleNet V1, is about 21–25% over), error ≥ 100%; a conv that reads the image itself is at
  most info (the image's channels are given, not designed).
- **G2 — excessive group convolution increases MAC.** Every grouped conv (1 < g < C_in): its
  MAC against the MAC of a dense conv with the same FLOPs and input (c2/g outputs; the
  weights are the same), i.e. hw(c1+c2) + c1c2/g against hw(c1+c2/g) + c1c2/g for a 1×1 conv.
  Severity by the increase: info ≥ 10%, warning ≥ 50%, error ≥ 100% (memory traffic doubled).
- **G3 — network fragmentation reduces parallelism.** Every block (composite blocks and
  branching nodes, as in ``costmodel dataflow --level block``): ``operators``, the number of
  conv, pooling and linear operators (the paper's "fragmented operators": ResNet 2–3,
  NASNet-A 13); ``parallel``, the most branches holding operators at one branching point;
  ``series``, the longest chain of operators; ``small_run``, the longest run of consecutive
  *small* operators along a chain, an operator being small when it does less than 10% of the
  block's FLOPs (pools, cheap depthwise convs). Severity: warning for ≥ 8 operators or ≥ 4
  parallel branches (the paper's 4-fragment structures); info for ≥ 5 operators, ≥ 3
  parallel branches or ≥ 3 small operators in a row.
- **G4 — element-wise operations are non-negligible.** The share of the model's total MAC
  spent in element-wise operators: activations, adds and multiplies, channel shuffles and
  depthwise convs (which ShuffleNet V2 counts as element-wise for their high MAC/FLOPs).
  Batch norm is reported beside it but not counted: inference usually folds it into the conv.
  Severity: info ≥ 25%, warning ≥ 50%.
- **E1 — EffNet: aggressive data compression early in a narrow network.** Every layer whose
  compression factor (elements in / elements out, ``costmodel dataflow --level layer``) is 4
  or more, outside the classifier head. Warning when it is *early* (in the first half of the
  network's stages) in a *narrow* network (no feature map wider than 256 channels, EffNet's
  CIFAR-sized models); info otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from costmodel.analysis._tree import WEIGHTED, blocks_of, is_container, rows_of, segments
from costmodel.analysis.dataflow import chw, dataflow
from costmodel.analysis.thresholds import Thresholds, describe_thresholds  # noqa: F401
from costmodel.errors import CostModelError
from costmodel.engine import Branch, Dag, Node, Result, Row, Seq
from costmodel.layers.conv import Conv
from costmodel.layers.merge import ELEMENTWISE_MERGES
from costmodel.layers.traits import Operator
from costmodel.render import Column, Table
from costmodel.render.format import si
from costmodel.shape import pair

Severity = Literal["ok", "info", "warning", "error"]
SEVERITIES: tuple[str, ...] = ("ok", "info", "warning", "error")
RULES: dict[str, str] = {
    "G1": "equal channel width minimises MAC",
    "G2": "excessive group convolution increases MAC",
    "G3": "network fragmentation reduces parallelism",
    "G4": "element-wise operations are non-negligible",
    "E1": "EffNet: no aggressive data compression early in a narrow network",
}
G3_OPERATORS: frozenset[Operator] = frozenset({"conv", "linear", "pooling"})
"""The operator kinds (each primitive's ``operator`` trait) that are G3's "fragmented
operators": convolutions, fully connected layers (and LSTM steps), pooling."""
ELEMENTWISE_KINDS = ("activation", "add", "multiply", "channel_shuffle", "depthwise")
"""G4's groups, in report order: the primitives' ``elementwise`` trait, and the merges'
(``merge.ELEMENTWISE_MERGES``)."""


def _grade(value: float, levels: tuple) -> str:
    names = ("info", "warning", "error")[:len(levels)]
    sev = "ok"
    for name, threshold in zip(names, levels):
        if value >= threshold:
            sev = name
    return sev


@dataclass(frozen=True)
class Finding:
    """One check: the rule, its severity, where (a layer or block path; '' for the model),
    the measured values (raw numbers) and a one-line reason."""

    rule: str
    severity: str
    path: str
    measured: dict[str, Any]
    reason: str

    def record(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "path": self.path,
                "measured": self.measured, "reason": self.reason}


def _ratio_text(c1: int, c2: int) -> str:
    if c1 == c2:
        return "1:1"
    return f"1:{c2 / c1:.3g}" if c2 > c1 else f"{c1 / c2:.3g}:1"


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


# --- G1, G2: per conv ------------------------------------------------------------------------

def _is_grouped(row: Row) -> bool:
    return isinstance(row.layer, Conv) and row.category != "depthwise" and row.layer.groups > 1


def image_readers(result: Result) -> set[str]:
    """Paths of the weighted layers that see the image itself (through batch norm,
    activations or pooling at most): their input channels are given, not designed."""
    found: set[str] = set()

    def walk(node: Node, fresh: bool) -> bool:  # fresh: still the image's channels
        if isinstance(node, Row):
            if node.category in WEIGHTED:
                if fresh:
                    found.add(node.path)
                return False
            return fresh
        if isinstance(node, Seq):
            for child in node.children:
                fresh = walk(child, fresh)
            return fresh
        return all([walk(b, fresh) for b in node.branches])

    if result.tree is not None:
        walk(result.tree, True)
    return found


def check_g1(result: Result, t: Thresholds = Thresholds()) -> list[Finding]:
    out = []
    readers = image_readers(result)
    for row in result.rows:
        reads_image = row.path in readers
        if not isinstance(row.layer, Conv) or row.category != "conv1x1":
            continue
        x, y = row.inputs[0], row.out
        if (x.h, x.w) != (y.h, y.w):
            continue  # a strided 1×1 conv: the bound assumes one map size
        g = row.layer.groups
        hw, c1, c2 = x.hw, x.c, y.c
        b = Fraction(hw * c1 * c2, g)  # FLOPs, from the shapes (whatever the Options)
        bound = 2 * math.sqrt(hw * g * b) + float(b) / hw
        excess = row.mac / bound - 1
        sev = _grade(excess, t.g1)
        reason = (f"c1:c2 = {_ratio_text(c1, c2)}: MAC {si(row.mac)} is {_pct(excess)} above "
                  f"the bound {si(bound)} for its FLOPs" if excess > 1e-9 else
                  f"c1 = c2 = {c1}: MAC at the lower bound")
        if reads_image and severity_rank(sev) > severity_rank("info"):
            sev = "info"  # the image's channels are not a design choice
            reason += " (it reads the image, whose channels are given)"
        out.append(Finding("G1", sev, row.path, {
            "c1": c1, "c2": c2, "groups": g, "hw": hw, "flops": int(b), "mac": row.mac,
            "mac_bound": bound, "excess": excess, "reads_image": reads_image}, reason))
    return out


def check_g2(result: Result, t: Thresholds = Thresholds()) -> list[Finding]:
    out = []
    for row in result.rows:
        if not _is_grouped(row):
            continue
        x, y = row.inputs[0], row.out
        g = row.layer.groups
        bias = y.c if row.layer.bias else 0
        weights = row.params - bias
        # the dense conv with the same FLOPs: same input and weights, c2/g outputs
        dense = x.numel + y.numel // g + weights + bias // g
        increase = row.mac / dense - 1
        sev = _grade(increase, t.g2)
        kh, kw = pair(row.layer.kernel)
        out.append(Finding("G2", sev, row.path, {
            "groups": g, "c1": x.c, "c2": y.c, "kernel": [kh, kw], "mac": row.mac,
            "mac_dense_same_flops": dense, "increase": increase},
            f"g={g}: MAC {si(row.mac)} against {si(dense)} for a dense conv with the same "
            f"FLOPs ({'+' if increase >= 0 else ''}{_pct(increase)})"))
    return out


# --- G3: per block ---------------------------------------------------------------------------

def _is_operator(row: Row) -> bool:
    return row.layer is not None and row.layer.operator in G3_OPERATORS


def _series(node: Node) -> int:
    if isinstance(node, Row):
        return int(_is_operator(node))
    if isinstance(node, Seq):
        return sum(_series(c) for c in node.children)
    if isinstance(node, Dag):  # the longest path through the graph
        series = {"input": 0}
        for name, inputs, seq in zip(node.names, node.inputs, node.seqs):
            series[name] = max(series[i] for i in inputs) + _series(seq)
        return series[node.names[-1]]
    return max((_series(b) for b in node.branches), default=0)


def _parallel(node: Node) -> int:
    if isinstance(node, Row):
        return 1
    if isinstance(node, Seq):
        return max((_parallel(c) for c in node.children), default=1)
    if isinstance(node, Dag):  # torch runs its nodes one after the other
        return max(_parallel(seq) for seq in node.seqs)
    here = sum(1 for b in node.branches if _series(b) > 0)
    return max([here] + [_parallel(b) for b in node.branches])


def _chains(node: Node) -> list[list[Row]]:
    """Every chain of operators from the node's input to its output (one per path through
    the branches)."""
    if isinstance(node, Row):
        return [[node]] if _is_operator(node) else [[]]
    if isinstance(node, Branch):
        out = []
        for b in node.branches:
            out.extend(_chains(b))
        return out or [[]]
    if isinstance(node, Dag):  # the chains into each node, each continued by its layers
        into: dict[str, list[list[Row]]] = {"input": [[]]}
        for name, inputs, seq in zip(node.names, node.inputs, node.seqs):
            tails = _chains(seq)
            found = [c + t for i in dict.fromkeys(inputs) for c in into[i] for t in tails]
            into[name] = sorted(found, key=len, reverse=True)[:4096]  # as below
        return into[node.names[-1]]
    chains: list[list[Row]] = [[]]
    for child in node.children:
        tails = _chains(child)
        chains = [c + t for c in chains for t in tails]
        if len(chains) > 4096:  # pathological nesting: keep the longest chains
            chains = sorted(chains, key=len, reverse=True)[:4096]
    return chains


def _longest_small_run(chains: list[list[Row]], is_small) -> tuple[int, list[str]]:
    best, best_rows = 0, []
    for chain in chains:
        run: list[Row] = []
        for row in chain:
            run = run + [row] if is_small(row) else []
            if len(run) > best:
                best, best_rows = len(run), [r.path for r in run]
    return best, best_rows


def g3_blocks(result: Result) -> list[Node]:
    """The blocks G3 measures: composite blocks and branching nodes of every stage (not the
    head), as ``dataflow --level block`` lists them."""
    out = []
    for seg in segments(result):
        if seg.head:
            continue
        for node in seg.nodes:
            for b in blocks_of(node):
                if isinstance(b, (Branch, Dag)) or (isinstance(b, Seq) and not is_container(b)):
                    out.append(b)
    return out


def check_g3(result: Result, t: Thresholds = Thresholds()) -> list[Finding]:
    out = []
    for block in g3_blocks(result):
        rows = list(rows_of(block))
        ops = [r for r in rows if _is_operator(r)]
        if not ops:
            continue
        flops = sum(r.flops for r in rows)

        def is_small(r: Row) -> bool:
            return r.flops < t.g3_small_share * flops

        n_ops, par, series = len(ops), _parallel(block), _series(block)
        run, run_paths = _longest_small_run(_chains(block), is_small)
        small = sum(is_small(r) for r in ops)
        if n_ops >= t.g3_operators[1] or par >= t.g3_parallel[1]:
            sev = "warning"
        elif n_ops >= t.g3_operators[0] or par >= t.g3_parallel[0] or run >= t.g3_small_run:
            sev = "info"
        else:
            sev = "ok"
        names = ", ".join(p.rsplit(".", 1)[-1] for p in run_paths)
        reason = (f"{n_ops} operators, {series} in series, "
                  + (f"{par} parallel branches" if par > 1 else "no parallel branches")
                  + (f"; {run} small ones in a row ({names})" if run >= 2 else ""))
        out.append(Finding("G3", sev, block.path, {
            "type": getattr(block.layer, "type", ""), "operators": n_ops, "series": series,
            "parallel": par, "small": small, "small_run": run, "small_run_layers": run_paths},
            reason))
    return out


# --- G4: the model ---------------------------------------------------------------------------

def elementwise_kind(row: Row) -> str | None:
    """The element-wise kind of a row (G4), 'bn' for batch norm, or None."""
    if row.category == "depthwise":  # per instance: a conv with groups = C_in
        return "depthwise"
    if row.layer is None:  # a branching node's split or merge
        return ELEMENTWISE_MERGES.get(row.type)
    return row.layer.elementwise


def check_g4(result: Result, t: Thresholds = Thresholds()) -> list[Finding]:
    total = result.totals.mac
    by_kind = {k: 0 for k in (*ELEMENTWISE_KINDS, "bn")}
    for row in result.rows:
        kind = elementwise_kind(row)
        if kind is not None:
            by_kind[kind] += row.mac
    ew = sum(by_kind[k] for k in ELEMENTWISE_KINDS)
    share = ew / total if total else 0.0
    shares = {k: (v / total if total else 0.0) for k, v in by_kind.items()}
    parts = ", ".join(f"{k} {_pct(shares[k])}" for k in ELEMENTWISE_KINDS if by_kind[k])
    reason = (f"{_pct(share)} of MAC is element-wise ({parts or 'none'}); batch norm is "
              f"another {_pct(shares['bn'])} unless folded into the convs")
    return [Finding("G4", _grade(share, t.g4), "", {
        "mac_total": total, "mac_elementwise": ew, "share": share,
        "mac_by_kind": by_kind, "share_by_kind": shares}, reason)]


# --- E1: EffNet's data compression -----------------------------------------------------------

def check_e1(result: Result, t: Thresholds = Thresholds()) -> list[Finding]:
    rows = dataflow(result, level="layer")
    body = [r for r in rows if r.index > 0 and not r.head]
    if not body:
        return []
    n_stages = max(r.index for r in body)
    widest = max(r.output.c for r in body if not r.output.flat)
    narrow = widest <= t.e1_narrow_channels
    out = []
    for r in body:
        f = r.factor
        if f is None or f < t.e1_factor:
            continue
        early = r.index <= math.ceil(n_stages * t.e1_early_share)
        sev = "warning" if early and narrow else "info"
        where = f"{r.stage} (stage {r.index} of {n_stages}{', early' if early else ''})"
        net = (f"a narrow network (≤ {t.e1_narrow_channels} channels)" if narrow else
               f"a network up to {widest} channels wide")
        out.append(Finding("E1", sev, r.path or r.label, {
            "factor": float(f), "input": r.input.as_list(), "output": r.output.as_list(),
            "stage": r.stage, "stage_index": r.index, "stages": n_stages, "early": early,
            "widest": widest, "narrow": narrow},
            f"{r.ops} compresses {chw(r.input)} → {chw(r.output)} C×H×W ({float(f):.3g}×) in {where} "
            f"of {net}"))
    return out


CHECKS = {"G1": check_g1, "G2": check_g2, "G3": check_g3, "G4": check_g4, "E1": check_e1}


def check_rules(result: Result, thresholds: Thresholds = Thresholds(),
                only: list[str] | None = None) -> list[Finding]:
    """Every check of every rule (``only``: a subset of RULES), in rule order."""
    selected = [r.upper() for r in only] if only else list(CHECKS)
    unknown = [r for r in selected if r not in CHECKS]
    if unknown:
        raise CostModelError(f"unknown rule {', '.join(unknown)} ({', '.join(CHECKS)})",
                             field="rule")
    return [f for name in selected for f in CHECKS[name](result, thresholds)]


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def fails(findings: list[Finding], fail_on: str) -> bool:
    """True when a finding is at least as severe as ``fail_on`` (warning or error)."""
    if fail_on not in SEVERITIES[1:]:
        raise CostModelError(f"--fail-on takes info, warning or error, not '{fail_on}'")
    return any(severity_rank(f.severity) >= severity_rank(fail_on) for f in findings)


# --- tables ----------------------------------------------------------------------------------

def summary_records(findings: list[Finding], only: list[str] | None = None
                    ) -> list[dict[str, Any]]:
    """Per rule (``only``: those rules): how many checks, how many of each severity, and the
    worst finding."""
    selected = [r.upper() for r in only] if only else list(RULES)
    out = []
    for rule, title in RULES.items():
        if rule not in selected:
            continue
        fs = [f for f in findings if f.rule == rule]
        rec: dict[str, Any] = {"rule": rule, "guideline": title, "checked": len(fs)}
        for s in SEVERITIES:
            rec[s] = sum(f.severity == s for f in fs)
        worst = max(fs, key=lambda f: (severity_rank(f.severity), _magnitude(f)), default=None)
        rec["worst"] = f"{worst.path or 'model'}: {worst.reason}" if worst else ""
        out.append(rec)
    return out


def _magnitude(f: Finding) -> float:
    m = f.measured
    for key in ("excess", "increase", "share", "factor", "operators"):
        if key in m:
            return float(m[key])
    return 0.0


def rules_tables(result: Result, findings: list[Finding], show_ok: bool = False,
                 only: list[str] | None = None) -> list[Table]:
    summary = Table(f"{result.model} — design rules (ShuffleNet V2 G1–G4, EffNet E1)",
                    [Column("rule", "rule"), Column("guideline", "guideline"),
                     Column("checked", "checked", "int"), Column("ok", "ok", "int"),
                     Column("info", "info", "int"), Column("warning", "warning", "int"),
                     Column("error", "error", "int"), Column("worst", "worst finding")],
                    summary_records(findings, only),
                    notes=["MAC = memory access cost (elements read + written); thresholds: "
                           "`costmodel rules --help`"])
    summary.marks = {(i, s) for i, rec in enumerate(summary.rows) for s in ("warning", "error")
                     if rec[s]}
    shown = [f for f in findings if show_ok or f.severity != "ok"]
    rows = [{"rule": f.rule, "severity": f.severity, "path": f.path or "(model)",
             "reason": f.reason} for f in shown]
    marks = {(i, "severity") for i, f in enumerate(shown) if f.severity in ("warning", "error")}
    hidden = len(findings) - len(shown)
    notes = [f"{hidden} {'check' if hidden == 1 else 'checks'} passed (ok), not listed; "
             "--all lists them"] if hidden else []
    detail = Table(f"{result.model} — findings", [
        Column("rule", "rule"), Column("severity", "severity"), Column("path", "layer"),
        Column("reason", "reason")], rows, notes=notes, marks=marks)
    return [summary, detail]


def rules_payload(result: Result, findings: list[Finding], only: list[str] | None = None
                  ) -> dict[str, Any]:
    """The ``rules --format json`` contract: the summary and every finding (ok ones too)."""
    return {"model": result.model, "input": list(result.input),
            "summary": summary_records(findings, only),
            "findings": [f.record() for f in findings]}
