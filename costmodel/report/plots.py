"""The report's plots: plain plot data first (pure, comparable), then PNG bytes.

Two kinds: FLOPs vs params for the compared models (marker area ∝ MAC), and per-layer FLOPs
and MAC bars for one model. ``*_data`` functions build frozen dataclasses from Results;
``draw`` renders one with matplotlib (imported there, never at module level) in one fixed
style. Each PNG carries the SHA-256 of the data it shows in its metadata, so a staleness check
can compare what was plotted without depending on matplotlib's pixel output.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import Union

from costmodel.engine import CATEGORY_LABELS, Result
from costmodel.render.format import si

DATA_KEY = "costmodel-plot-data"
"""PNG text key holding ``sha256:<hex>`` of the plotted data."""

CATEGORY_COLORS = {
    "conv1x1": "#1f77b4",     # blue: where most multiply-adds of small networks sit
    "depthwise": "#ff7f0e",
    "conv": "#2ca02c",
    "fc": "#9467bd",
    "bn": "#7f7f7f",
    "activation": "#bcbd22",
    "other": "#8c564b",       # pooling, merges, shuffles, reshapes
}
MODEL_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                "#17becf", "#7f7f7f", "#bcbd22")

STYLE = {
    "font.family": "DejaVu Sans",   # ships with matplotlib: the same glyphs everywhere
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.8,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "savefig.dpi": 100,
    "path.simplify": False,
}
WIDTH_IN = 10.0


@dataclass(frozen=True)
class Point:
    label: str
    params: int
    flops: int
    mac: int


@dataclass(frozen=True)
class ScatterPlot:
    """FLOPs against params, one point per model, marker area proportional to MAC."""

    file: str
    title: str
    points: tuple[Point, ...]
    note: str


@dataclass(frozen=True)
class LayerBar:
    path: str
    category: str
    flops: int
    mac: int


@dataclass(frozen=True)
class LayerBars:
    """One model's layers in execution order; ``groups`` are (first bar, name) of each run of
    layers under one name (a stage, a block), for the axis labels."""

    file: str
    title: str
    bars: tuple[LayerBar, ...]
    groups: tuple[tuple[int, str], ...]
    note: str


Plot = Union[ScatterPlot, LayerBars]


def scatter_data(results: list[Result], labels: list[str], file: str) -> ScatterPlot:
    points = tuple(Point(label, r.totals.params, r.totals.flops, r.totals.mac)
                   for label, r in zip(labels, results))
    return ScatterPlot(file, "FLOPs vs params (marker area ∝ MAC)", points,
                       results[0].options.describe() if results else "")


def layer_groups(paths: list[str]) -> tuple[tuple[int, str], ...]:
    """Runs of consecutive layers under the same name, for the axis labels: ((start, name), ...).

    Layers group by their top-level name (``conv1``, ``stage3``); a top-level group holding
    more than a fifth of the layers is split one level further (``stage3.0``, ``stage3.1``),
    so long stages show their units."""
    heads = [p.split(".", 1)[0] for p in paths]
    big = {h for h in set(heads) if heads.count(h) > len(paths) / 5}
    keys = [".".join(p.split(".")[:2]) if h in big else h for p, h in zip(paths, heads)]
    groups: list[tuple[int, str]] = []
    for i, key in enumerate(keys):
        if not groups or groups[-1][1] != key:
            groups.append((i, key))
    return tuple(groups)


MAX_BARS = 60
"""Past this many layers a per-layer plot shows one bar per block or stage (a bar of 300+
layers is a pixel wide, and its labels cannot be read)."""


def block_keys(paths: list[str]) -> list[str]:
    """Each layer's block for aggregated bars: the deepest prefix of its path (up to four
    levels, ``stage3.0``, ``stage3``…) at which consecutive runs number at most MAX_BARS."""
    for depth in (4, 3, 2, 1):
        keys = [".".join(p.split(".")[:depth]) for p in paths]
        if sum(1 for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k) <= MAX_BARS:
            return keys
    return keys  # more top-level layers than MAX_BARS: one bar each, as named


def _aggregate(result: Result) -> tuple[LayerBar, ...]:
    """One bar per run of layers in the same block: FLOPs and MAC summed, coloured by the
    category holding most of its FLOPs (of its MAC for a block without FLOPs)."""
    rows = result.rows
    keys = block_keys([r.path for r in rows])
    bars: list[LayerBar] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i < len(rows) and keys[i] == keys[start]:
            continue
        run = rows[start:i]
        weight: dict[str, tuple[int, int]] = {}
        for r in run:
            f, m = weight.get(r.category, (0, 0))
            weight[r.category] = (f + r.flops, m + r.mac)
        category = max(weight, key=lambda c: weight[c])
        bars.append(LayerBar(keys[start], category, sum(r.flops for r in run),
                             sum(r.mac for r in run)))
        start = i
    return tuple(bars)


def layer_bars_data(result: Result, label: str, file: str) -> LayerBars:
    h, w = result.input
    note = result.options.describe()
    if len(result.rows) > MAX_BARS:
        bars = _aggregate(result)
        note = (f"{len(result.rows)} layers summed into {len(bars)} blocks (coloured by the "
                f"largest type). {note}")
        title = f"{label} — FLOPs and MAC per block ({h}×{w} input)"
    else:
        bars = tuple(LayerBar(r.path, r.category, r.flops, r.mac) for r in result.rows)
        title = f"{label} — FLOPs and MAC per layer ({h}×{w} input)"
    return LayerBars(file, title, bars, layer_groups([b.path for b in bars]), note)


def digest(plot: Plot) -> str:
    """``sha256:<hex>`` of the plot's data (what is drawn, not how)."""
    text = json.dumps({"kind": type(plot).__name__, **asdict(plot)}, sort_keys=True,
                      ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def tick_si(value: float, _pos=None) -> str:
    """Axis ticks: 100000000.0 → '100M', 2500000.0 → '2.5M', 0 → '0'."""
    text = si(int(value)) if float(value).is_integer() else si(value)
    mantissa = text.rstrip("kMGT")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa + text[len(text.rstrip("kMGT")):]


def draw(plot: Plot) -> bytes:
    """The plot as PNG bytes (byte-stable for one matplotlib version: fixed style, no dates)."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = _draw_scatter(Figure, plot) if isinstance(plot, ScatterPlot) else \
            _draw_layer_bars(Figure, plot)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={
            "Software": f"costmodel report (matplotlib {matplotlib.__version__})",
            DATA_KEY: digest(plot)},
            pil_kwargs={"compress_level": 1})  # 4× faster than the default 6, files ~10% larger
    return buf.getvalue()


def _note(fig, text: str) -> None:
    fig.text(0.01, 0.01, text, fontsize=8, color="#555555", ha="left", va="bottom")


def _nice(value: float) -> float:
    """Round to 1 significant digit (1, 2 or 5 × 10^k) for the size legend."""
    if value <= 0:
        return 0
    exp = len(str(int(value))) - 1
    for step in (5, 2, 1):
        if step * 10 ** exp <= value:
            return step * 10 ** exp
    return 10 ** exp


def _draw_scatter(Figure, plot: ScatterPlot):
    """Numbered markers on the axes; below them, the key (number, model, its totals) and the
    marker sizes. Labels never sit on the axes, so clustered models stay readable."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    pts = plot.points
    key_in = 0.2 * max(len(pts), 2) + 0.3  # height of the key below the axes
    height = 5.0 + key_in
    fig = Figure(figsize=(WIDTH_IN, height))
    fig.subplots_adjust(left=0.09, right=0.97, top=1 - 0.55 / height,
                        bottom=(key_in + 0.8) / height)  # fixed margins: no layout pass
    ax = fig.add_subplot()
    max_mac = max((p.mac for p in pts), default=1) or 1
    area = lambda mac: 80 + 1800 * mac / max_mac  # noqa: E731 - points²; a floor keeps tiny models visible
    for i, p in enumerate(pts):
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        ax.scatter([p.params], [p.flops], s=area(p.mac), color=color, alpha=0.5,
                   edgecolors=color, linewidths=1.5, zorder=3 + i)
        ax.annotate(str(i + 1), (p.params, p.flops), ha="center", va="center", fontsize=9,
                    fontweight="bold", color="#111111", zorder=20)
    ax.set_xlim(0, 1.12 * max((p.params for p in pts), default=1))
    ax.set_ylim(0, 1.15 * max((p.flops for p in pts), default=1))
    ax.xaxis.set_major_formatter(FuncFormatter(tick_si))
    ax.yaxis.set_major_formatter(FuncFormatter(tick_si))
    ax.set_xlabel("parameters")
    ax.set_ylabel("FLOPs (multiply-adds)")
    ax.set_title(plot.title, loc="left")
    keys = [Line2D([], [], marker="o", linestyle="", markersize=9, alpha=0.6,
                   color=MODEL_COLORS[i % len(MODEL_COLORS)]) for i in range(len(pts))]
    fig.legend(keys, [f"{i + 1}  {p.label}: {tick_si(p.flops)} FLOPs · {tick_si(p.params)} "
                      f"params · {tick_si(p.mac)} MAC" for i, p in enumerate(pts)],
               loc="upper left", bbox_to_anchor=(0.075, (key_in + 0.15) / height),
               handletextpad=0.4, labelspacing=0.35, fontsize=9)
    refs = sorted({_nice(max_mac), _nice(max_mac / 4)} - {0}, reverse=True)
    sizes = [Line2D([], [], marker="o", linestyle="", color="#cccccc", markeredgecolor="#888888",
                    markersize=math.sqrt(area(m))) for m in refs]
    fig.legend(sizes, [f"{tick_si(m)} MAC" for m in refs], title="marker area: MAC",
               loc="upper right", bbox_to_anchor=(0.97, (key_in + 0.15) / height),
               borderpad=0.6, title_fontsize=9, ncol=len(refs), columnspacing=1.6,
               handlelength=5)  # wide enough for the largest marker
    _note(fig, plot.note)
    return fig


def _bars(ax, heights: list[int], colors: list[str]) -> None:
    """Vertical bars at 0..n-1 as one PolyCollection (ax.bar makes one artist per bar, which
    is ten times slower for a few hundred layers)."""
    from matplotlib.collections import PolyCollection

    verts = [((x - 0.42, 0), (x - 0.42, h), (x + 0.42, h), (x + 0.42, 0))
             for x, h in enumerate(heights)]
    ax.add_collection(PolyCollection(verts, facecolors=colors, edgecolors="none", zorder=2))
    ax.set_ylim(0, 1.08 * max(max(heights, default=0), 1))


def _draw_layer_bars(Figure, plot: LayerBars):
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(WIDTH_IN, 6.6))
    fig.subplots_adjust(left=0.09, right=0.98, top=0.88, bottom=0.17, hspace=0.12)
    ax_flops, ax_mac = fig.subplots(2, 1, sharex=True)
    n = len(plot.bars)
    colors = [CATEGORY_COLORS.get(b.category, CATEGORY_COLORS["other"]) for b in plot.bars]
    _bars(ax_flops, [b.flops for b in plot.bars], colors)
    _bars(ax_mac, [b.mac for b in plot.bars], colors)
    ax_flops.set_ylabel("FLOPs (multiply-adds)")
    ax_mac.set_ylabel("MAC (elements)")
    bounds = [start for start, _ in plot.groups] + [n]
    centers, names, last = [], [], None
    min_gap = max(1.0, n / 40)  # about one label per 1/40 of the axis, so labels never overlap
    for k, (start, name) in enumerate(plot.groups):
        end = bounds[k + 1]
        if k % 2:  # alternate shading shows where each group starts and ends
            for ax in (ax_flops, ax_mac):
                ax.axvspan(start - 0.5, end - 0.5, color="#f0f0f0", zorder=0, linewidth=0)
        center = (start + end - 1) / 2
        if last is None or center - last >= min_gap:
            centers.append(center)
            names.append(name)
            last = center
    for ax in (ax_flops, ax_mac):
        ax.yaxis.set_major_formatter(FuncFormatter(tick_si))
        ax.grid(axis="x", visible=False)
        ax.set_xlim(-0.75, n - 0.25)
    ax_mac.set_xticks(centers, names, rotation=90, fontsize=8)
    ax_mac.tick_params(axis="x", length=0)
    fig.text(0.09, 0.965, plot.title, fontsize=STYLE["axes.titlesize"], fontweight="bold",
             ha="left", va="top")
    used = [c for c in CATEGORY_LABELS if any(b.category == c for b in plot.bars)]
    fig.legend([Patch(color=CATEGORY_COLORS[c]) for c in used],
               [CATEGORY_LABELS[c] for c in used], ncol=len(used), loc="upper left",
               bbox_to_anchor=(0.085, 0.935), handlelength=1.2, columnspacing=1.2)
    _note(fig, plot.note)
    return fig


