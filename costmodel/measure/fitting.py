"""Fitting timed layers into a latency profile's per-class parameters (numpy; no torch).

Per class, the latency model (``costmodel.latency.roofline``) is

    t = o + work·m + bytes·b + large·l                  (sum form)
    t = o + max(work·m, bytes·b) + large·l              (max form)

with o the overhead, m, b, l seconds per unit of work, byte and large byte (the rates'
inverses), all ≥ 0. The sum form is linear: a weighted non-negative least squares problem
(``nnls``), minimizing Σ((prediction − t) / t^power)². The max form is fitted by a log-spaced
search over m and b around the sum form's, with o in closed form for each (l kept from the
sum form). ``fit`` fits every class and keeps the form with the smaller median relative error
unless told which.

Tried and left out: a power law per class in the layer's channels, positions and kernel window
(oneDNN runs a 12-channel conv at a quarter of a 64-channel one's multiply-adds per second),
fitted on the log of measured over predicted time, alternating with the rates. On 64 synthetic
networks, held-out zoo median error 22% with it, 12.5% without: it fitted the in-situ rows'
noise. A fit to the networks' totals (rows as a regularizer) did likewise: 9% on its own
networks, 20% on the zoo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.latency.roofline import large_bytes


@dataclass(frozen=True)
class Point:
    """One timed row (or single layer): its class, work and bytes (``latency.roofline.
    features``), its tensors' sizes (``tensor_bytes``: the large term is computed from them
    for each threshold tried) and its measured seconds."""

    cls: str
    madds: float
    nbytes: float
    tensors: tuple[float, ...]
    seconds: float


Params = tuple[float, float, float, float]
"""(overhead s, s per work unit, s per byte, s per large byte)."""

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


def fit_sum(madds, nbytes, large, t, power: float = 1.0) -> Params:
    """The sum form's parameters minimizing Σ((prediction − t) / t^power)²: the relative
    squared error for power 1, the absolute for 0. A term whose column is all 0 gets 0."""
    terms = [np.ones_like(t), madds, nbytes, large]
    used = [i for i, col in enumerate(terms) if i == 0 or col.any()]
    w = t ** -power
    a = np.stack([terms[i] for i in used], axis=1) * w[:, None]
    norms = np.linalg.norm(a, axis=0)  # unit columns: madds (~1e8) beside ones, well posed
    b = t * w
    x = nnls(a / norms, b / np.linalg.norm(b)) * np.linalg.norm(b) / norms
    params = [0.0] * 4
    for i, v in zip(used, x):
        params[i] = float(v)
    return tuple(params)  # type: ignore[return-value]


def predict(params: Params, madds, nbytes, large, combine: str) -> np.ndarray:
    o, pm, pb, pl = params
    work = np.maximum(madds * pm, nbytes * pb) if combine == "max" \
        else madds * pm + nbytes * pb
    return o + work + large * pl


def _overhead(work: np.ndarray, t: np.ndarray, power: float = 1.0) -> float:
    """The o ≥ 0 minimizing Σ((o + work − t) / t^power)²."""
    w = t ** (-2 * power)
    return max(0.0, float(np.sum(w * (t - work)) / np.sum(w)))


def fit_max(madds, nbytes, large, t, power: float = 1.0) -> Params:
    """The max form: a log-spaced search over the two rates around the sum form's."""
    o, pm, pb, pl = fit_sum(madds, nbytes, large, t, power)
    best = (np.inf, o, pm, pb)
    scales = np.geomspace(0.25, 4, 33)
    for sm in (scales if pm else [0.0]):
        for sb in (scales if pb else [0.0]):
            work = np.maximum(madds * pm * sm, nbytes * pb * sb) + large * pl
            oo = _overhead(work, t, power)
            err = float(np.sum(((oo + work - t) / t ** power) ** 2))
            if err < best[0]:
                best = (err, oo, pm * sm, pb * sb)
    return best[1], best[2], best[3], pl


def _arrays(points: list[Point], threshold: float | None) -> tuple[np.ndarray, ...]:
    """(work, bytes, large bytes, seconds) of the points, as arrays."""
    return (np.array([p.madds for p in points], dtype=float),
            np.array([p.nbytes for p in points], dtype=float),
            np.array([large_bytes(p.tensors, threshold) for p in points], dtype=float),
            np.array([p.seconds for p in points], dtype=float))


def relative_errors(fits: dict[str, Params], points: list[Point], combine: str,
                    threshold: float | None = None) -> np.ndarray:
    """|predicted / measured − 1| of each point."""
    if not points:
        return np.zeros(0)
    by_class: dict[str, list[int]] = {}
    for i, p in enumerate(points):
        by_class.setdefault(p.cls, []).append(i)
    errs = np.zeros(len(points))
    for c, idx in by_class.items():
        madds, nbytes, large, t = _arrays([points[i] for i in idx], threshold)
        errs[idx] = np.abs(predict(fits[c], madds, nbytes, large, combine) / t - 1)
    return errs


def fit(points: list[Point], combine: str | None = None, power: float = 1.0,
        threshold: float | None = None) -> tuple[str, dict[str, Params], dict]:
    """The better combine form (or ``combine``), its per-class parameters, and each form's
    error (``power``: see ``fit_sum``; ``threshold``: the large-tensor bytes, or None)."""
    by_class: dict[str, list[Point]] = {}
    for p in points:
        by_class.setdefault(p.cls, []).append(p)
    forms = {}
    for form, fitter in (("sum", fit_sum), ("max", fit_max)):
        if combine and form != combine:
            continue
        fits = {c: fitter(*_arrays(pts, threshold), power) for c, pts in by_class.items()}
        forms[form] = (fits, relative_errors(fits, points, form, threshold))
    summary = {k: {"median_error": round(float(np.median(e)), 4),
                   "within_10pct": round(float(np.mean(e <= 0.10)), 4)}
               for k, (_, e) in forms.items()}
    combine = combine or min(forms, key=lambda k: float(np.median(forms[k][1])))
    return combine, forms[combine][0], summary
