"""Measured latency of an evaluated model on a real device (``costmodel bench``).

The model is the torch builder's module (``costmodel.crosscheck.builder.build``), in eval mode,
run under ``torch.inference_mode`` on a random input of the evaluated size and batch. Every
figure follows the one timing rule, ``costmodel.measure.timing.time_callable``.

- **Total**: the whole forward pass, timed in its own runs with no hook registered, so that
  per-layer timing cannot distort it.
- **Per layer** (timestamps in situ): more passes, timed by the same rule, with a forward
  pre-hook and a forward hook on every primitive's module taking timestamps; a row's time is
  the median over those passes of the time between its two hooks. The functional ops of a
  branching node (BranchModule) are timed between the hooks around them: the split from the
  node's pre-hook to its first branch's, the merge from its last branch's forward hook to the
  node's. So every row of ``costmodel show`` gets a time, keyed by its layer path; what no
  row holds (module dispatch, ``nn.Sequential``'s loop, the hooks' own cost) is
  ``unattributed`` = total − Σ layers.

  Why timestamps and not replay (timing each module alone, repeatedly, on its recorded
  input): measured on the development CPU (2 cores shared, load average 3–7, 1 thread; 4–5
  zoo models), the hooked passes took 6–14 % longer than plain ones, mostly between layers
  (Σ layers in situ = 73–99 % of the plain total), whereas replayed layers summed to only
  12–69 % of it: run again and again, a layer finds its weights and input in cache, which a
  real pass does not give it. The total is never taken from hooked passes.

**A Python target** (``bench nets.py:Net``) is timed as the user's own module
(``targets.build_target``), not the builder's rebuild of its imported spec: a spec that differs
from the module would otherwise be timed in its place. Its rows are the module's leaf modules
(those without children), by their ``named_modules`` paths in the order they first run, each
timed from its pre-hook to its forward hook (a leaf called twice in a pass, both calls); the
importer keeps those paths as the spec's layer paths, so FLOPs and MAC come from the spec's row
of the same path where there is one. Functional ops (``x + y``, ``F.relu``) have no module:
their time is in ``unattributed``.

Everything here imports torch; the analytic path never imports this module.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from costmodel.crosscheck.builder import build, example_input
from costmodel.engine import Branch, Result, Row, nodes
from costmodel.errors import CostModelError
from costmodel.measure import DEFAULT_THREADS, DEVICES, MAX_MIN_TIME, MAX_THREADS
from costmodel.measure.timing import Timing, summarize, time_callable


@dataclass(frozen=True)
class Benchmark:
    """One model measured: the total, each row's time (by layer path, in execution order;
    empty when per-layer timing was not asked for) and the machine it ran on."""

    result: Result
    device: str
    threads: int
    batch: int
    min_time: float
    total: Timing
    layers: dict[str, Timing] = field(default_factory=dict)
    hooked: Timing | None = None
    """The passes with timestamp hooks the layers were timed in (None without layers): their
    excess over ``total`` is what the hooks cost."""
    machine: dict[str, Any] = field(default_factory=dict)
    leaf_types: dict[str, str] | None = None
    """For a user's module timed (not the builder's): each timed leaf's class name, by path;
    None when the builder's module was timed (the rows are then the result's own)."""

    @property
    def layer_sum(self) -> float | None:
        """Σ of the rows' median seconds (None without per-layer timing)."""
        return sum(t.median for t in self.layers.values()) if self.layers else None

    @property
    def unattributed(self) -> float | None:
        """Total median − Σ layers: dispatch and Python between layers. On a busy machine
        it also holds the difference between the plain and the hooked passes' conditions
        (negative when the hooked passes ran slower); on a quiet one it is the overhead."""
        s = self.layer_sum
        return None if s is None else self.total.median - s

    def record(self) -> dict[str, Any]:
        """The ``bench --format json`` contract: raw seconds throughout."""
        r = self.result
        return {"model": r.model, "input": list(r.input), "batch": self.batch,
                "module": "builder" if self.leaf_types is None else "target",
                "device": self.device, "threads": self.threads, "min_time": self.min_time,
                "machine": self.machine, "flops": r.totals.flops, "mac": r.totals.mac,
                "total": _timing(self.total),
                "hooked_total": _timing(self.hooked) if self.hooked else None,
                "flops_per_s": flops_per_s(r.totals.flops, self.total.median),
                "layer_sum": self.layer_sum, "unattributed": self.unattributed,
                "layers": self._layer_records(),
                "conventions": r.options.conventions().record()}

    def _layer_records(self) -> list[dict[str, Any]]:
        """A record per timed row, in order; for a user's module, FLOPs and MAC of the spec's
        row of the same path (None where the spec has none: the leaf is not one of its
        layers)."""
        rows = {row.path: row for row in self.result.rows}
        records = []
        for path, t in self.layers.items():
            row = rows.get(path)
            kind = row.type if row is not None else (self.leaf_types or {}).get(path, "")
            flops = row.flops if row is not None else None
            records.append({"path": path, "type": kind, "flops": flops,
                            "mac": row.mac if row is not None else None, **_timing(t),
                            "flops_per_s": None if flops is None else
                            flops_per_s(flops, t.median)})
        return records


