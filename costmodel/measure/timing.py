"""Timing a callable: warm-up, then repeated runs until the total is long enough for a
stable median.

One rule for every measurement costmodel makes (bench, calibrate, guidelines), so that
their numbers compare: ``warmup`` runs first (caches, allocator, lazy kernel choice), then
runs until both ``min_runs`` and ``min_time`` seconds are reached (at most ``max_runs``);
the median is the figure, p10–p90 the spread. ``sync`` (torch.cuda.synchronize on a GPU)
runs after every call, so that a run's time is the device's, not the launch's.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Timing:
    """Seconds per run: the median, and the 10th and 90th percentiles of ``runs`` runs."""

    median: float
    p10: float
    p90: float
    runs: int

    @property
    def spread(self) -> float:
        """(p90 − p10) / median: the relative spread of the runs."""
        return (self.p90 - self.p10) / self.median if self.median else 0.0


def summarize(samples: list[float]) -> Timing:
    """A Timing of measured seconds per run."""
    ordered = sorted(samples)
    n = len(ordered)
    if n == 1:
        return Timing(ordered[0], ordered[0], ordered[0], 1)
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    return Timing(statistics.median(ordered), deciles[0], deciles[-1], n)


def time_callable(fn: Callable[[], object], *, min_time: float = 0.5, warmup: int = 3,
                  min_runs: int = 5, max_runs: int = 10_000,
                  sync: Callable[[], None] | None = None) -> Timing:
    """Time ``fn()`` (see the module's docstring for the rule)."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    samples: list[float] = []
    clock = time.perf_counter
    spent = 0.0
    while len(samples) < max_runs and (len(samples) < min_runs or spent < min_time):
        start = clock()
        fn()
        if sync:
            sync()
        elapsed = clock() - start
        samples.append(elapsed)
        spent += elapsed
    return summarize(samples)
