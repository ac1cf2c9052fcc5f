"""Cold-process time of the main job: `costmodel compare effnet mobilenet shufflenet
--input 32`. Run: python benchmarks/bench_cli.py [runs] [--against CHECKOUT]. Prints the
median and the spread of wall and CPU time (user + sys; steadier than wall time on a shared
machine); read the medians over many runs. ``--against`` also runs the same command from
another checkout of costmodel (``python -m costmodel`` with that checkout first on the path),
interleaved, to measure a change.

Beside it, interleaved (the machine's speed drifts from minute to minute), two floors: Python
importing the libraries the command stands on, and a minimal typer app that declares one
Pydantic model and prints a Rich table of the same shape — what any command built on typer,
pydantic and rich costs here before it does anything of its own.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(runs: int = 21, against: str | None = None) -> None:
    exe = shutil.which("costmodel")
    if exe is None:
        sys.exit("costmodel is not on PATH: pip install . first")
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-cli-pyc-")
    cmds = {"command": ([exe, *COMMAND], base),
            "imports": ([sys.executable, "-c", IMPORTS], base),
            "minimal app": ([sys.executable, "-c", MINIMAL_APP, *COMMAND], base)}
    if against:
        env = {**base, "PYTHONPATH": os.path.abspath(against)}
        cmds["against"] = ([sys.executable, "-m", "costmodel", *COMMAND], env)
    runs_of: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for cmd, env in cmds.values():  # compiles and caches the bytecode, fills the spec cache
        timed(cmd, env)
    for _ in range(runs):
        for key, (cmd, env) in cmds.items():
            runs_of[key].append(timed(cmd, env))
    print(f"costmodel {' '.join(COMMAND)} ({runs} cold runs of each, interleaved)")
    labels = {"command": "the command",
              "imports": "Python importing typer, pydantic (Field) and rich alone",
              "minimal app": "a minimal typer + pydantic + rich app printing such a table",
              "against": f"the command from {against}"}
    for key, times in runs_of.items():
        wall = [w for w, _ in times]
        cpu = [c for _, c in times]
        print(f"  {labels[key]:60s} wall median {statistics.median(wall):.3f} s "
              f"(min {min(wall):.3f})  CPU median {statistics.median(cpu):.3f} s "
              f"(min {min(cpu):.3f})")
    ratio = statistics.median(c for _, c in runs_of["command"]) / \
        statistics.median(c for _, c in runs_of["minimal app"])
    print(f"  CPU time of the command / the minimal app: {ratio:.2f}x (medians)")


if __name__ == "__main__":
    args = sys.argv[1:]
    other = None
    if "--against" in args:
        i = args.index("--against")
        other = args[i + 1]
        del args[i:i + 2]
    main(int(args[0]) if args else 21, other)
