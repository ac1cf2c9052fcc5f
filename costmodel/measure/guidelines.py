"""Timing ShuffleNet V2's guideline experiments (``costmodel guidelines --measure``).

Each case's network (``costmodel.analysis.guidelines``) is built by the torch builder, put in
eval mode on the device, and timed under ``torch.inference_mode`` by the one timing rule
(``costmodel.measure.timing.time_callable``). The structures compared with each other (one
experiment at one width) are built together and timed back to back, in ``rounds`` passes of
alternating order; each keeps its fastest pass's median. A shared machine's load drifts over
seconds: a burst then slows one pass of a structure, not the comparison.
"""

from __future__ import annotations

import platform
from typing import Any

import torch

from costmodel.analysis.guidelines import Case
from costmodel.crosscheck.builder import build, example_input
from costmodel.errors import CostModelError
from costmodel.measure.timing import Timing, time_callable


def resolve_device(device: str) -> torch.device:
    """``cpu`` or ``cuda``; a CostModelError when cuda is asked for and not there."""
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise CostModelError("--device cuda: torch sees no CUDA device here "
                                 f"(torch {torch.__version__})", field="device")
        return torch.device("cuda")
    raise CostModelError(f"device must be cpu or cuda, not {device!r}", field="device")


def machine(device: torch.device, threads: int, batch: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    return {"device": f"{device.type} ({name})", "threads": threads, "batch": batch,
            "torch": torch.__version__, "python": platform.python_version()}


def measure(cases: list[Case], *, device: str = "cpu", threads: int = 1, batch: int = 1,
            min_time: float = 0.5, warmup: int = 3, rounds: int = 2) -> dict[str, Any]:
    """Time every case (seconds per forward pass of ``batch`` images, the median) in place;
    returns the machine description. ``threads`` sets torch's intra-op threads (on a GPU,
    the host's) for the measurement, restored afterwards."""
    dev = resolve_device(device)
    if rounds < 1:
        raise CostModelError(f"rounds must be at least 1, not {rounds}", field="rounds")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _measure(cases, dev, batch, min_time, warmup, rounds)
    except (MemoryError, RuntimeError) as e:  # a failed allocation: the user can go smaller
        text = str(e).lower()
        if isinstance(e, MemoryError) or "allocate" in text or "out of memory" in text:
            raise CostModelError(f"out of memory measuring at batch {batch}: "
                                 f"{str(e).splitlines()[0] if str(e) else 'MemoryError'}; "
                                 "try a smaller --batch or --width", field="batch") from None
        raise
    finally:
        torch.set_num_threads(before)
    return machine(dev, threads, batch) | {"rounds": rounds, "min_time": min_time}


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