def _timing(t: Timing) -> dict[str, Any]:
    return {"median": t.median, "p10": t.p10, "p90": t.p90, "runs": t.runs}


def flops_per_s(flops: int, seconds: float) -> float | None:
    """Achieved FLOP/s (in the result's FLOP convention); None for a zero time."""
    return flops / seconds if seconds > 0 else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Processor", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict[str, Any]:
    """What a measurement ran on: CPU model, logical cores (and those this process may use),
    OS, Python, torch version and build, torch's CPU threads now, and for ``cuda`` the GPU's
    name. Plain values (JSON, YAML)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    build_kind = f"cuda {torch.version.cuda}" if torch.version.cuda else \
        f"rocm {torch.version.hip}" if getattr(torch.version, "hip", None) else "cpu"
    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "cores_usable": usable,
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_build": build_kind,
            "mkldnn": torch.backends.mkldnn.is_available(), "threads": torch.get_num_threads(),
            "device": device}
    if device == "cuda" and torch.cuda.is_available():
        info["device"] = f"cuda: {torch.cuda.get_device_name()}"
    return info


def check_device(device: str) -> None:
    """A CostModelError unless ``device`` is one of DEVICES and available here."""
    if device not in DEVICES:
        raise CostModelError(f"device must be one of {', '.join(DEVICES)}, got {device!r}",
                             field="device")
    if device == "cuda" and not torch.cuda.is_available():
        raise CostModelError(f"--device cuda: torch {torch.__version__} sees no CUDA device "
                             f"here (build: {machine()['torch_build']}); use --device cpu",
                             field="device")


def check_threads(threads: int) -> None:
    """A CostModelError unless ``threads`` is a whole number from 1 to MAX_THREADS."""
    if type(threads) is not int or not 1 <= threads <= MAX_THREADS:
        raise CostModelError(f"threads must be a whole number from 1 to {MAX_THREADS}, got "
                             f"{threads!r}", field="threads")


def _check(threads: int, batch: int, min_time: float, result: Result) -> None:
    check_threads(threads)
    if batch != result.options.batch:
        raise CostModelError(f"{result.model} was evaluated at batch {result.options.batch}; "
                             f"evaluate it with Options(batch={batch}) to bench batch {batch}",
                             field="batch")
    if not 0 < min_time <= MAX_MIN_TIME:
        raise CostModelError(f"min_time must be more than 0 and at most {MAX_MIN_TIME:g} "
                             f"seconds, got {min_time!r}", field="min_time")


def bench_model(result: Result, *, device: str = "cpu", threads: int = DEFAULT_THREADS,
                batch: int | None = None, min_time: float = 0.5,
                layers: bool = True, module: torch.nn.Module | None = None) -> Benchmark:
    """Measure ``result``'s built module on ``device`` with ``threads`` CPU threads (restored
    afterwards): the total, and each row's time when ``layers`` (see the module's docstring).
    ``module``, the user's own (a Python target's, of which ``result`` is the imported
    spec), is timed instead of the builder's, per leaf module (put in eval mode and moved to
    ``device``). ``batch`` is the result's own (``Options.batch``); another value is refused,
    since the FLOPs beside the times would not be the batch's."""
    batch = result.options.batch if batch is None else batch
    _check(threads, batch, min_time, result)
    check_device(device)
    check_memory(result, batch, device)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        sync = torch.cuda.synchronize if device == "cuda" else None
        model = (build(result) if module is None else module.eval()).to(device)
        x = example_input(result, batch).to(device)
        timer = time_layers if module is None else time_leaves
        with torch.inference_mode():
            total = guard_memory(lambda: time_callable(lambda: model(x), min_time=min_time,
                                                       sync=sync))
            per_layer, hooked = guard_memory(lambda: timer(
                result, model, x, min_time=min_time, device=device)) if layers else ({}, None)
        leaf_types = None if module is None else \
            {path: type(m).__name__ for path, m in model.named_modules() if path in per_layer}
        return Benchmark(result, device, threads, batch, min_time, total, per_layer, hooked,
                         machine(device), leaf_types)
    finally:
        torch.set_num_threads(before)