# --------------------------------------------------------------------------------------------
# A sweep's grid: FLOPs against params or MAC (``costmodel sweep --plot``)
# --------------------------------------------------------------------------------------------

SWEEP_FORMATS = ("png", "svg", "pdf")


@dataclass(frozen=True)
class SweepPlot:
    """Every configuration of a sweep as (FLOPs, cost), the front as a line, the budget as
    dashed limits and the best configuration circled. Drawn as the report's chart: the cost
    (params or MAC) across, FLOPs up."""

    title: str
    cost: str
    cost_label: str
    flops_label: str
    points: tuple[tuple[int, int], ...]
    inside: tuple[bool, ...]
    """Within the budget (every point, without one)."""
    front: tuple[int, ...]
    """Indices on the front, in drawing order (by FLOPs, then cost)."""
    front_label: str
    budgeted: bool
    flops_limit: int | None
    cost_limit: int | None
    best: int | None
    best_label: str


def sweep_plot_data(result) -> SweepPlot:
    """The plot of a ``costmodel.analysis.sweep.SweepResult``."""
    from costmodel.analysis.sweep import front_name

    cost = result.cost
    points = tuple((p.totals.flops, p.metric(cost)) for p in result.points)
    limits = dict(result.budget.limits)
    limits.setdefault("latency", limits.get("latency_ms"))  # --pareto latency, --max-latency
    labels = {"params": "parameters", "mac": "MAC (elements read + written)",
              "latency": "predicted latency (ms)"}
    axes = ", ".join(a.label for a in result.axes) or "no axes"
    among = " within the budget" if result.budget else ""
    return SweepPlot(
        title=f"{result.model}: {len(points)} configurations over {axes}", cost=cost,
        cost_label=labels[cost],
        flops_label="FLOPs (multiply-adds)" if result.options.flops_per_madd == 1 else "FLOPs",
        points=points, inside=tuple(ok or not result.budget for ok in result.fits),
        front=tuple(sorted(result.front, key=lambda i: points[i])),
        front_label=f"front: {front_name(cost)}{among}",
        budgeted=bool(result.budget), flops_limit=limits.get("flops"),
        cost_limit=limits.get(cost), best=result.best,
        best_label="largest within " + result.budget.describe())


