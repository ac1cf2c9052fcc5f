"""Timing ShuffleNet V2's guideline experiments (``costmodel guidelines --measure``).

Each case's network (``costmodel.analysis.guidelines``) is built by the torch builder, put in
eval mode on the device, and timed under ``torch.inference_mode`` by the one timing rule
(``costmodel.measure.timing.time_callable``). The structures compared with each other (one
experiment at one width) are built together and timed back to back, in ``rounds`` passes of
alternating order; each keeps its fastest pass's median. A shared machine's load drifts over
seconds: a burst then slows one pass of a structure, not the comparison. The device, thread
and machine checks and descriptions are bench's (``costmodel.measure.bench``), so that a
guidelines measurement names its machine as ``bench`` does.
"""

from __future__ import annotations

from typing import Any

import torch

from costmodel.analysis.guidelines import Case
from costmodel.crosscheck.builder import build, example_input
from costmodel.errors import CostModelError
from costmodel.measure import DEFAULT_THREADS, MAX_MIN_TIME
from costmodel.measure.bench import check_device, check_threads, guard_memory, machine
from costmodel.measure.timing import Timing, time_callable


def measure(cases: list[Case], *, device: str = "cpu", threads: int = DEFAULT_THREADS,
            batch: int = 1, min_time: float = 0.5, warmup: int = 3,
            rounds: int = 2) -> dict[str, Any]:
    """Time every case (seconds per forward pass of ``batch`` images, the median) in place;
    returns the machine description (``bench.machine``'s, with the batch, rounds and
    min_time). ``threads`` sets torch's intra-op threads (on a GPU, the host's) for the
    measurement, restored afterwards."""
    check_device(device)
    check_threads(threads)
    if rounds < 1:
        raise CostModelError(f"rounds must be at least 1, not {rounds}", field="rounds")
    if not 0 <= min_time <= MAX_MIN_TIME:  # 0: the minimum number of runs alone
        raise CostModelError(f"min_time must be from 0 to {MAX_MIN_TIME:g} seconds, got "
                             f"{min_time!r}", field="min_time")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        guard_memory(lambda: _measure(cases, torch.device(device), batch, min_time, warmup,
                                      rounds),
                     hint=f"measured at batch {batch}; try a smaller --batch or --width",
                     field="batch")
        described = machine(device)  # while the threads asked for are set
    finally:
        torch.set_num_threads(before)
    return described | {"batch": batch, "rounds": rounds, "min_time": min_time}


def _measure(cases: list[Case], dev: torch.device, batch: int, min_time: float, warmup: int,
             rounds: int) -> None:
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    groups: dict[tuple[str, int], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.guideline, case.width), []).append(case)
    for group in groups.values():
        built = [(case, build(case.result).to(dev).eval(),
                  example_input(case.result, batch).to(dev)) for case in group]
        best: dict[str, Timing] = {}
        with torch.inference_mode():
            for r in range(rounds):
                for case, model, x in (built if r % 2 == 0 else reversed(built)):
                    timing = time_callable(lambda: model(x), min_time=min_time,
                                           warmup=warmup, sync=sync)
                    if case.key not in best or timing.median < best[case.key].median:
                        best[case.key] = timing
        for case in group:
            case.seconds, case.spread = best[case.key].median, best[case.key].spread
        del built
        if dev.type == "cuda":
            torch.cuda.empty_cache()
