"""``costmodel calibrate``: layers timed per operator class, fitted into a latency profile
(``costmodel.latency.profile``). Needs torch.

Two methods (METHODS). ``context`` (the default): random synthetic networks of the zoo's shape
(``synthetic_network``; never a zoo model), each timed in plain passes (its total) and in
passes with bench's timestamp hooks (each row in situ, with the caches a real pass leaves it),
the fastest of 3 rounds;
per class, t = o + max(madds/F, bytes/B) or o + madds/F + bytes/B is fitted to the rows
(CONTEXT_POWER), and the module dispatch between the timestamps is the networks' median
(total − Σ rows) per row, added to every class's overhead. ``layers``: the first design,
below — single layers from small specs over a grid of shapes.

Each point is one primitive built from a small spec by the torch builder (the modules the zoo
runs as), timed with the one timing rule (``costmodel.measure.timing.time_callable``) in eval
and inference mode, at the profile's batch and thread count; each timed run goes through
several copies of the layer (own weights each, ``_copies``) so that weights come from memory as
in a network. No zoo model is timed or fitted:
every zoo model stays held out for ``benchmarks/bench_latency.py``.

Fit, per class: t = o + max(madds/F, bytes/B) (``combine: max``), minimizing the squared
relative error. The sum form (o + madds/F + bytes/B) is a weighted non-negative least squares
problem, solved exactly (``nnls``); the max form is fitted by a log-spaced search over F and B
around the sum's rates, with o in closed form for each. The form with the smaller median
relative error over all points is kept.
"""

from __future__ import annotations

import contextlib
import types
import platform
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from costmodel.latency.predict import features
from costmodel.latency.profile import CLASSES, ClassFit, Profile, VERSION

Layer = tuple[list[dict], int, int]
"""A microbenchmark: spec layers, input channels, input side."""