def memory_needed(result: Result, batch: int) -> int:
    """Bytes a measurement holds at most, float32: the weights, and the input and every
    layer's output for the whole batch (an upper bound: a plain pass frees most outputs as it
    goes)."""
    h, w = result.input
    per_image = result.in_channels * h * w + sum(r.out.numel for r in result.rows)
    return 4 * (result.totals.params + batch * per_image)


def check_memory(result: Result, batch: int, device: str) -> None:
    """Refuse, before anything is allocated, a model whose activations could not fit: on the
    GPU its free memory, on the CPU the share of available memory verify also plans with."""
    from costmodel.crosscheck.verify import MEMORY_SHARE, memory_available

    needed = memory_needed(result, batch)
    available = torch.cuda.mem_get_info()[0] if device == "cuda" else memory_available()
    if available is not None and needed > MEMORY_SHARE * available:
        h, w = result.input
        raise CostModelError(f"too large to bench: {result.model} at batch {batch}, {h}×{w} "
                             f"may need {needed / 1e9:.3g} GB (float32), and "
                             f"{available / 1e9:.3g} GB is available on {device}; bench it at "
                             "a smaller --input or --batch", field="input")


def guard_memory(measure: Callable[[], Any],
                 hint: str = "bench it at a smaller --input or --batch",
                 field: str = "input") -> Any:
    """``measure()``, a failed allocation a CostModelError saying what fits (``hint``): a
    smaller input or batch. Any other error is raised as it is."""
    try:
        return measure()
    except (MemoryError, RuntimeError) as e:
        text = str(e).lower()
        if isinstance(e, MemoryError) or "allocate" in text or "out of memory" in text:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CostModelError(f"out of memory running the model: {first}; {hint}",
                                 field=field) from None
        raise


