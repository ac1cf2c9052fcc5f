"""ShuffleNet V2's four guideline experiments (Ma et al. 2018, §2, Tables 1–4) as specs,
counted, beside the paper's GPU and ARM numbers, with a verdict per guideline.

No torch here: ``costmodel.measure.guidelines`` times the same networks on a device, and
``verdicts`` turns its times into "holds here, and by how much".

The networks, as the paper describes them (input 56×56, 10 blocks stacked, batch 1):

- **G1** — each block two 1×1 convs c1→c2→c1, c1:c2 = 1:1, 1:2, 1:6, 1:12, total FLOPs
  fixed: c1 = ⌊√(c²/r)⌋, c2 = r·c1 for the 1:1 width c (GPU 128, ARM 32; ×2, ×4 double it),
  which gives every pair of Table 1: (90,180), (52,312), (36,432); (22,44), (13,78), (9,108).
- **G2** — 10 stacked 1×1 group convs c→c, g = 1, 2, 4, 8, FLOPs hw·c²/g fixed: c =
  ⌊√(c₁²·g)⌋ rounded down to a multiple of g (GPU c₁ = 128, ARM 64): Table 2's 180, 256, 360;
  90, 128 and — for ARM ×1, g = 8 — 176 where the paper prints 180 (not divisible by 8).
- **G3** — blocks of 1×1 convs (Table 3, c = 128 GPU, 64 ARM at ×1): 1-fragment, one conv
  c→c; k-fragment-series, k convs c′→c′ with c′ = ⌊c/√k⌋ (equal FLOPs: k·c′² ≈ c²);
  k-fragment-parallel, k branches of one conv c→c/k each, concatenated (exactly c² FLOPs).
  The paper's appendix figure draws the blocks; the parallel merge (concat here) is our reading.
- **G4** — the ResNet bottleneck unit (1×1 c→c/4, 3×3, 1×1 →c, each with batch norm) with and
  without its ReLUs and its identity shortcut; c = 32, 64, 128 (Table 4) is the unit's
  input and output width.

Throughputs in the paper are per platform (GPU: GTX 1080Ti, batches/s; ARM: Snapdragon 810,
one thread, images/s), so only speeds *relative* to the guideline's reference structure
within one column compare across devices. The tables' GPU figures are batch 1: at batch 8
Table 3's c = 512 column would need ~28 T multiply-adds/s, five times the 1080Ti's peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from costmodel.engine import Result
from costmodel.errors import CostModelError
from costmodel.render import Column, Table

Channels = Literal["gpu", "arm"]
CHANNEL_SETS: tuple[str, ...] = ("gpu", "arm")
WIDTHS: tuple[int, ...] = (1, 2, 4)
INPUT = 56
STACK = 10
TOLERANCE = 0.03
"""A structure counts as faster than the reference only by more than 3%: closer than that is
within the run-to-run noise of a shared machine."""
NOISY = 0.25
"""A measurement whose p10–p90 spread exceeds 25% of its median marks its verdict noisy: a
loaded machine, whose verdict a quieter rerun may change."""

GUIDELINES: dict[str, str] = {
    "G1": "equal channel width minimises memory access cost (MAC)",
    "G2": "excessive group convolution increases MAC",
    "G3": "network fragmentation reduces the degree of parallelism",
    "G4": "element-wise operations are non-negligible",
}


@dataclass(frozen=True)
class Structure:
    """One row of a paper table: its label, the paper's throughputs (×1, ×2, ×4) on GPU and
    ARM, and what sets it apart (``param``)."""

    label: str
    gpu: tuple[float, float, float]
    arm: tuple[float, float, float]
    param: Any  # the ratio r, the groups g, (k, "series"/"parallel"), (relu, shortcut)


@dataclass(frozen=True)
class Experiment:
    guideline: str
    table: str
    base: dict[str, int]  # the ×1 width per platform
    structures: tuple[Structure, ...]
    reference: str  # the structure the guideline says is fastest
    extreme: str  # the one it says is slowest, for "x% slower"


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("G1", "Table 1", {"gpu": 128, "arm": 32}, (
        Structure("1:1", (1480, 723, 232), (76.2, 21.7, 5.3), 1),
        Structure("1:2", (1296, 586, 206), (72.9, 20.5, 5.1), 2),
        Structure("1:6", (876, 489, 189), (69.1, 17.9, 4.6), 6),
        Structure("1:12", (748, 392, 163), (57.6, 15.1, 4.4), 12),
    ), "1:1", "1:12"),
    Experiment("G2", "Table 2", {"gpu": 128, "arm": 64}, (
        Structure("g=1", (2451, 1289, 437), (40.0, 10.2, 2.3), 1),
        Structure("g=2", (1725, 873, 341), (35.0, 9.5, 2.2), 2),
        Structure("g=4", (1026, 644, 338), (32.9, 8.7, 2.1), 4),
        Structure("g=8", (634, 445, 230), (27.8, 7.5, 1.8), 8),
    ), "g=1", "g=8"),
    Experiment("G3", "Table 3", {"gpu": 128, "arm": 64}, (
        Structure("1-fragment", (2446, 1274, 434), (40.2, 10.1, 2.3), (1, "series")),
        Structure("2-fragment-series", (1790, 909, 336), (38.6, 10.1, 2.2), (2, "series")),
        Structure("4-fragment-series", (752, 745, 349), (38.4, 10.1, 2.3), (4, "series")),
        Structure("2-fragment-parallel", (1537, 803, 320), (33.4, 9.1, 2.2), (2, "parallel")),
        Structure("4-fragment-parallel", (691, 572, 292), (35.0, 8.4, 2.1), (4, "parallel")),
    ), "1-fragment", "4-fragment-parallel"),
    Experiment("G4", "Table 4", {"gpu": 32, "arm": 32}, (
        Structure("ReLU + shortcut", (2427, 2066, 1436), (56.7, 16.9, 5.0), (True, True)),
        Structure("ReLU only", (2647, 2256, 1735), (61.9, 18.8, 5.2), (True, False)),
        Structure("shortcut only", (2672, 2121, 1458), (57.3, 18.2, 5.1), (False, True)),
        Structure("neither", (2842, 2376, 1782), (66.3, 20.2, 5.4), (False, False)),
    ), "neither", "ReLU + shortcut"),
)
BY_GUIDELINE = {e.guideline: e for e in EXPERIMENTS}
NOTES = {
    "G1": "c1 = ⌊√(c²/r)⌋, c2 = r·c1: Table 1's pairs; FLOPs up to 5.5% under 1:1's",
    "G2": "c = ⌊c₁·√g⌋ down to a multiple of g: Table 2's widths, except ARM ×1 g=8, 176 "
          "where the paper prints 180 (8 groups cannot split 180)",
    "G3": "series: k convs of ⌊c/√k⌋ channels; parallel: k convs c→c/k, concatenated (our "
          "reading of the paper's appendix figure)",
    "G4": "bottleneck c → c/4 → c/4 (3×3) → c with batch norm; ReLU after each of the first "
          "two convs and after the add",
}


# --- channel counts: the paper's arithmetic ---------------------------------------------------

def g1_channels(c: int, r: int) -> tuple[int, int]:
    """(c1, c2) with c1:c2 = 1:r and c1·c2 ≈ c² (equal FLOPs): c1 = ⌊√(c²/r)⌋, exactly in
    integers (⌊√⌊y⌋⌋ = ⌊√y⌋)."""
    c1 = math.isqrt(c * c // r)
    return c1, r * c1


def g2_channels(c: int, g: int) -> int:
    """The width of a g-group 1×1 conv with the FLOPs of a dense c→c one (c·√g), rounded
    down to a multiple of g so that the groups divide it."""
    return math.isqrt(c * c * g) // g * g


def g3_channels(c: int, k: int, kind: str) -> int:
    """A series fragment's width (k convs c′→c′, k·c′² ≈ c²); a parallel block keeps c."""
    return math.isqrt(c * c // k) if kind == "series" else c


# --- the specs -------------------------------------------------------------------------------

def _conv(out: int, groups: int = 1, kernel: int = 1, name: str | None = None) -> dict:
    layer: dict[str, Any] = {"type": "conv", "out": out, "kernel": kernel}
    if groups > 1:
        layer["groups"] = groups
    if name:
        layer["name"] = name
    return layer


def _stack(block: list[dict]) -> list[dict]:
    return [{"type": "repeat", "n": STACK, "name": "blocks", "layers": block}]


def network(guideline: str, s: Structure, c: int) -> tuple[list[dict], int, str]:
    """The layers (spec mappings), input channels and a channel description of one
    structure at ×1 width ``c`` (scaled already)."""
    if guideline == "G1":
        c1, c2 = g1_channels(c, s.param)
        return _stack([_conv(c2, name="conv1"), _conv(c1, name="conv2")]), c1, f"{c1},{c2}"
    if guideline == "G2":
        cg = g2_channels(c, s.param)
        return [{"type": "repeat", "n": STACK, "name": "layers",
                 "layers": [_conv(cg, s.param)]}], cg, str(cg)
    if guideline == "G3":
        k, kind = s.param
        cf = g3_channels(c, k, kind)
        if kind == "series":
            block = [_conv(cf, name=f"conv{i + 1}") for i in range(k)]
            return _stack(block), cf, f"{cf}" + (f" ×{k}" if k > 1 else "")
        block = [{"type": "parallel", "name": "fragments", "merge": "concat",
                  "branches": [[_conv(c // k)] for _ in range(k)]}]
        return _stack(block), c, f"{c} → {k}×{c // k}"
    relu, shortcut = s.param
    mid = c // 4
    main: list[dict] = []
    for i, (out, kernel) in enumerate(((mid, 1), (mid, 3), (c, 1)), 1):
        conv = _conv(out, kernel=kernel, name=f"conv{i}")
        if kernel == 3:
            conv["padding"] = 1
        main += [conv, {"type": "bn", "name": f"bn{i}"}]
        if relu and i < 3:
            main.append({"type": "relu", "name": f"relu{i}"})
    block = [{"type": "residual", "name": "unit", "layers": main}] if shortcut else main
    if relu:
        block = block + [{"type": "relu", "name": "relu"}]
    return _stack(block), c, f"{c} ({mid} inside)"


@dataclass
class Case:
    """One structure at one width: its network counted, and (when measured) timed."""

    guideline: str
    structure: Structure
    width: int
    channels: str
    result: Result
    seconds: float | None = None  # the measured median, per batch
    spread: float | None = None
    predicted: float | None = None

    @property
    def key(self) -> str:
        return f"{self.guideline}/{self.structure.label}/x{self.width}"


def build_cases(channels: Channels = "arm", widths: tuple[int, ...] = WIDTHS,
                only: list[str] | None = None) -> list[Case]:
    """Every structure of every experiment (``only``: those guidelines) at every width,
    counted by the engine."""
    from costmodel.engine.walk import evaluate_layers

    if channels not in CHANNEL_SETS:
        raise CostModelError(f"channels must be gpu or arm, not {channels!r}", field="channels")
    bad = [w for w in widths if w not in WIDTHS]
    if bad or not widths:
        raise CostModelError(f"widths are ×1, ×2 and ×4 (the paper's), not {bad or 'none'}",
                             field="widths")
    selected = [g.upper() for g in only] if only else list(BY_GUIDELINE)
    unknown = [g for g in selected if g not in BY_GUIDELINE]
    if unknown:
        raise CostModelError(f"unknown guideline {', '.join(unknown)} (G1, G2, G3, G4)",
                             field="guideline")
    cases = []
    for e in EXPERIMENTS:
        if e.guideline not in selected:
            continue
        for w in widths:
            for s in e.structures:
                layers, c_in, text = network(e.guideline, s, e.base[channels] * w)
                name = f"{e.guideline}-{s.label}-x{w}".replace(" ", "").replace(":", "_")
                result = evaluate_layers(layers, input=INPUT, in_channels=c_in, name=name)
                cases.append(Case(e.guideline, s, w, text, result))
    return cases


def mac_lower_bound(h: int, w: int, flops: int) -> float:
    """Eq. (1): a 1×1 conv with B = hw·c1·c2 multiply-adds accesses at least
    2·√(hw·B) + B/hw elements, reached when c1 = c2."""
    hw = h * w
    return 2 * math.sqrt(hw * flops) + flops / hw


# --- latency prediction ----------------------------------------------------------------------

def predicted_seconds(result: Result, profile_path: str | Path | None) -> float | None:
    """Predicted seconds per forward pass of ``result`` from the latency profile at
    ``profile_path`` (``costmodel calibrate``; None without one): the latency package's sum of
    per-row predictions. The profile is read once per path (every case of a run shares it); a
    bad one is a ProfileError (exit 2)."""
    if profile_path is None:
        return None
    from costmodel.latency import predict

    return predict(result, _profile(str(profile_path)))[1]


def _profile(path: str):
    """The validated profile at ``path``, read once per run (the latency package loads only
    when a profile is given)."""
    if path not in _PROFILES:
        from costmodel.latency import load_profile

        _PROFILES[path] = load_profile(path)
    return _PROFILES[path]


_PROFILES: dict[str, Any] = {}


# --- verdicts ---------------------------------------------------------------------------------

@dataclass
class Verdict:
    """Whether a guideline holds on one platform: per width, is the reference structure the
    fastest (within TOLERANCE), and how much slower the extreme structure runs."""

    holds: str  # "holds", "partly", "does not hold" (each maybe "(noisy)"), "not measured"
    fastest: dict[int, str] = field(default_factory=dict)  # per width
    slowdown: dict[int, float] = field(default_factory=dict)  # extreme vs reference, per width
    text: str = ""

    def record(self) -> dict[str, Any]:
        return {"holds": self.holds, "fastest": {f"x{w}": s for w, s in self.fastest.items()},
                "slowdown": {f"x{w}": round(v, 4) for w, v in self.slowdown.items()},
                "text": self.text}


def verdict(e: Experiment, times: dict[tuple[str, int], float],
            spreads: dict[tuple[str, int], float] | None = None) -> Verdict:
    """The verdict from seconds per run (or inverse throughputs) of each (structure label,
    width); widths with a missing time are left out. ``spreads`` (relative p10–p90 of the
    measured runs) above NOISY mark the verdict noisy."""
    widths = [w for w in WIDTHS if all((s.label, w) in times for s in e.structures)]
    if not widths:
        return Verdict("not measured")
    v = Verdict("")
    held = 0
    for w in widths:
        ref = times[(e.reference, w)]
        v.fastest[w] = min(e.structures, key=lambda s: times[(s.label, w)]).label
        v.slowdown[w] = times[(e.extreme, w)] / ref - 1
        held += all(times[(s.label, w)] >= ref * (1 - TOLERANCE) for s in e.structures)
    v.holds = ("holds" if held == len(widths) else "partly" if held else "does not hold")
    amounts = ", ".join(f"{_pct(v.slowdown[w])} (×{w})" for w in widths)
    v.text = (f"{e.reference} fastest" if v.holds == "holds" else
              "fastest: " + ", ".join(f"{v.fastest[w]} (×{w})" for w in widths)) + \
        f"; time of {e.extreme} vs {e.reference}: {amounts}"
    worst = max((spreads or {}).values(), default=0.0)
    if worst > NOISY:
        v.holds += " (noisy)"
        v.text += f"; noisy: runs spread up to {100 * worst:.0f}% of their median"
    return v


def _pct(v: float) -> str:
    return f"{100 * v:+.0f}%".replace("-", "−")


def _ms(seconds: float | None) -> float | None:
    """Milliseconds to 4 significant digits (more than any timing here resolves)."""
    return None if seconds is None else float(f"{1000 * seconds:.4g}")


def paper_verdict(e: Experiment, platform: Channels) -> Verdict:
    """The same verdict from the paper's own throughputs."""
    times = {(s.label, w): 1 / getattr(s, platform)[i]
             for s in e.structures for i, w in enumerate(WIDTHS)}
    return verdict(e, times)


def measured_verdict(e: Experiment, cases: list[Case]) -> Verdict:
    mine = [c for c in cases if c.guideline == e.guideline and c.seconds is not None]
    return verdict(e, {(c.structure.label, c.width): c.seconds for c in mine},
                   {(c.structure.label, c.width): c.spread or 0.0 for c in mine})


# --- report ------------------------------------------------------------------------------------

@dataclass
class Report:
    cases: list[Case]
    channels: Channels
    measured: bool
    machine: dict[str, Any] | None = None  # device, threads, batch, torch…
    profile: str | None = None

    def experiments(self) -> list[Experiment]:
        present = {c.guideline for c in self.cases}
        return [e for e in EXPERIMENTS if e.guideline in present]


def _relative(cases: list[Case], e: Experiment) -> dict[str, dict[str, float | None]]:
    """Per case key: speed relative to the reference structure at the same width, here
    (measured) and in the paper (GPU, ARM)."""
    out: dict[str, dict[str, float | None]] = {}
    ref_index = [s.label for s in e.structures].index(e.reference)
    for c in cases:
        i = WIDTHS.index(c.width)
        ref = next((r for r in cases if r.width == c.width and r.structure.label == e.reference),
                   None)
        here = (ref.seconds / c.seconds if ref is not None and ref.seconds and c.seconds
                else None)
        out[c.key] = {
            "here": here,
            "gpu": c.structure.gpu[i] / e.structures[ref_index].gpu[i],
            "arm": c.structure.arm[i] / e.structures[ref_index].arm[i],
        }
    return out


def _records(report: Report, e: Experiment) -> list[dict[str, Any]]:
    cases = [c for c in report.cases if c.guideline == e.guideline]
    rel = _relative(cases, e)
    flops_ref = {c.width: c.result.totals.flops for c in cases
                 if c.structure.label == e.reference}
    rows = []
    for c in cases:
        t = c.result.totals
        rows.append({
            "guideline": e.guideline, "structure": c.structure.label, "width": f"×{c.width}",
            "channels": c.channels, "flops": t.flops,
            "flops_rel": t.flops / flops_ref[c.width] if c.width in flops_ref else None,
            "mac": t.mac,
            "ms": _ms(c.seconds),
            "spread": None if c.spread is None else round(c.spread, 4),
            "speed_here": rel[c.key]["here"],
            "paper_gpu": rel[c.key]["gpu"], "paper_arm": rel[c.key]["arm"],
            "predicted_ms": _ms(c.predicted),
        })
    return rows


_COLUMNS = [
    Column("structure", "structure"), Column("width", "width"),
    Column("channels", "channels"), Column("flops", "FLOPs", "si"),
    Column("flops_rel", "FLOPs vs ref", "ratio", drop=2), Column("mac", "MAC", "si"),
    Column("ms", "measured ms"), Column("spread", "spread", "pct", drop=1),
    Column("speed_here", "speed here", "ratio"),
    Column("paper_gpu", "paper GPU", "ratio"), Column("paper_arm", "paper ARM", "ratio"),
    Column("predicted_ms", "predicted ms", drop=1),
]


_MEASURED = {"ms", "spread", "speed_here"}  # columns left out when nothing was measured


def tables(report: Report) -> dict[str, Table]:
    """The verdicts, then one table per experiment."""
    out: dict[str, Table] = {"verdicts": verdict_table(report)}
    for e in report.experiments():
        rows = _records(report, e)
        notes = [f"speeds relative to {e.reference} at the same width (higher is faster); "
                 f"paper: {e.table}, GPU = GTX 1080Ti, ARM = Snapdragon 810, batch 1",
                 NOTES[e.guideline]]
        if not report.measured:
            notes.append("not measured: --measure times these networks on this machine")
        out[e.guideline] = Table(
            f"{e.guideline} — {GUIDELINES[e.guideline]} ({e.table}, {INPUT}×{INPUT}, "
            f"{STACK} blocks, {report.channels.upper()} widths)",
            [c for c in _COLUMNS if report.measured or c.key not in _MEASURED], rows,
            notes=notes)
    return out


def verdict_table(report: Report) -> Table:
    rows = []
    for e in report.experiments():
        here = measured_verdict(e, report.cases) if report.measured else Verdict("not measured")
        gpu, arm = paper_verdict(e, "gpu"), paper_verdict(e, "arm")
        rows.append({"guideline": e.guideline, "statement": GUIDELINES[e.guideline],
                     "here": here.holds, "by_how_much": here.text,
                     "paper_gpu": f"{gpu.holds}: {gpu.text}",
                     "paper_arm": f"{arm.holds}: {arm.text}"})
    m = report.machine
    where = (f"{m['device']}, {m['threads']} thread(s), batch {m['batch']}, torch "
             f"{m['torch']}, the fastest of {m.get('rounds', 1)} passes' medians"
             if m else "no measurement")
    notes = [f"here = {where}; a structure beats the reference only by more than "
             f"{TOLERANCE:.0%} (noise); slowdown = time / reference time − 1"]
    if report.profile:
        notes.append(f"predicted: from the latency profile {Path(report.profile).name} "
                     "(costmodel calibrate)")
    return Table("ShuffleNet V2 guidelines — do they hold on this machine?", [
        Column("guideline", "guideline"), Column("statement", "statement"),
        Column("here", "here"), Column("by_how_much", "by how much (here)"),
        Column("paper_gpu", "paper GPU"), Column("paper_arm", "paper ARM")], rows, notes=notes)


def payload(report: Report) -> dict[str, Any]:
    """The ``guidelines --format json`` contract (also what ``rules --guidelines`` reads)."""
    experiments = []
    for e in report.experiments():
        here = measured_verdict(e, report.cases) if report.measured else Verdict("not measured")
        experiments.append({
            "guideline": e.guideline, "statement": GUIDELINES[e.guideline], "table": e.table,
            "reference": e.reference, "extreme": e.extreme,
            "verdict": here.record(),
            "paper": {"gpu": paper_verdict(e, "gpu").record(),
                      "arm": paper_verdict(e, "arm").record()},
            "cases": _records(report, e)})
    return {"kind": "costmodel-guidelines", "version": 1, "channels": report.channels,
            "input": [INPUT, INPUT], "stack": STACK, "measured": report.measured,
            "machine": report.machine, "experiments": experiments}


# --- rules: the measured cost of a violation -----------------------------------------------

def violation_costs(data: dict[str, Any]) -> dict[str, str]:
    """From a ``guidelines --measure --format json`` document: per guideline (G1–G4), one
    sentence on what violating it cost on the machine that measured it, for ``rules`` to
    quote beside its findings. Guidelines not measured are left out."""
    if not isinstance(data, dict) or data.get("kind") != "costmodel-guidelines":
        raise CostModelError("not a `costmodel guidelines --format json` document",
                             field="kind")
    if not data.get("measured"):
        raise CostModelError("the guidelines document holds no measurement (run "
                             "`costmodel guidelines --measure --format json`)",
                             field="measured")
    m = data.get("machine") or {}
    where = f"{m.get('device', '?')}, {m.get('threads', '?')} thread(s)"
    out = {}
    for exp in data.get("experiments", []):
        slow = exp.get("verdict", {}).get("slowdown") or {}
        if not slow:
            continue
        amounts = ", ".join(f"{_pct(float(v))} ({w.replace('x', '×')})"
                            for w, v in slow.items())
        out[exp["guideline"]] = (f"measured on {where}: time of {exp['extreme']} vs "
                                 f"{exp['reference']} {amounts}, "
                                 f"guideline {exp['verdict']['holds']}")
    return out


def read_costs(file: str | Path) -> dict[str, str]:
    """``violation_costs`` of a guidelines JSON file."""
    from costmodel import documents

    try:
        return violation_costs(documents.read(Path(file), CostModelError, "guidelines file"))
    except CostModelError as e:
        e.file = e.file or str(file)
        raise


def quote_costs(findings: list, costs: dict[str, str]) -> list:
    """``findings`` (costmodel.analysis.rules.Finding) with the measured cost of their
    guideline appended to the reason of each that is not ok."""
    from dataclasses import replace

    return [replace(f, reason=f"{f.reason} [{costs[f.rule]}]")
            if f.severity != "ok" and f.rule in costs else f for f in findings]