def draw_sweep(plot: SweepPlot, fmt: str = "png") -> bytes:
    """The sweep plot as ``fmt`` (png, svg, pdf) bytes, in the report's style (``STYLE``, the
    cost across and FLOPs up, ticks as the tables write numbers); matplotlib is imported here,
    never on the analytic path (a Figure of its own: no pyplot, no global state)."""
    if fmt not in SWEEP_FORMATS:
        raise ValueError(f"a sweep plot is {', '.join(SWEEP_FORMATS)}, not {fmt!r}")
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = sweep_figure(plot)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
    return buf.getvalue()


def sweep_figure(plot: SweepPlot):
    """The sweep plot's matplotlib Figure (call within ``rc_context(STYLE)``)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    xs = [cost for _, cost in plot.points]
    ys = [flops for flops, _ in plot.points]
    fig = Figure(figsize=(WIDTH_IN, 6.0))
    ax = fig.add_subplot()
    outside = [i for i, ok in enumerate(plot.inside) if not ok]
    inside = [i for i, ok in enumerate(plot.inside) if ok]
    if outside:  # no legend entry for what is not there (no budget: nothing is over)
        ax.scatter([xs[i] for i in outside], [ys[i] for i in outside], s=14,
                   color="#bbbbbb", label="over budget")
    ax.scatter([xs[i] for i in inside], [ys[i] for i in inside], s=14,
               color=MODEL_COLORS[0], label="within budget" if plot.budgeted
               else "configurations")
    if plot.front:
        ax.plot([xs[i] for i in plot.front], [ys[i] for i in plot.front], "-o",
                color=MODEL_COLORS[3], ms=4, lw=1.5, label=plot.front_label)
    if plot.flops_limit is not None:
        ax.axhline(plot.flops_limit, ls="--", color=MODEL_COLORS[1], lw=1)
    if plot.cost_limit is not None:
        ax.axvline(plot.cost_limit, ls="--", color=MODEL_COLORS[1], lw=1)
    if plot.best is not None:
        ax.scatter([xs[plot.best]], [ys[plot.best]], s=140, facecolors="none",
                   edgecolors=MODEL_COLORS[1], linewidths=2, label=plot.best_label)
    ax.set_xlim(left=0)  # from the origin, as the report's chart
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(FuncFormatter(tick_si))
    ax.yaxis.set_major_formatter(FuncFormatter(tick_si))
    ax.set_xlabel(plot.cost_label)
    ax.set_ylabel(plot.flops_label)
    ax.set_title(plot.title, loc="left")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig
