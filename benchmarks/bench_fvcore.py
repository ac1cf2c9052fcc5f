"""Analytic evaluation vs fvcore on the same zoo models.

1. In one process, per model at its default input: the analytic evaluation (``evaluate`` in
   fvcore's scope, per-layer rows and totals, from a loaded spec) against fvcore on the built
   torch module (``FlopCountAnalysis(...).total()`` + ``parameter_count``, the module built
   beforehand; building it is shown separately). Both sides count the same FLOPs and params
   (``costmodel verify`` checks that they agree exactly).
2. Cold processes: ``costmodel compare MODELS --input 32`` against a fresh Python that imports
   torch and fvcore, builds the same models and runs fvcore on them (the path a user without
   costmodel takes), imports included.

Run: python benchmarks/bench_fvcore.py [--runs N] [--cold-runs N] [--markdown]. The machine may
be shared: medians over many runs, and the spread, are printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's costmodel

COLD_MODELS = ["effnet", "mobilenet", "shufflenet"]
COLD_INPUT = "32"

FVCORE_SCRIPT = """
import sys
import torch
from fvcore.nn import FlopCountAnalysis, parameter_count
from costmodel.api import evaluate_model
from costmodel.torch.builder import build, example_input
for name in sys.argv[2:]:
    result = evaluate_model(name, input=sys.argv[1])
    model = build(result)
    analysis = FlopCountAnalysis(model, (example_input(result),))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    print(name, analysis.total(), parameter_count(model)[""])
"""
"""The fvcore path in a cold process. It builds each module with costmodel's builder (a spec is
all the zoo has), which costs the fvcore path a few milliseconds of analytic evaluation."""


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def in_process(models: list[str], runs: int, fvcore_runs: int) -> list[dict]:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    from costmodel.api import load
    from costmodel.evaluate import evaluate
    from costmodel.torch.builder import build, example_input
    from costmodel.torch.verify import FVCORE_SCOPE

    rows = []
    for name in models:
        spec = load(name)
        first = timed(lambda: evaluate(spec, options=FVCORE_SCOPE), 1)[0]
        analytic = timed(lambda: evaluate(spec, options=FVCORE_SCOPE), runs)
        result = evaluate(spec, options=FVCORE_SCOPE)
        built = timed(lambda: build(result), 3)
        module, x = build(result), example_input(result)

        def fvcore():
            analysis = FlopCountAnalysis(module, (x,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return analysis.total(), parameter_count(module)[""]

        fvcore()  # warm-up: the first trace in a process pays torch's one-time set-up
        fv = timed(fvcore, fvcore_runs)
        assert fvcore() == (result.totals.flops, result.totals.params), name
        a, f = statistics.median(analytic), statistics.median(fv)
        rows.append({"model": name, "input": "×".join(map(str, result.input)),
                     "layers": len(result.rows), "analytic_ms": a * 1e3,
                     "analytic_first_ms": first * 1e3, "fvcore_ms": f * 1e3,
                     "build_ms": statistics.median(built) * 1e3, "ratio": f / a,
                     "ratio_first": f / first})
    return rows


def cold(runs: int) -> dict:
    compare = [sys.executable, "-m", "costmodel", "compare", *COLD_MODELS, "--input", COLD_INPUT]
    fvcore = [sys.executable, "-c", FVCORE_SCRIPT, COLD_INPUT, *COLD_MODELS]

    def wall(cmd):
        return lambda: subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    wall(compare)(), wall(fvcore)()  # warm the OS file cache for both
    c, f = timed(wall(compare), runs), timed(wall(fvcore), runs)
    return {"compare": c, "fvcore": f, "ratio": statistics.median(f) / statistics.median(c)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="analytic evaluations per model")
    ap.add_argument("--fvcore-runs", type=int, default=5, help="fvcore analyses per model")
    ap.add_argument("--cold-runs", type=int, default=7, help="cold processes per command")
    ap.add_argument("--markdown", action="store_true", help="print the README table")
    ap.add_argument("models", nargs="*", help="default: every zoo entry")
    args = ap.parse_args()

    from costmodel.spec.zoo import zoo

    models = args.models or [e.name for e in zoo()]
    rows = in_process(models, args.runs, args.fvcore_runs)
    print("In one process (median per model; fvcore on a module built beforehand):")
    head = (f"{'model':<20} {'input':>8} {'layers':>6} {'analytic':>10} {'(1st call)':>11} "
            f"{'fvcore':>10} {'(build)':>9} {'ratio':>8} {'(1st)':>7}")
    print(head)
    for r in rows:
        print(f"{r['model']:<20} {r['input']:>8} {r['layers']:>6} {r['analytic_ms']:>8.3f}ms "
              f"{r['analytic_first_ms']:>9.2f}ms {r['fvcore_ms']:>8.1f}ms "
              f"{r['build_ms']:>7.1f}ms {r['ratio']:>7.0f}× {r['ratio_first']:>6.0f}×")
    c = cold(args.cold_runs)
    print(f"\nCold processes, {' '.join(COLD_MODELS)} at {COLD_INPUT}×{COLD_INPUT} "
          f"({args.cold_runs} runs each; median, min–max):")
    for key, label in (("compare", "costmodel compare"), ("fvcore", "torch + fvcore path")):
        t = c[key]
        print(f"  {label:<20} {statistics.median(t):.3f} s  ({min(t):.3f}–{max(t):.3f})")
    print(f"  ratio {c['ratio']:.1f}×")
    if args.markdown:
        print("\n| model | input | layers | analytic | fvcore | fvcore / analytic |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['model']} | {r['input']} | {r['layers']} | {r['analytic_ms']:.2f} ms | "
                  f"{r['fvcore_ms']:.0f} ms | {r['ratio']:,.0f}× |")


if __name__ == "__main__":
    main()
