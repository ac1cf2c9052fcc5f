"""Checks the transformer specs against torchvision's own models (#14): params to the integer,
fvcore's total and its count per operator, at 224×224 (or N×N with ``--input N``).

Needs torchvision, which does not load against the CPU torch wheel of the test extra: run it
in an environment with torchvision 0.29 and torch 2.14 (and fvcore and costmodel's
dependencies), from the repository root:

    PYTHONPATH=$PWD /path/to/tvenv/bin/python scripts/check_transformers_tv.py [model ...]
        [--input N]

Prints one line per model and check; exits 1 if any differs. The tests do not need it: they
check the same layers against hand-written modules in torchvision's style.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter

import torch

warnings.filterwarnings("ignore")

MODELS = {"vit_b_16": "specs/vit_b_16.yaml", "swin_t": "specs/swin_t.yaml",
          "maxvit_t": "specs/maxvit_t.yaml"}


def analytic(spec: str, side: int) -> tuple[int, int, Counter]:
    """fvcore-scope FLOPs, params and FLOPs per fvcore operator of a spec."""
    from costmodel.api import evaluate_model
    from costmodel.crosscheck.builder import torch_layer
    from costmodel.crosscheck.verify import FVCORE_SCOPE

    r = evaluate_model(spec, input=side, options=FVCORE_SCOPE)
    ops: Counter = Counter()
    for row in r.rows:
        if row.layer is not None and row.flops:
            ops[torch_layer(row).fvcore_op(row) or f"({row.type})"] += row.flops
    return r.totals.flops, r.totals.params, ops


def measured(name: str, side: int) -> tuple[int, int, Counter]:
    """fvcore's total, sum(p.numel()) and fvcore's by_operator() on torchvision's model."""
    import torchvision
    from fvcore.nn import FlopCountAnalysis

    # ViT and MaxViT are built for an input size
    kwargs = {"image_size": side} if name.startswith("vit") else \
        {"input_size": (side, side)} if name.startswith("maxvit") else {}
    model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    x = torch.randn(1, 3, side, side)
    # not under torch.no_grad(): there nn.MultiheadAttention takes its fast path, one fused
    # aten::_native_multi_head_attention that fvcore does not count (ViT-B/16: 11,290,036,992)
    fc = FlopCountAnalysis(model, (x,))
    fc.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    ops = Counter({k: int(v) for k, v in fc.by_operator().items() if v})
    total = int(fc.total())
    return total, sum(p.numel() for p in model.parameters()), ops


def main(args: list[str]) -> int:
    side = 224
    if "--input" in args:
        i = args.index("--input")
        side = int(args[i + 1])
        args = args[:i] + args[i + 2:]
    failed = 0
    for name in args or list(MODELS):
        flops, params, ops = analytic(MODELS[name], side)
        tv_flops, tv_params, tv_ops = measured(name, side)
        checks = [("params", params, tv_params), ("fvcore total", flops, tv_flops)]
        checks += [(f"fvcore {op}", ops[op], tv_ops[op]) for op in sorted(set(ops) | set(tv_ops))]
        for what, a, b in checks:
            ok = a == b
            failed += not ok
            print(f"{name:10} {side:4} {what:28} analytic {a:>16,}  torchvision {b:>16,}  "
                  f"{'exact' if ok else 'DIFFERS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