def _grid(quick: bool) -> dict[str, list[Layer]]:
    """The shapes timed per class: channels and sides as the zoo's networks have them
    (56×56×24 to 7×7×1024), kernels 3 to 7, strides 1 and 2. ``quick``: a third of them."""
    sides = (7, 14, 28, 56, 112)
    g: dict[str, list[Layer]] = {c: [] for c in CLASSES}
    for s in sides:
        for c in (16, 32, 64, 128, 256, 512):
            n = c * s * s
            if not 2_000 <= n <= 1_700_000:
                continue
            for k, stride in ((3, 1), (3, 2), (5, 1), (7, 2)):
                g["conv"].append(([{"type": "conv", "out": c * stride, "kernel": k,
                                    "stride": stride}], c, s))
            for co in (c // 2, c, 2 * c, 4 * c):
                g["conv1x1"].append(([{"type": "conv", "out": co, "kernel": 1}], c, s))
            for groups, k in ((2, 3), (4, 1), (8, 1), (4, 3), (8, 3)):
                if c % groups == 0 and c // groups >= 2:
                    g["grouped_conv"].append(([{"type": "conv", "out": c, "kernel": k,
                                                "groups": groups}], c, s))
            for k, stride in ((3, 1), (3, 2), (5, 1), (5, 2), (7, 1)):
                g["depthwise"].append(([{"type": "dwconv", "kernel": k, "stride": stride}], c, s))
            g["bn"].append(([{"type": "bn"}], c, s))
            for act in ("relu", "relu6", "leaky_relu"):
                g["relu"].append(([{"type": act}], c, s))
            for act in ("hswish", "swish", "sigmoid", "hsigmoid", "prelu"):
                g["activation"].append(([{"type": act}], c, s))
            g["pool"] += [([{"type": "max_pool", "kernel": 3, "stride": 2}], c, s),
                          ([{"type": "avg_pool", "kernel": 3, "stride": 1}], c, s)]
            g["global_pool"].append(([{"type": "global_pool"}], c, s))
            g["merge"] += [([{"type": "parallel", "branches": [[], []], "merge": m}], c, s)
                           for m in ("add", "concat", "multiply")]
            g["data_movement"].append(([{"type": "channel_shuffle", "groups": 4}], c, s))
            g["view"].append(([{"type": "identity"}], c, s))
            g["container"].append(([{"type": "sequential", "layers": [{"type": "identity"}]}],
                                    c, s))
    for c in (64, 256, 512, 1024, 1280, 2048, 4096, 9216):
        for out in (10, 100, 1000, 4096):
            g["linear"].append(([{"type": "flatten"}, {"type": "linear", "out": out}], c, 1))
    if quick:
        g = {c: pts[::3] or pts for c, pts in g.items()}
    return g


COLD_BYTES = 48 * 2**20
"""Weights a timing cycles through, at least: more than this CPU's caches hold (a network's
weights are read from memory, not from a cache warmed by the previous run of the same layer)."""


def _copies(result) -> int:
    """How many copies of a layer (each with its own weights) one timed run goes through, so
    that their weights and outputs together exceed COLD_BYTES: 1 to 16. Timing one copy over
    and over keeps its weights in cache, which no layer of a real network enjoys; measured on
    the zoo, that made single layers ~1.5× faster than the same layers inside the network."""
    per_copy = sum(r.params + r.out.numel for r in result.rows) * 4
    return max(1, min(16, -(-COLD_BYTES // max(per_copy, 1))))


@contextlib.contextmanager
def thread_clock():
    """Time with the calling thread's CPU time instead of the wall clock, for a machine shared
    with other work: with one torch thread the forward pass runs in the calling thread, so its
    CPU time leaves out the time the scheduler gives other processes (which on a loaded machine
    inflates wall time several-fold, unevenly). It still includes cache and memory-bandwidth
    contention. ``time_callable``'s rule is unchanged; only its clock is swapped."""
    from costmodel.measure import bench, timing

    saved = timing.time, bench.time  # bench's per-layer timestamps too
    timing.time = bench.time = types.SimpleNamespace(perf_counter=time.thread_time)
    try:
        yield
    finally:
        timing.time, bench.time = saved


@dataclass(frozen=True)
class Point:
    cls: str
    madds: float
    nbytes: float
    seconds: float


def measure(*, device: str = "cpu", threads: int = 1, batch: int = 1, quick: bool = False,
            min_time: float | None = None, per_class: int | None = None,
            progress: Callable[[str], None] | None = None) -> list[Point]:
    """Time every microbenchmark of the grid (``per_class``: only the first N shapes of each
    class, spread over the grid; for tests)."""
    import torch

    from costmodel.crosscheck.builder import build, example_input
    from costmodel.engine import evaluate
    from costmodel.measure.timing import time_callable
    from costmodel.options import Options
    from costmodel.spec.loader import layers_spec

    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device == "cuda" else None
    min_time = min_time if min_time is not None else (0.02 if quick else 0.05)
    options = Options(batch=batch)
    points: list[Point] = []
    for cls, layers in _grid(quick).items():
        if per_class is not None:
            layers = layers[::max(1, len(layers) // per_class)][:per_class]
        if progress:
            progress(f"{cls}: {len(layers)} shapes")
        for spec_layers, c, s in layers:
            result = evaluate(layers_spec(spec_layers, input=s, in_channels=c), options=options)
            copies = _copies(result)
            modules = [build(result).to(device) for _ in range(copies)]
            x = example_input(result, batch).to(device)
            with torch.inference_mode():
                t = time_callable(lambda: [m(x) for m in modules], min_time=min_time,
                                  warmup=2, min_runs=5, sync=sync)
            rows = [r for r in result.rows if r.type not in ("flatten",)]
            feats = [features(r) for r in rows]
            seconds = t.median / copies
            if cls == "container":  # the block's call alone: less the identity inside it
                views = [p.seconds for p in points if p.cls == "view"]
                seconds = max(1e-9, seconds - float(np.median(views))) if views else seconds
                feats = []
            points.append(Point(cls, sum(f[1] for f in feats), sum(f[2] for f in feats),
                                seconds))
    return points


# --- in context: synthetic networks -----------------------------------------------------------
# Single layers timed alone run 1.5–1.7× faster than inside a network (their weights and input
# stay in cache from the previous run, and no module dispatch sits between them), so the
# default calibration times layers where they belong: inside random networks built from the
# vocabulary at realistic widths and map sizes (never a zoo model), timed per layer by bench's
# hooked passes (bench.time_layers) and as a whole in plain passes.

_ACTS = ("relu", "relu", "relu6", "hswish", "swish", "leaky_relu")


def _cba(out: int, k: int = 3, s: int = 1, g: int = 1, act: str | None = "relu") -> list[dict]:
    """conv → bn → activation."""
    conv: dict = {"type": "conv", "out": out, "kernel": k, "stride": s}
    if g > 1:
        conv["groups"] = g
    return [conv, {"type": "bn"}] + ([{"type": act}] if act else [])


def _block(rng, c: int, out: int, s: int, act: str) -> tuple[list[dict], int]:
    """One random block of the zoo's kinds (plain, grouped, depthwise-separable, inverted
    residual ± SE, bottleneck, basic, shuffle unit, fire) on c channels: (layers, out channels)."""
    kind = rng.choice(["plain", "dwsep", "ir", "bottleneck", "shuffle", "fire", "grouped",
                       "basic"])
    if s == 2 and kind in ("ir", "bottleneck", "shuffle", "basic"):
        kind = rng.choice(["plain", "dwsep", "grouped"])
    if kind == "grouped" and (c % 8 or out % 8):
        kind = "plain"
    if kind == "shuffle" and c % 4:
        kind = "plain"
    if kind == "plain":
        return _cba(out, rng.choice((1, 3, 3, 5)), s, act=act), out
    if kind == "grouped":  # ResNeXt's 3×3, or ShuffleNet's 1×1 group convs around a shuffle
        g = rng.choice((2, 4, 8))
        if s == 2 or rng.random() < 0.5:
            return _cba(out, 3, s, g, act), out
        return (_cba(out, 1, 1, g, act) + [{"type": "channel_shuffle", "groups": g}]
                + _cba(out, 1, 1, g, None)), out
    if kind == "dwsep":
        return ([{"type": "dwconv", "kernel": rng.choice((3, 3, 5, 7)), "stride": s},
                 {"type": "bn"}, {"type": act}] + _cba(out, 1, act=act)), out
    if kind == "ir":
        inner = _cba(c * rng.choice((1, 3, 4, 6)), 1, act=act) + [
            {"type": "dwconv", "kernel": rng.choice((3, 5))}, {"type": "bn"}, {"type": act}]
        if rng.random() < 0.3:
            inner.append({"type": "se", "ratio": 0.25})
        return [{"type": "residual", "layers": inner + _cba(c, 1, act=None)}], c
    if kind == "bottleneck":
        m = max(8, c // 4)
        g = rng.choice((1, 1, 4)) if m % 4 == 0 else 1
        inner = _cba(m, 1) + _cba(m, 3, g=g) + _cba(c, 1, act=None)
        return [{"type": "residual", "layers": inner}, {"type": "relu"}], c
    if kind == "basic":
        return [{"type": "residual", "layers": _cba(c, 3) + _cba(c, 3, act=None)},
                {"type": "relu"}], c
    if kind == "shuffle":
        h = c // 2
        right = _cba(h, 1) + [{"type": "dwconv", "kernel": 3}, {"type": "bn"}] + _cba(h, 1)
        return [{"type": "parallel", "split": "half", "branches": [[], right],
                 "merge": "concat"}, {"type": "channel_shuffle", "groups": 2}], c
    e = max(8, out // 2)  # fire: squeeze, then 1×1 and 3×3 expands concatenated
    return ([{"type": "conv", "out": max(8, c // 8), "kernel": 1}, {"type": "relu"},
             {"type": "parallel", "merge": "concat", "branches": [
                 [{"type": "conv", "out": e, "kernel": 1}, {"type": "relu"}],
                 [{"type": "conv", "out": e, "kernel": 3}, {"type": "relu"}]]}]), 2 * e


def synthetic_network(rng) -> tuple[list[dict], int]:
    """A random network of the zoo's shape (spec layers, input side): a stem, stages halving
    the map down to 7×7 (or 4×4 from a 32×32 input) with random blocks and widths, a head
    (global pool and linear, sometimes a 1×1 conv before it, sometimes a wide FC stack)."""
    side = rng.choice((224, 224, 224, 160, 192, 32, 32, 320))
    act = rng.choice(_ACTS)
    c = rng.choice((8, 16, 16, 24, 32, 48, 64))
    layers = _cba(c, rng.choice((3, 3, 7)), 1 if side == 32 else 2, act=act)
    s = side if side == 32 else side // 2
    if side > 32 and rng.random() < 0.6:
        layers.append({"type": rng.choice(("max_pool", "avg_pool")), "kernel": 3, "stride": 2,
                       "padding": 1})
        s = -(-s // 2)
    while s > 7:
        out = min(2048, int(c * rng.choice((1.5, 2, 2, 3))) // 8 * 8)
        for i in range(rng.choice((1, 2, 3, 4))):
            b, c = _block(rng, c, out if i == 0 else c, 2 if i == 0 else 1, act)
            layers += b
        s = -(-s // 2)
    if rng.random() < 0.5:
        c = rng.choice((512, 1024, 1280))
        layers += _cba(c, 1, act=act)
    if rng.random() < 0.15 and c * s * s <= 16384:  # alexnet/vgg-like head: wide FC layers
        layers += [{"type": "flatten"}, {"type": "linear", "out": 4096}, {"type": "relu"},
                   {"type": "linear", "out": 4096}, {"type": "relu"}]
    else:
        layers += [{"type": "global_pool"}, {"type": "flatten"}]
    layers.append({"type": "linear", "out": 1000})
    return layers, side


MAX_SYNTHETIC_FLOPS = 3e9
"""A synthetic network over this many FLOPs is drawn again (calibration time stays short)."""


@dataclass(frozen=True)
class Network:
    """One synthetic network measured: its rows' points (per-layer times in hooked passes),
    the plain total, and how many module calls of each kind it has."""

    points: list[Point]
    total: float
    rows: int
    blocks: int


def synthetic_results(n: int, seed: int = 0, options=None) -> list:
    """``n`` evaluated synthetic networks (deterministic for a seed)."""
    import random

    from costmodel.engine import evaluate
    from costmodel.options import Options
    from costmodel.spec.loader import layers_spec

    rng = random.Random(seed)
    out = []
    while len(out) < n:
        layers, side = synthetic_network(rng)
        result = evaluate(layers_spec(layers, input=side, name=f"synthetic{len(out)}"),
                          options=options or Options())
        if result.totals.flops <= MAX_SYNTHETIC_FLOPS:
            out.append(result)
    return out


def measure_networks(*, device: str = "cpu", threads: int = 1, batch: int = 1,
                     networks: int = 24, seed: int = 0, min_time: float = 0.15,
                     rounds: int = 3, progress: Callable[[str], None] | None = None
                     ) -> list[Network]:
    """Time ``networks`` synthetic networks: plain passes for the total, hooked passes for
    every row (bench.time_layers), in ``rounds`` alternating rounds of ``min_time / rounds``
    seconds each; each figure is the fastest round's median (the total's, and each row's), as
    ``guidelines --measure`` does: on a shared machine the load changes from second to second,
    and the fastest round is the nearest to an idle machine's (on an idle one, rounds agree)."""
    import torch

    from costmodel.crosscheck.builder import build, example_input
    from costmodel.latency.predict import _containers
    from costmodel.measure.bench import check_memory, time_layers
    from costmodel.measure.timing import time_callable
    from costmodel.options import Options

    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device == "cuda" else None
    per_round = min_time / rounds
    measured = []
    for i, result in enumerate(synthetic_results(networks, seed, Options(batch=batch))):
        check_memory(result, batch, device)  # a large --batch: refused before allocating
        model = build(result).to(device)
        x = example_input(result, batch).to(device)
        totals, layers = [], {r.path: [] for r in result.rows}
        with torch.inference_mode():
            for _ in range(rounds):
                totals.append(time_callable(lambda: model(x), min_time=per_round, warmup=2,
                                            sync=sync).median)
                for path, t in time_layers(result, model, x, min_time=per_round,
                                           device=device)[0].items():
                    layers[path].append(t.median)
        points = [Point(*features(r), min(layers[r.path])) for r in result.rows]
        opens = _containers(result.tree)
        measured.append(Network(points, min(totals), len(result.rows), sum(opens.values())))
        if progress:
            progress(f"network {i + 1}/{networks}: {len(points)} layers, "
                     f"{result.totals.flops / 1e6:.0f} MFLOPs, {min(totals) * 1e3:.1f} ms")
    return measured


def dispatch(networks: list[Network]) -> float:
    """Seconds per module call outside the timestamps (dispatch, nn.Sequential's loop, a
    block's call): the median over the networks of (plain total − Σ rows) / rows, at least 0.
    A median, not a least-squares fit: on a loaded machine some networks' plain passes are
    slowed far more than their per-row medians, and one such network would dominate a fit."""
    return max(0.0, float(np.median([(n.total - sum(p.seconds for p in n.points)) / n.rows
                                     for n in networks])))


CONTEXT_POWER = 0.5
"""The in-context fit minimizes Σ((prediction − t)/√t)²: between the relative error (power 1,
which lets the many tiny rows of a network — a relu on 7×7 — decide the rates) and the
absolute (power 0, which fits only the largest rows). Measured on 24 synthetic networks (a
loaded machine): the networks' Σ rows off by a median 19% at 0.5, 22% at 1, 33% at 0."""


# --- fitting ----------------------------------------------------------------------------------

def nnls(a: np.ndarray, b: np.ndarray, iterations: int = 200) -> np.ndarray:
    """min ‖a·x − b‖ subject to x ≥ 0 (Lawson–Hanson active set; scipy is not a dependency)."""
    n = a.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    for _ in range(iterations):
        w = a.T @ (b - a @ x)
        if passive.all() or w[~passive].max(initial=-np.inf) <= 1e-12:
            break
        passive[np.argmax(np.where(passive, -np.inf, w))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            bad = passive & (z <= 0)
            alpha = np.min(x[bad] / (x[bad] - z[bad]))
            x = x + alpha * (z - x)
            passive &= x > 1e-15
    return x


def _columns(madds: np.ndarray, nbytes: np.ndarray) -> list[np.ndarray]:
    cols = [np.ones_like(madds)]
    if madds.any():
        cols.append(madds)
    if nbytes.any():
        cols.append(nbytes)
    return cols


def fit_sum(madds, nbytes, t, power: float = 1.0) -> tuple[float, float, float]:
    """(overhead s, s per madd, s per byte) minimizing Σ((prediction − t) / t^power)²: the
    relative squared error for power 1, the absolute for 0."""
    cols = _columns(madds, nbytes)
    w = t ** -power
    a = np.stack(cols, axis=1) * w[:, None]
    norms = np.linalg.norm(a, axis=0)  # unit columns: madds (~1e8) beside ones, well posed
    b = t * w
    x = list(nnls(a / norms, b / np.linalg.norm(b)) * np.linalg.norm(b) / norms)
    o = x.pop(0)
    per_madd = x.pop(0) if madds.any() else 0.0
    per_byte = x.pop(0) if nbytes.any() else 0.0
    return o, per_madd, per_byte


def _predict(o, per_madd, per_byte, madds, nbytes, combine: str) -> np.ndarray:
    work = np.maximum(madds * per_madd, nbytes * per_byte) if combine == "max" \
        else madds * per_madd + nbytes * per_byte
    return o + work


def _overhead(work: np.ndarray, t: np.ndarray, power: float = 1.0) -> float:
    """The o ≥ 0 minimizing Σ((o + work − t) / t^power)²."""
    w = t ** (-2 * power)
    return max(0.0, float(np.sum(w * (t - work)) / np.sum(w)))


def fit_max(madds, nbytes, t, power: float = 1.0) -> tuple[float, float, float]:
    """The max form: a log-spaced search over the two rates around the sum form's."""
    o, pm, pb = fit_sum(madds, nbytes, t, power)
    best = (np.inf, o, pm, pb)
    scales = np.geomspace(0.25, 4, 33)
    for sm in (scales if pm else [0.0]):
        for sb in (scales if pb else [0.0]):
            work = np.maximum(madds * pm * sm, nbytes * pb * sb)
            oo = _overhead(work, t, power)
            err = float(np.sum(((oo + work - t) / t ** power) ** 2))
            if err < best[0]:
                best = (err, oo, pm * sm, pb * sb)
    return best[1:]


def relative_errors(fits: dict, points: list[Point], combine: str) -> np.ndarray:
    errs = []
    for p in points:
        o, pm, pb = fits[p.cls]
        pred = _predict(o, pm, pb, np.array(p.madds), np.array(p.nbytes), combine)
        errs.append(abs(float(pred) / p.seconds - 1))
    return np.array(errs)


def fit(points: list[Point], combine: str | None = None, power: float = 1.0
        ) -> tuple[str, dict[str, tuple[float, float, float]], dict]:
    """The better combine form (or ``combine``), its per-class parameters, and each form's
    error (``power``: see ``fit_sum``)."""
    by_class: dict[str, list[Point]] = {}
    for p in points:
        by_class.setdefault(p.cls, []).append(p)
    forms = {}
    for form, fitter in (("sum", fit_sum), ("max", fit_max)):
        fits = {}
        for c, pts in by_class.items():
            arr = [np.array([getattr(p, f) for p in pts], dtype=float)
                   for f in ("madds", "nbytes", "seconds")]
            fits[c] = fitter(*arr, power)
        forms[form] = (fits, relative_errors(fits, points, form))
    summary = {k: {"median_error": round(float(np.median(e)), 4),
                   "within_10pct": round(float(np.mean(e <= 0.10)), 4)}
               for k, (_, e) in forms.items()}
    combine = combine or min(forms, key=lambda k: float(np.median(forms[k][1])))
    return combine, forms[combine][0], summary


def machine(device: str = "cpu") -> dict[str, str]:
    """The profile's ``machine``: bench's description of it (one in the package), as text,
    with the host name."""
    from costmodel.measure.bench import machine as describe

    info = {k: str(v) for k, v in describe(device).items() if v is not None}
    return {"host": platform.node() or "?", **info}


METHODS = ("context", "layers")
"""context: synthetic networks timed per layer in real passes (the default); layers: single
layers timed alone over a grid of shapes (the first design, kept for comparison)."""


def calibrate(*, device: str = "cpu", threads: int = 1, batch: int = 1, quick: bool = False,
              min_time: float | None = None, per_class: int | None = None,
              method: str = "context", networks: int | None = None,
              progress: Callable[[str], None] | None = None) -> Profile:
    """Measure and fit: a Profile (``method``: one of METHODS; ``networks`` and ``quick``
    size the context run, ``per_class`` and ``quick`` the layers run)."""
    start = time.perf_counter()
    if method == "context":
        nets = measure_networks(device=device, threads=threads, batch=batch,
                                networks=networks or (8 if quick else 24),
                                min_time=min_time or (0.05 if quick else 0.15),
                                progress=progress)
        profile = profile_in_context(nets, device=device, threads=threads, batch=batch)
    else:
        points = measure(device=device, threads=threads, batch=batch, quick=quick,
                         min_time=min_time, per_class=per_class, progress=progress)
        profile = profile_of(points, device=device, threads=threads, batch=batch, quick=quick)
    return profile.model_copy(update={"fit": {**profile.fit,
                                              "seconds": round(time.perf_counter() - start, 1)}})


def profile_of(points: list[Point], *, device: str = "cpu", threads: int = 1, batch: int = 1,
               quick: bool = False, combine: str | None = None) -> Profile:
    """Fit measured points into a Profile (of the better form, or ``combine``)."""
    import torch

    combine, fits, summary = fit(points, combine)
    classes = {}
    for c, (o, pm, pb) in fits.items():
        pts = [p for p in points if p.cls == c]
        errs = relative_errors(fits, pts, combine)
        classes[c] = ClassFit(overhead_us=round(o * 1e6, 4),
                              gmadds_per_s=round(1 / pm / 1e9, 6) if pm > 0 else None,
                              gbytes_per_s=round(1 / pb / 1e9, 6) if pb > 0 else None,
                              points=len(pts), median_error=round(float(np.median(errs)), 4))
    return Profile(version=VERSION, machine=machine(device), torch=torch.__version__, device=device,
                   threads=threads, dtype="float32", batch=batch, combine=combine,
                   classes=classes, fit={"method": "layers", "points": len(points),
                                         "quick": quick, "forms": summary})


def network_errors(networks: list[Network], profile: Profile) -> np.ndarray:
    """|predicted / measured − 1| of each network's plain total (rows' predictions plus one
    ``dispatch`` per row, which the profile's overheads hold)."""
    from costmodel.latency.predict import seconds

    return np.array([abs(sum(seconds(p.cls, p.madds, p.nbytes, profile) for p in n.points)
                         / n.total - 1) for n in networks])


def profile_in_context(networks: list[Network], *, device: str = "cpu", threads: int = 1,
                       batch: int = 1, combine: str | None = None) -> Profile:
    """Fit measured synthetic networks into a Profile: per class, the rows' in-context times
    (CONTEXT_POWER), with ``dispatch`` added to every class's overhead (one module call per
    row; the ``container`` class is 0, its calls are in that median). Of the two forms (or
    ``combine``) the one with the smaller median error on the networks' totals is kept."""
    import torch

    points = [p for n in networks for p in n.points]
    per_call = dispatch(networks)
    candidates = {}
    for form in ((combine,) if combine else ("sum", "max")):
        _, fits, _ = fit(points, form, CONTEXT_POWER)
        classes = {}
        for c in CLASSES:
            if c not in fits:
                continue
            o, pm, pb = fits[c]
            pts = [p for p in points if p.cls == c]
            classes[c] = ClassFit(overhead_us=round((o + per_call) * 1e6, 4),
                                  gmadds_per_s=round(1 / pm / 1e9, 6) if pm > 0 else None,
                                  gbytes_per_s=round(1 / pb / 1e9, 6) if pb > 0 else None,
                                  points=len(pts),
                                  median_error=round(float(np.median(
                                      relative_errors(fits, pts, form))), 4))
        classes["container"] = ClassFit(overhead_us=0.0, points=len(networks))
        profile = Profile(version=VERSION, machine=machine(device), torch=torch.__version__,
                          device=device, threads=threads, dtype="float32", batch=batch,
                          combine=form, classes=classes,
                          fit={"method": "context", "points": len(points),
                               "networks": len(networks),
                               "dispatch_us": round(per_call * 1e6, 4)})
        candidates[form] = (profile, network_errors(networks, profile))
    forms = {k: {"network_median_error": round(float(np.median(e)), 4),
                 "networks_within_10pct": round(float(np.mean(e <= 0.10)), 4)}
             for k, (_, e) in candidates.items()}
    best = min(candidates, key=lambda k: forms[k]["network_median_error"])
    profile = candidates[best][0]
    return profile.model_copy(update={"fit": {**profile.fit, "forms": forms}})
