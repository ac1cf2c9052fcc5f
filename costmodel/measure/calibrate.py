"""``costmodel calibrate``: layers timed per operator class, fitted into a latency profile
(``costmodel.latency.profile``). Needs torch.

Two methods (METHODS). ``context`` (the default): random synthetic networks
(``costmodel.measure.synthetic``; never a zoo model), each timed in plain passes (its total) and
in passes with bench's timestamp hooks (each row in situ, with the caches a real pass leaves
it), each figure the fastest of ROUNDS round-robin sweeps' medians. Per class, the latency
model's parameters are fitted to the rows (``costmodel.measure.fitting``, CONTEXT_POWER);
what the timestamps miss — each row's module dispatch and each block's call — is fitted to the
networks' totals (``dispatch``); the form (sum or max) and the large-tensor threshold are the
pair that predicts the totals best.
``layers``: the first design — single layers from small specs over a grid of shapes.

Each single-layer point is one primitive built from a small spec by the torch builder (the
modules the zoo runs as), timed with the one timing rule (``costmodel.measure.timing``) in eval
and inference mode, at the profile's batch and thread count; each timed run goes through
several copies of the layer (own weights each, ``_copies``) so that weights come from memory as
in a network. No zoo model is timed or fitted: every zoo model stays held out for
``benchmarks/bench_latency.py``.
"""

from __future__ import annotations

