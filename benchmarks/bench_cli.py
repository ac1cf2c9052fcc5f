"""Cold-process wall time of the main job: `costmodel compare effnet mobilenet shufflenet
--input 32`. Run: python benchmarks/bench_cli.py [runs]. Prints the median and the spread;
the machine is shared, so read the median over many runs."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time

COMMAND = ["compare", "effnet", "mobilenet", "shufflenet", "--input", "32"]
# what the command cannot do without: the libraries it stands on, imported and nothing else
FLOOR = "import typer, pydantic.main, rich.console, rich.table"


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(runs: int = 21) -> None:
    exe = shutil.which("costmodel")
    if exe is None:
        sys.exit("costmodel is not on PATH: pip install . first")
    times, baseline = [], []
    for _ in range(runs):  # interleaved: the machine's speed drifts from minute to minute
        times.append(wall([exe, *COMMAND]))
        baseline.append(wall([sys.executable, "-c", FLOOR]))
    print(f"costmodel {' '.join(COMMAND)}")
    print(f"  median {statistics.median(times):.3f} s  min {min(times):.3f} s  "
          f"max {max(times):.3f} s  ({runs} cold runs)")
    print(f"  of which starting Python and importing typer, pydantic and rich alone: median "
          f"{statistics.median(baseline):.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)
