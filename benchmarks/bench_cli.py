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


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(runs: int = 21) -> None:
    exe = shutil.which("costmodel")
    if exe is None:
        sys.exit("costmodel is not on PATH: pip install . first")
    baseline = [wall([sys.executable, "-c", "import typer, yaml, pydantic.main"])
                for _ in range(runs)]
    times = [wall([exe, *COMMAND]) for _ in range(runs)]
    print(f"costmodel {' '.join(COMMAND)}")
    print(f"  median {statistics.median(times):.3f} s  min {min(times):.3f} s  "
          f"max {max(times):.3f} s  ({runs} cold runs)")
    print(f"  of which importing typer + pyyaml + pydantic alone: median "
          f"{statistics.median(baseline):.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)
