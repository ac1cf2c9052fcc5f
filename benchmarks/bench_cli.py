"""Cold-process wall time of the main job: `costmodel compare effnet mobilenet shufflenet
--input 32`. Run: python benchmarks/bench_cli.py [runs]. Prints the median and the spread;
the machine is shared, so read the median over many runs.

Beside it, interleaved (the machine's speed drifts from minute to minute), two floors: Python
importing the libraries the command stands on, and a minimal typer app that declares one
Pydantic model and prints a Rich table of the same shape — what any command built on typer,
pydantic and rich costs here before it does anything of its own.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time

COMMAND = ["compare", "effnet", "mobilenet", "shufflenet", "--input", "32"]
# pydantic.fields is what a model with a Field needs; it brings pydantic.types along
IMPORTS = "import typer, rich.console, rich.table; from pydantic import BaseModel, Field"
MINIMAL_APP = '''
from typing import Annotated, Optional
import typer
from pydantic import BaseModel, Field
class Layer(BaseModel):
    out: int = Field(gt=0)
app = typer.Typer(add_completion=False)
@app.callback()
def group(): pass
@app.command()
def compare(models: list[str], input: Annotated[Optional[str], typer.Option()] = None):
    from rich.console import Console
    from rich.table import Table
    t = Table(title="Model comparison")
    for c in ["model", "input", "FLOPs", "rel.", "params", "rel.", "MAC", "rel.", "MAC bytes",
              "peak act.", "rel."]:
        t.add_column(c, justify="right")
    for m in models:
        t.add_row(m, "32x32", "5.64M", "1x", "151.1k", "1x", "1.25M", "1x", "4.98M", "32.8k", "1x")
    Console(width=160).print(t)
app()
'''


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(runs: int = 21) -> None:
    exe = shutil.which("costmodel")
    if exe is None:
        sys.exit("costmodel is not on PATH: pip install . first")
    runs_of: dict[str, list[float]] = {"command": [], "imports": [], "minimal app": []}
    for _ in range(runs):
        runs_of["command"].append(wall([exe, *COMMAND]))
        runs_of["imports"].append(wall([sys.executable, "-c", IMPORTS]))
        runs_of["minimal app"].append(wall([sys.executable, "-c", MINIMAL_APP, *COMMAND]))
    print(f"costmodel {' '.join(COMMAND)} ({runs} cold runs of each, interleaved)")
    labels = {"command": "the command",
              "imports": "Python importing typer, pydantic (Field) and rich alone",
              "minimal app": "a minimal typer + pydantic + rich app printing such a table"}
    for key, times in runs_of.items():
        print(f"  {labels[key]:60s} median {statistics.median(times):.3f} s  "
              f"min {min(times):.3f} s  max {max(times):.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)
