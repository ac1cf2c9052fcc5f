"""``costmodel calibrate``: microbenchmarks of single layers per operator class, fitted into a
latency profile (``costmodel.latency.profile``). Needs torch.

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
import os
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
    from costmodel.measure import timing

    saved = timing.time
    timing.time = types.SimpleNamespace(perf_counter=time.thread_time)
    try:
        yield
    finally:
        timing.time = saved


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


def fit_sum(madds, nbytes, t) -> tuple[float, float, float]:
    """(overhead s, s per madd, s per byte) minimizing the relative squared error."""
    cols = _columns(madds, nbytes)
    a = np.stack(cols, axis=1) / t[:, None]
    x = list(nnls(a, np.ones_like(t)))
    o = x.pop(0)
    per_madd = x.pop(0) if madds.any() else 0.0
    per_byte = x.pop(0) if nbytes.any() else 0.0
    return o, per_madd, per_byte


def _predict(o, per_madd, per_byte, madds, nbytes, combine: str) -> np.ndarray:
    work = np.maximum(madds * per_madd, nbytes * per_byte) if combine == "max" \
        else madds * per_madd + nbytes * per_byte
    return o + work


def _overhead(work: np.ndarray, t: np.ndarray) -> float:
    """The o ≥ 0 minimizing Σ((o + work)/t − 1)²."""
    w = 1 / t ** 2
    return max(0.0, float(np.sum(w * (t - work)) / np.sum(w)))


def fit_max(madds, nbytes, t) -> tuple[float, float, float]:
    """The max form: a log-spaced search over the two rates around the sum form's."""
    o, pm, pb = fit_sum(madds, nbytes, t)
    best = (np.inf, o, pm, pb)
    scales = np.geomspace(0.25, 4, 33)
    for sm in (scales if pm else [0.0]):
        for sb in (scales if pb else [0.0]):
            work = np.maximum(madds * pm * sm, nbytes * pb * sb)
            oo = _overhead(work, t)
            err = float(np.sum(((oo + work) / t - 1) ** 2))
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


def fit(points: list[Point], combine: str | None = None
        ) -> tuple[str, dict[str, tuple[float, float, float]], dict]:
    """The better combine form (or ``combine``), its per-class parameters, and each form's
    error."""
    by_class: dict[str, list[Point]] = {}
    for p in points:
        by_class.setdefault(p.cls, []).append(p)
    forms = {}
    for combine, fitter in (("sum", fit_sum), ("max", fit_max)):
        fits = {}
        for c, pts in by_class.items():
            arr = [np.array([getattr(p, f) for p in pts], dtype=float)
                   for f in ("madds", "nbytes", "seconds")]
            fits[c] = fitter(*arr)
        forms[combine] = (fits, relative_errors(fits, points, combine))
    summary = {k: {"median_error": round(float(np.median(e)), 4),
                   "within_10pct": round(float(np.mean(e <= 0.10)), 4)}
               for k, (_, e) in forms.items()}
    combine = combine or min(forms, key=lambda k: float(np.median(forms[k][1])))
    return combine, forms[combine][0], summary


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"host": platform.node() or "?", "cpu": cpu, "platform": platform.platform(),
            "cores": str(os.cpu_count() or "?")}


def calibrate(*, device: str = "cpu", threads: int = 1, batch: int = 1, quick: bool = False,
              min_time: float | None = None, per_class: int | None = None,
              progress: Callable[[str], None] | None = None) -> Profile:
    """Measure and fit: a Profile."""
    start = time.perf_counter()
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
    return Profile(version=VERSION, machine=machine(), torch=torch.__version__, device=device,
                   threads=threads, dtype="float32", batch=batch, combine=combine,
                   classes=classes, fit={"points": len(points), "quick": quick, "forms": summary})