class _Clock:
    """Timestamps of a forward pass: ``perf_counter`` on the CPU (eager ops run as they are
    called), CUDA events on a GPU (kernels run later than their launch: an event is recorded
    in the stream, and read after the pass has synchronized)."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def now(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, start, end) -> float:
        return start.elapsed_time(end) / 1e3 if self.cuda else end - start


def time_layers(result: Result, model: torch.nn.Module, x: torch.Tensor, *,
                min_time: float, device: str = "cpu") -> tuple[dict[str, Timing], Timing]:
    """Each row's Timing, by layer path in execution order, from timestamps that hooks take
    in forward passes of ``model`` (built from ``result``), timed by ``time_callable``; and
    the Timing of those hooked passes themselves (their excess over the plain pass is what the
    hooks cost). A primitive's time runs from its module's forward pre-hook to its forward
    hook; a split's from its BranchModule's pre-hook to its first branch's; a merge's from the
    last branch's forward hook to its BranchModule's. The caller holds inference mode."""
    clock = _Clock(device)
    modules = dict(model.named_modules())
    stamps: dict[tuple[str, str], Any] = {}
    spans: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {}  # row → (start, end) stamps
    for node in nodes(result.tree, ends=False):
        if isinstance(node, Row):
            spans[node.path] = ((node.path, "in"), (node.path, "out"))
        elif isinstance(node, Branch):
            first, last = node.branches[0].path, node.branches[-1].path
            if node.split is not None:
                spans[node.split.path] = ((node.path, "in"), (first, "in"))
            spans[node.merge.path] = ((last, "out"), (node.path, "out"))
    hooked = {path for span in spans.values() for path, _ in span}
    samples: dict[str, list[float]] = {path: [] for path in spans}

    def pre(path: str):
        key = (path, "in")
        return lambda module, args: stamps.__setitem__(key, clock.now())

    def post(path: str):
        key = (path, "out")
        return lambda module, args, out: stamps.__setitem__(key, clock.now())

    def run() -> None:
        model(x)
        if clock.cuda:
            torch.cuda.synchronize()  # the events are read below
        for path, (start, end) in spans.items():
            samples[path].append(clock.seconds(stamps[start], stamps[end]))

    passes = _hooked_passes(run, [(modules[p], pre(p), post(p)) for p in hooked], clock,
                            min_time)
    # time_callable's warm-up passes come first: the last `runs` samples are the timed ones
    return {r.path: summarize(samples[r.path][-passes.runs:]) for r in result.rows}, passes


def _hooked_passes(run: Callable[[], None], hooks: list[tuple[torch.nn.Module, Any, Any]],
                   clock: "_Clock", min_time: float) -> Timing:
    """The Timing of whole passes ``run``, each (module, pre-hook, hook) registered while they
    run and removed after, whatever happens."""
    handles = [h for m, pre, post in hooks
               for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        return time_callable(run, min_time=min_time,
                             sync=torch.cuda.synchronize if clock.cuda else None)
    finally:
        for h in handles:
            h.remove()


def time_leaves(result: Result, model: torch.nn.Module, x: torch.Tensor, *,
                min_time: float, device: str = "cpu") -> tuple[dict[str, Timing], Timing]:
    """For a user's module: each leaf module's Timing (a module without children, by its
    ``named_modules`` path, in the order they first run; those that never run are left out),
    from its forward pre-hook to its forward hook, the calls of one pass summed; and the
    Timing of the hooked passes. ``result`` is not read (the rows are the module's)."""
    clock = _Clock(device)
    leaves = [(path, m) for path, m in model.named_modules()
              if path and next(m.children(), None) is None]
    open_calls: dict[str, list] = {path: [] for path, _ in leaves}  # a stack: re-entrant calls
    spans: dict[str, list] = {}  # path → this pass's (start, end) stamps, in first-call order

    def pre(path: str):
        return lambda module, args: open_calls[path].append(clock.now())

    def post(path: str):
        def hook(module, args, out):
            end = clock.now()
            spans.setdefault(path, []).append((open_calls[path].pop(), end))
        return hook

    samples: dict[str, list[float]] = {}

    def run() -> None:
        spans.clear()
        model(x)
        if clock.cuda:
            torch.cuda.synchronize()  # the events are read below
        for path, calls in spans.items():
            samples.setdefault(path, []).append(sum(clock.seconds(a, b) for a, b in calls))

    passes = _hooked_passes(run, [(m, pre(p), post(p)) for p, m in leaves], clock, min_time)
    # time_callable's warm-up passes come first: the last `runs` samples are the timed ones
    return {path: summarize(times[-passes.runs:]) for path, times in samples.items()}, passes
