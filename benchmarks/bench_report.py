"""Cold-process wall time of a report for three models with plots:
`costmodel report effnet mobilenet shufflenet --input 32 -o <tmp>/report.md` (target: < 3 s).

Run: python benchmarks/bench_report.py [runs]. Prints the median and spread of cold runs (wall
and CPU time), then where one run spends its time. On a shared machine wall time includes
waiting for a core; CPU time does not.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["effnet", "mobilenet", "shufflenet"]


def wall(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; CPU time (user + sys of the child) is what
    the command costs when it has a core to itself."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def phases(out: Path) -> dict[str, float]:
    """One run in a fresh interpreter, timed phase by phase."""
    code = f"""
import time, json
t0 = time.perf_counter()
from costmodel.report.markdown import ReportRequest, build_report, write_report
t1 = time.perf_counter()
report = build_report(ReportRequest({tuple(MODELS)!r}, input="32"), {str(out)!r})
t2 = time.perf_counter()
import matplotlib.figure
t3 = time.perf_counter()
images = report.images()
t4 = time.perf_counter()
print(json.dumps({{"import costmodel": t1 - t0, "evaluate + Markdown": t2 - t1,
                  "import matplotlib": t3 - t2, f"draw {{len(images)}} plots": t4 - t3}}))
"""
    import json

    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=ROOT)
    return json.loads(res.stdout)


def main(runs: int = 9) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.md"
        cmd = [sys.executable, "-m", "costmodel", "report", *MODELS, "--input", "32",
               "-o", str(out)]
        wall(cmd)  # warm the file cache and the spec cache
        runs_ = [wall(cmd) for _ in range(runs)]
        times, cpu = [w for w, _ in runs_], [c for _, c in runs_]
        print(f"costmodel report {' '.join(MODELS)} --input 32 -o report.md")
        print(f"  wall: median {statistics.median(times):.3f} s  min {min(times):.3f} s  "
              f"max {max(times):.3f} s  ({runs} cold runs; target < 3 s)")
        print(f"  CPU:  median {statistics.median(cpu):.3f} s  min {min(cpu):.3f} s  "
              f"max {max(cpu):.3f} s")
        for name, seconds in phases(out).items():
            print(f"  {name:<22} {seconds:.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
