"""Record (or compare) the JSON output of the analytic commands for every zoo model: the proof
that a refactoring changed no number.

    python scripts/record_outputs.py record before.json
    python scripts/record_outputs.py compare before.json      # exit 1 on any difference

Runs in-process (Typer's CliRunner), so a record of the whole zoo takes a minute or two.
"""

from __future__ import annotations

import json
import sys


def commands() -> list[list[str]]:
    from costmodel.spec.zoo import zoo

    cmds: list[list[str]] = []
    names = [e.name for e in zoo()]
    for e in zoo():
        for name in [e.name, *(f"{e.name}-{v}" for v in e.variants)]:
            cmds.append(["show", name])
            cmds.append(["show", name, "--scope", "fvcore", "--no-bn-params"])
        cmds.append(["dataflow", e.name])
        cmds.append(["dataflow", e.name, "--level", "block"])
        cmds.append(["rules", e.name])
        cmds.append(["scale", e.name, "--width-factor", "1.25", "--depth-factor", "1.5",
                     "--resolution-factor", "1.15"])
        cmds.append(["sweep", e.name, "--width", "0.5:1:0.25", "--input", "96:160:32"])
    cmds.append(["compare", *names])
    # too small for them (MaxViT needs whole 7×7 windows in every stage: inputs of 224·k)
    small = [n for n in names if not n.startswith(("espnet", "alexnet-caffe", "maxvit"))]
    cmds.append(["compare", *small, "--input", "64", "--scope", "fvcore", "--dtype", "int8"])
    return [c + ["--format", "json"] for c in cmds]


def run_all() -> dict[str, dict]:
    from typer.testing import CliRunner

    from costmodel.cli import app

    from costmodel.spec.zoo import zoo_dir

    runner = CliRunner()
    here = str(zoo_dir())  # paths in messages differ between checkouts
    out = {}
    for cmd in commands():
        r = runner.invoke(app, cmd)
        out[" ".join(cmd)] = {"exit": r.exit_code, "stdout": r.stdout.replace(here, "<zoo>"),
                              "stderr": getattr(r, "stderr", "").replace(here, "<zoo>")}
    return out


def main() -> int:
    mode, path = sys.argv[1], sys.argv[2]
    outputs = run_all()
    if mode == "record":
        with open(path, "w", encoding="utf-8") as f:
            json.dump(outputs, f, indent=0, sort_keys=True)
        print(f"{len(outputs)} outputs recorded in {path}")
        return 0
    with open(path, encoding="utf-8") as f:
        before = json.load(f)
    differ = [k for k in sorted(set(before) | set(outputs)) if before.get(k) != outputs.get(k)]
    for k in differ[:20]:
        print(f"differs: {k}")
    print(f"{len(outputs)} outputs, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
