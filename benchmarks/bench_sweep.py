"""Full-network evaluations per second in a sweep of MobileNet V2 (issue 6's target: at least
1,000 per second, about 200× what fvcore does per network).

Run: python benchmarks/bench_sweep.py [--runs N] [--profile] [--fvcore]

- cold: `sweep` over the issue's grid (--width 0.25:1.4:0.05 × --input 96:224:16, 216 networks)
  in a fresh process each run, as `costmodel sweep` does it (timing the sweep only, not start-up);
- warm: the same sweep again in one process (block expansions already memoized);
- the whole command's wall time, start-up included;
- --fvcore: torchvision's mobilenet_v2 built and counted by fvcore's FlopCountAnalysis per
  configuration (needs torchvision importable, e.g. PYTHONPATH=/tmp/tvlib);
- --profile: where a cold sweep spends its time (cProfile, by own time).

The machine is shared (2 cores): read medians over several runs, and the CPU-time rates, which
leave out the time other processes hold the cores.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "mobilenet_v2"
WIDTHS, INPUTS = "0.25:1.4:0.05", "96:224:16"


SWEEP = """
import sys, time
sys.path.insert(0, {root!r})
from costmodel.analysis.sweep import parse_axis, sweep
from costmodel.api import load
load({model!r})  # the spec (cached on disk after the first run), not what is timed
axes = [parse_axis("width", {widths!r}), parse_axis("input", {inputs!r})]
t, c = time.perf_counter(), time.process_time()
result = sweep({model!r}, axes)
cold, cold_cpu = time.perf_counter() - t, time.process_time() - c
t, c = time.perf_counter(), time.process_time()
for _ in range({repeat}):
    sweep({model!r}, axes)
warm, warm_cpu = (time.perf_counter() - t) / {repeat}, (time.process_time() - c) / {repeat}
print(len(result.points), cold, cold_cpu, warm, warm_cpu)
"""


def sweep_rates(model: str, runs: int) -> tuple[int, dict[str, list[float]]]:
    """Networks per second, by wall clock and by the process's CPU time (the machine is shared:
    CPU time leaves out the time other processes hold the cores)."""
    rates: dict[str, list[float]] = {"cold": [], "cold_cpu": [], "warm": [], "warm_cpu": []}
    n = 0
    for _ in range(runs):
        code = SWEEP.format(root=str(ROOT), model=model, widths=WIDTHS, inputs=INPUTS, repeat=3)
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True, cwd=ROOT).stdout.split()
        n = int(out[0])
        for key, seconds in zip(rates, out[1:]):
            rates[key].append(n / float(seconds))
    return n, rates


def command_wall(model: str, runs: int) -> list[float]:
    cmd = [sys.executable, "-m", "costmodel", "sweep", model, "--width", WIDTHS, "--input",
           INPUTS, "-f", "csv"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return times


def fvcore_rate(configs: int = 5) -> float | None:
    """Seconds per network for fvcore: build torchvision's mobilenet_v2 at a width and count
    it at an input size, as a sweep would have to."""
    try:
        import torch
        import torchvision.models as tvm
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return None
    grid = [(0.5, 128), (0.75, 160), (1.0, 224), (1.25, 192), (1.4, 224)][:configs]
    t = time.perf_counter()
    for width, size in grid:
        net = tvm.mobilenet_v2(width_mult=width).eval()
        flops = FlopCountAnalysis(net, torch.zeros(1, 3, size, size))
        flops.unsupported_ops_warnings(False)
        flops.uncalled_modules_warnings(False)
        flops.total()
    return (time.perf_counter() - t) / len(grid)


def profile(model: str) -> None:
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    from costmodel.analysis.sweep import parse_axis, sweep
    from costmodel.api import load

    load(model)
    axes = [parse_axis("width", WIDTHS), parse_axis("input", INPUTS)]
    prof = cProfile.Profile()
    prof.runcall(sweep, model, axes)
    pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--fvcore", action="store_true")
    args = ap.parse_args()
    model = MODEL
    n, rates = sweep_rates(model, args.runs)
    walls = command_wall(model, args.runs)
    print(f"sweep {model} --width {WIDTHS} --input {INPUTS}: {n} networks, {args.runs} runs")
    for key, label in (("cold", "cold sweep (fresh process)"), ("warm", "warm sweep (same process)")):
        wall, cpu = rates[key], rates[f"{key}_cpu"]
        print(f"  {label}: median {statistics.median(wall):,.0f} networks/s by wall clock "
              f"(min {min(wall):,.0f}, max {max(wall):,.0f}), {statistics.median(cpu):,.0f} "
              "by CPU time")
    colds = rates["cold"]
    print(f"  `costmodel sweep ... -f csv` wall time, start-up included: median "
          f"{statistics.median(walls):.2f} s")
    if args.fvcore:
        per = fvcore_rate()
        if per is None:
            print("  fvcore: torch / torchvision / fvcore not importable (PYTHONPATH=/tmp/tvlib?)")
        else:
            print(f"  fvcore (build torchvision mobilenet_v2 + FlopCountAnalysis): {per:.3f} s per "
                  f"network = {1 / per:.1f} networks/s; the cold sweep is "
                  f"{statistics.median(colds) * per:,.0f}× that")
    if args.profile:
        profile(model)


if __name__ == "__main__":
    main()
