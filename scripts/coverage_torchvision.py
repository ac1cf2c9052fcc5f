"""Coverage of torchvision's classification models by ``costmodel import`` (#14).

Run in an environment where torchvision loads (it needs the torch build it was made for: on
x86_64 here, ``pip install torch==2.14.1 torchvision==0.29.1`` in a separate venv, plus fvcore
and costmodel's own dependencies):

    python scripts/coverage_torchvision.py [--only resnet18,vgg11] [--markdown out.md]

For every model (weights=None, eval mode, batch 1, its default input: 299 for inception_v3,
224 otherwise) it imports the module into a spec (``costmodel.capture.import_module``),
evaluates the spec in fvcore's scope, and compares with fvcore's FlopCountAnalysis on the real
module — the total and every operator of by_operator() — and the params with sum(p.numel()).
It times the import (trace + spec + validation + evaluation) and one fvcore pass. A model is
"exact" only if all three agree to the integer. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections import Counter

import torch
import torchvision
from torchvision import models

from costmodel.capture import import_module
from costmodel.crosscheck.builder import torch_layer
from costmodel.crosscheck.verify import FVCORE_SCOPE
from costmodel.engine import evaluate
from costmodel.spec.loader import validate_spec

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fvcore.nn import FlopCountAnalysis

logging.getLogger("fvcore").setLevel(logging.ERROR)

INPUTS = {"inception_v3": 299}


def analytic_ops(result) -> Counter:
    ops: Counter = Counter()
    for row in result.rows:
        if row.flops:
            ops[torch_layer(row).fvcore_op(row) or f"({row.type})"] += row.flops
    return ops


def check(name: str) -> dict:
    torch.manual_seed(0)
    model = models.get_model(name, weights=None).eval()
    side = INPUTS.get(name, 224)
    x = torch.randn(1, 3, side, side)
    params = sum(p.numel() for p in model.parameters())
    t = time.perf_counter()
    fca = FlopCountAnalysis(model, x)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    total, by_op = fca.total(), {k: v for k, v in fca.by_operator().items() if v}
    t_fvcore = time.perf_counter() - t
    row = {"model": name, "params": params, "fvcore": total, "fvcore_s": t_fvcore}
    t = time.perf_counter()
    try:
        doc = import_module(model, (side, side), name=name)
        result = evaluate(validate_spec(doc, f"<{name}>"), options=FVCORE_SCOPE)
    except Exception as e:  # noqa: BLE001 - a coverage table records why a model fails
        row.update(exact=False, why=f"{type(e).__name__}: {e}".splitlines()[0][:160],
                   import_s=time.perf_counter() - t)
        return row
    row["import_s"] = time.perf_counter() - t
    ours = analytic_ops(result)
    why = []
    if result.totals.params != params:
        why.append(f"params {result.totals.params:,} vs {params:,}")
    if result.totals.flops != total:
        why.append(f"FLOPs {result.totals.flops:,} vs {total:,}")
    for op in sorted(set(ours) | set(by_op)):
        if ours.get(op, 0) != by_op.get(op, 0):
            why.append(f"{op} {ours.get(op, 0):,} vs {by_op.get(op, 0):,}")
    row.update(exact=not why, why="; ".join(why), spec_flops=result.totals.flops,
               layers=len(result.rows))
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| model | params | FLOPs (fvcore) | exact | import s | fvcore s | why not |",
             "|---|---:|---:|:---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params']:,} | {r['fvcore']:,} | "
                     f"{'yes' if r['exact'] else 'no'} | {r['import_s']:.2f} | "
                     f"{r['fvcore_s']:.2f} | {r.get('why', '')} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="")
    ap.add_argument("--markdown", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = models.list_models(module=models)
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    names = [n for n in names if n not in args.skip.split(",")]
    rows = []
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}", file=sys.stderr)
    for name in names:
        r = check(name)
        rows.append(r)
        print(f"{name:24} {'exact' if r['exact'] else 'DIFF '} import {r['import_s']:6.2f}s "
              f"fvcore {r['fvcore_s']:6.2f}s {r.get('why', '')}", file=sys.stderr, flush=True)
    text = markdown(rows)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    exact = sum(r["exact"] for r in rows)
    print(f"\n{exact} of {len(rows)} exact", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