import contextlib
import types
import platform
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from costmodel.latency.roofline import Work, features, large_bytes, tensor_bytes
from costmodel.latency.profile import CLASSES, ClassFit, Profile, VERSION
from costmodel.measure.fitting import Point, fit, nnls, relative_errors
from costmodel.measure.synthetic import synthetic_results

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
            if s <= 56:
                for k in (2, 3):
                    g["deconv"].append(([{"type": "deconv", "out": max(8, c // 2), "kernel": k,
                                          "stride": 2}], c, s))
            g["bn"].append(([{"type": "bn"}], c, s))
            g["norm"].append(([{"type": "layer_norm"}], c, s))
            for act in ("relu", "relu6", "leaky_relu", "hswish", "hsigmoid", "prelu"):
                g["relu"].append(([{"type": act}], c, s))
            for act in ("swish", "sigmoid", "gelu", "tanh"):
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
            seconds = t.median / copies
            if cls == "container":  # the block's call alone: less the identity inside it
                views = [p.seconds for p in points if p.cls == "view"]
                seconds = max(1e-9, seconds - float(np.median(views))) if views else seconds
                rows = []
            feats = [features(r) for r in rows]
            points.append(Point(cls, sum(f.madds for f in feats), sum(f.nbytes for f in feats),
                                tuple(b for r in rows for b in tensor_bytes(r)), seconds))
    return points


def _point(row, seconds: float) -> Point:
    work = features(row)
    return Point(work.cls, work.madds, work.nbytes, tensor_bytes(row), seconds)


NETWORKS = 48
"""Synthetic networks the default calibration times (about 2¾ minutes here): measured, the
held-out zoo's median error was 12.8% fitted on 64 networks and 20.2% on their first 32."""
ROUNDS = 4
"""Round-robin sweeps over the networks (see ``measure_networks``)."""
MIN_TIME = 0.2
"""Seconds of plain passes per network over all rounds, and as much again of hooked ones."""


@dataclass(frozen=True)
class Network:
    """One synthetic network measured: its rows' points (per-layer times in hooked passes),
    the plain total, and how many module calls of each kind it has."""

    points: list[Point]
    total: float
    rows: int
    blocks: int


def measure_networks(*, device: str = "cpu", threads: int = 1, batch: int = 1,
                     networks: int | None = None, seed: int = 0, min_time: float = MIN_TIME,
                     rounds: int = ROUNDS, progress: Callable[[str], None] | None = None,
                     also: dict[str, Callable[[], object]] | None = None
                     ) -> tuple[list[Network], dict[str, list[float]]]:
    """Time ``networks`` synthetic networks: plain passes for the total, hooked passes for
    every row (bench.time_layers), ``min_time / rounds`` seconds each per round, in ``rounds``
    round-robin sweeps over all the networks; each figure is the fastest round's median (the
    total's, and each row's). On a shared machine the speed changes from minute to minute
    (measured here: one network's median 15-25% apart a minute later, with no steal time and
    nothing else running); sweeping over all networks each round spreads those minutes over
    all of them, and the fastest round is the nearest to an idle machine's. ``also``: other
    callables timed once per round in the same sweeps (the benchmark's held-out models, so that
    they meet the same minutes): their medians per round are returned beside the networks."""
    import torch

    from costmodel.crosscheck.builder import build, example_input
    from costmodel.latency.roofline import _containers
    from costmodel.measure.bench import check_memory, time_layers
    from costmodel.measure.timing import time_callable
    from costmodel.options import Options

    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device == "cuda" else None
    per_round = min_time / rounds
    built = []
    for result in synthetic_results(networks or NETWORKS, seed, Options(batch=batch)):
        check_memory(result, batch, device)  # a large --batch: refused before allocating
        built.append((result, build(result).to(device), example_input(result, batch).to(device)))
    totals = [[] for _ in built]
    layers = [{r.path: [] for r in result.rows} for result, _, _ in built]
    others: dict[str, list[float]] = {name: [] for name in also or {}}
    with torch.inference_mode():
        for k in range(rounds):
            for i, (result, model, x) in enumerate(built):
                totals[i].append(time_callable(lambda: model(x), min_time=per_round, warmup=1,
                                               min_runs=3, sync=sync).median)
                # the one timing rule's 3 warm-ups and 5 runs: measured, 1 and 3 here cut
                # calibration from 164 s to 115 s but raised the held-out zoo's median error
                # from 9.0-9.7% to 11.6-16.3% (two runs each; the rows' medians got noisier)
                for path, t in time_layers(result, model, x, min_time=per_round,
                                           device=device)[0].items():
                    layers[i][path].append(t.median)
            for name, fn in (also or {}).items():
                others[name].append(time_callable(fn, min_time=per_round, warmup=1, min_runs=3,
                                                  sync=sync).median)
            if progress:
                progress(f"round {k + 1}/{rounds}: {len(built)} networks"
                         + (f" and {len(others)} other models" if others else ""))
    measured = []
    for (result, _, _), total, rows in zip(built, totals, layers):
        points = [_point(r, min(rows[r.path])) for r in result.rows]
        blocks = sum(_containers(result.tree).values())
        measured.append(Network(points, min(total), len(result.rows), blocks))
    return measured, others


def dispatch(networks: list[Network]) -> tuple[float, float]:
    """Seconds per module call outside the timestamps: (per row, per block). Each network's
    gap, plain total − Σ rows, is what the timestamps miss: the dispatch into each row's module
    (and ``nn.Sequential``'s loop), and each block's own call (a stage, a residual block: the
    ``container`` class). Fitted as gap ≈ a·rows + b·blocks (a, b ≥ 0), each network weighted by
    its total (relative error), so that a large network's gap does not decide it alone."""
    gaps = np.array([n.total - sum(p.seconds for p in n.points) for n in networks])
    totals = np.array([n.total for n in networks])
    a = np.array([[n.rows, n.blocks] for n in networks], dtype=float) / totals[:, None]
    if not a[:, 1].any():
        a = a[:, :1]
    x = nnls(a, gaps / totals)
    return float(x[0]), float(x[1]) if len(x) > 1 else 0.0


CONTEXT_POWER = 0.5
"""The in-context fit minimizes Σ((prediction − t)/√t)²: between the relative error (power 1,
which lets the many tiny rows of a network — a relu on 7×7 — decide the rates) and the
absolute (power 0, which fits only the largest rows). Measured on 24 synthetic networks (a
loaded machine): the networks' Σ rows off by a median 19% at 0.5, 22% at 1, 33% at 0."""

LARGE_TENSOR_CANDIDATES = (None, 1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20)
"""Output sizes tried as the profile's ``large_tensor_bytes`` (None: no large-tensor term);
the one whose profile predicts the networks' totals best is kept."""


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
        nets, _ = measure_networks(device=device, threads=threads, batch=batch,
                                   networks=networks or (8 if quick else NETWORKS),
                                   min_time=min_time or (0.05 if quick else MIN_TIME),
                                   progress=progress)
        profile = profile_in_context(nets, device=device, threads=threads, batch=batch)
    else:
        points = measure(device=device, threads=threads, batch=batch, quick=quick,
                         min_time=min_time, per_class=per_class, progress=progress)
        profile = profile_of(points, device=device, threads=threads, batch=batch, quick=quick)
    return profile.model_copy(update={"fit": {**profile.fit,
                                              "seconds": round(time.perf_counter() - start, 1)}})


def _class_fits(fits: dict, points: list[Point], form: str, threshold, per_call: float
                ) -> dict[str, ClassFit]:
    classes = {}
    for c in CLASSES:
        if c not in fits:
            continue
        o, pm, pb, pl = fits[c]
        pts = [p for p in points if p.cls == c]
        classes[c] = ClassFit(
            overhead_us=round((o + per_call) * 1e6, 4),
            gmadds_per_s=round(1 / pm / 1e9, 6) if pm > 0 else None,
            gbytes_per_s=round(1 / pb / 1e9, 6) if pb > 0 else None,
            large_gbytes_per_s=round(1 / pl / 1e9, 6) if pl > 0 else None,
            points=len(pts),
            median_error=round(float(np.median(relative_errors(fits, pts, form, threshold))),
                               4))
    return classes


def profile_of(points: list[Point], *, device: str = "cpu", threads: int = 1, batch: int = 1,
               quick: bool = False, combine: str | None = None) -> Profile:
    """Fit single-layer points into a Profile (of the better form, or ``combine``); no
    large-tensor term (the grid's outputs are at most 6.5 MiB)."""
    import torch

    combine, fits, summary = fit(points, combine)
    return Profile(version=VERSION, machine=machine(device), torch=torch.__version__,
                   device=device, threads=threads, dtype="float32", batch=batch,
                   combine=combine, classes=_class_fits(fits, points, combine, None, 0.0),
                   fit={"method": "layers", "points": len(points), "quick": quick,
                        "forms": summary})


def network_errors(networks: list[Network], profile: Profile) -> np.ndarray:
    """|predicted / measured − 1| of each network's plain total (rows' predictions, with the
    dispatch per row the profile's overheads hold, and its blocks' calls)."""
    from costmodel.latency.roofline import seconds

    block = profile.classes["container"].overhead_us * 1e-6 if "container" in \
        profile.classes else 0.0
    threshold = profile.large_tensor_bytes
    return np.array([abs((sum(seconds(Work(p.cls, p.madds, p.nbytes,
                                           large_bytes(p.tensors, threshold)), profile)
                              for p in n.points) + block * n.blocks) / n.total - 1)
                     for n in networks])


def profile_in_context(networks: list[Network], *, device: str = "cpu", threads: int = 1,
                       batch: int = 1, combine: str | None = None) -> Profile:
    """Fit measured synthetic networks into a Profile: per class, the rows' in-context times
    (CONTEXT_POWER), with ``dispatch``'s per-row call added to every class's overhead and its
    per-block call as the ``container`` class. Of the two forms (or ``combine``) and the
    LARGE_TENSOR_CANDIDATES, the pair with the smallest mean error on the networks' totals is
    kept (a mean: the large-tensor term matters in a few networks, which a median ignores)."""
    import torch

    points = [p for n in networks for p in n.points]
    per_call, per_block = dispatch(networks)
    candidates = {}
    for form in ((combine,) if combine else ("sum", "max")):
        for threshold in LARGE_TENSOR_CANDIDATES:
            _, fits, _ = fit(points, form, CONTEXT_POWER, threshold)
            classes = _class_fits(fits, points, form, threshold, per_call)
            classes["container"] = ClassFit(overhead_us=round(per_block * 1e6, 4),
                                            points=len(networks))
            uses = threshold is not None and any(c.large_gbytes_per_s for c in classes.values())
            profile = Profile(version=VERSION, machine=machine(device), torch=torch.__version__,
                              device=device, threads=threads, dtype="float32", batch=batch,
                              combine=form, classes=classes,
                              large_tensor_bytes=threshold if uses else None,
                              fit={"method": "context", "points": len(points),
                                   "networks": len(networks),
                                   "dispatch_us": round(per_call * 1e6, 4)})
            candidates[form, threshold] = (profile, network_errors(networks, profile))
    scores = {k: float(np.mean(e)) for k, (_, e) in candidates.items()}
    forms = {}
    for form in dict.fromkeys(f for f, _ in candidates):  # in order: the YAML is stable
        key = min((k for k in candidates if k[0] == form), key=scores.__getitem__)
        e = candidates[key][1]
        forms[form] = {"large_tensor_bytes": key[1],
                       "network_mean_error": round(float(np.mean(e)), 4),
                       "network_median_error": round(float(np.median(e)), 4),
                       "networks_within_10pct": round(float(np.mean(e <= 0.10)), 4)}
    profile = candidates[min(candidates, key=scores.__getitem__)][0]
    return profile.model_copy(update={"fit": {**profile.fit, "forms": forms}})
