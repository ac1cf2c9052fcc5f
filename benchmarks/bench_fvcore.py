"""Analytic evaluation vs fvcore on the same zoo models.

1. In one process, per model at its default input: the analytic evaluation (``evaluate`` in
   fvcore's scope, per-layer rows and totals, from a loaded spec; its first call in the process,
   which also expands the blocks, is shown apart, and so is ``totals_only``) against fvcore on
   the built torch module (``FlopCountAnalysis(...).total()`` + ``parameter_count``, the module
   built beforehand; building it is shown separately, and a last ratio adds it, since fvcore
   cannot count a network it has not built). Both sides count the same FLOPs and params
   (``costmodel verify`` checks that they agree exactly; asserted here too).
2. Cold processes: ``costmodel compare MODELS --input 32`` against a fresh Python that imports
   torch and fvcore, builds the same models and runs fvcore on them (the path a user without
   costmodel takes), imports included.

Run: python benchmarks/bench_fvcore.py [--runs N] [--fvcore-runs N] [--cold-runs N] [--markdown].
Ratios use the fastest of the runs on each side (as timeit advises: on a shared machine the
minimum is the run least disturbed by other processes); medians are printed next to them.
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
from costmodel.crosscheck.builder import build, example_input
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
    from costmodel.engine import evaluate
    from costmodel.crosscheck.builder import build, example_input
    from costmodel.crosscheck.verify import FVCORE_SCOPE

    rows = []
    for name in models:
        spec = load(name)
        first = timed(lambda: evaluate(spec, options=FVCORE_SCOPE), 1)[0]
        analytic = timed(lambda: evaluate(spec, options=FVCORE_SCOPE), runs)
        lean = timed(lambda: evaluate(spec, options=FVCORE_SCOPE, totals_only=True), runs)
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
        rows.append({"model": name, "input": "×".join(map(str, result.input)),
                     "layers": len(result.rows), "analytic_ms": min(analytic) * 1e3,
                     "analytic_median_ms": statistics.median(analytic) * 1e3,
                     "analytic_first_ms": first * 1e3, "totals_only_ms": min(lean) * 1e3, "fvcore_ms": min(fv) * 1e3,
                     "fvcore_median_ms": statistics.median(fv) * 1e3,
                     "build_ms": min(built) * 1e3, "ratio": min(fv) / min(analytic),
                     "ratio_median": statistics.median(fv) / statistics.median(analytic),
                     "ratio_totals_only": min(fv) / min(lean),
                     "ratio_with_build": (min(built) + min(fv)) / min(analytic)})
    return rows


def cold(runs: int) -> dict:
    compare = [sys.executable, "-m", "costmodel", "compare", *COLD_MODELS, "--input", COLD_INPUT]
    fvcore = [sys.executable, "-c", FVCORE_SCRIPT, COLD_INPUT, *COLD_MODELS]

    def wall(cmd):
        return lambda: subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    wall(compare)(), wall(fvcore)()  # warm the OS file cache for both
    c, f = timed(wall(compare), runs), timed(wall(fvcore), runs)
    return {"compare": c, "fvcore": f, "ratio": min(f) / min(c),
            "ratio_median": statistics.median(f) / statistics.median(c)}


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
    print("In one process, per model (fastest run; median in brackets; fvcore on a module "
          "built beforehand):")
    print(f"{'model':<20} {'input':>8} {'layers':>6} {'analytic ms':>18} {'1st call':>9} "
          f"{'fvcore ms':>16} {'build':>7} {'ratio':>15} {'totals only':>17}")
    for r in rows:
        print(f"{r['model']:<20} {r['input']:>8} {r['layers']:>6} "
              f"{r['analytic_ms']:>7.3f} ({r['analytic_median_ms']:>7.3f}) "
              f"{r['analytic_first_ms']:>9.2f} {r['fvcore_ms']:>6.1f} ({r['fvcore_median_ms']:>6.1f}) "
              f"{r['build_ms']:>7.1f} {r['ratio']:>6.0f}× ({r['ratio_median']:>5.0f}×) "
              f"{r['totals_only_ms']:>7.3f} {r['ratio_totals_only']:>6.0f}×")
    c = cold(args.cold_runs)
    print(f"\nCold processes, {' '.join(COLD_MODELS)} at {COLD_INPUT}×{COLD_INPUT} "
          f"({args.cold_runs} runs each; fastest, median, slowest):")
    for key, label in (("compare", "costmodel compare"), ("fvcore", "torch + fvcore path")):
        t = c[key]
        print(f"  {label:<20} {min(t):.3f} s  {statistics.median(t):.3f} s  {max(t):.3f} s")
    print(f"  ratio {c['ratio']:.1f}× (medians: {c['ratio_median']:.1f}×)")
    if args.markdown:
        print("\n| model | input | layers | analytic | fvcore | fvcore / analytic | "
              "totals only | building the module too |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['model']} | {r['input']} | {r['layers']} | {r['analytic_ms']:.2f} ms | "
                  f"{r['fvcore_ms']:.0f} ms | {r['ratio']:,.0f}× | {r['ratio_totals_only']:,.0f}× | "
                  f"{r['ratio_with_build']:,.0f}× |")


if __name__ == "__main__":
    main()
