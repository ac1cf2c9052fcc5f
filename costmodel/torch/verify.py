"""Cross-checks the analytic counts against fvcore and PyTorch on the built torch module.

Per layer: fvcore's FlopCountAnalysis FLOPs (the module's own, without its submodules'), the
module's parameter count and its output shape from a real forward pass. Per operator: fvcore's
by_operator(). In total: fvcore, and independently torch.utils.flop_counter.FlopCounterMode
(2 FLOPs per multiply-add) and sum(p.numel()). The ops fvcore counts as nothing are collected
with fvcore's reason instead of disappearing into the totals.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from typing import Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

with warnings.catch_warnings():  # fvcore.nn scripts its loss functions at import time
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis, parameter_count

from costmodel.api import load
from costmodel.errors import CostModelError
from costmodel.evaluate import Branch, Options, Result, Row, Seq, evaluate
from costmodel.torch.builder import build, example_input, torch_layer
from costmodel.torch.report import LayerCheck, OpCheck, Uncounted, Verification

FVCORE_SCOPE = Options(scope="fvcore", flops_per_madd=1, bn_params=True)
"""fvcore's conventions: its default ops, 1 per multiply-add, params as torch counts them."""
FLOP_COUNTER_SCOPE = Options(scope="paper", flops_per_madd=2, bn_params=True)
"""FlopCounterMode's: conv and matmul only, 2 FLOPs per multiply-add."""


class RecordingFlopCount(FlopCountAnalysis):
    """fvcore's FlopCountAnalysis, also noting each op it counts as nothing, and why.

    fvcore asks ``_should_ignore_node`` about every op it has no counter for: True means
    ignored (its list of free ops, and prim:: bookkeeping), False unsupported. This records
    the answer and the module the op ran in; fvcore's own counts are untouched."""

    def __init__(self, model: nn.Module, inputs: tuple[torch.Tensor, ...]):
        super().__init__(model, inputs)
        self.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        self.uncounted: list[tuple[str, str, str]] = []  # (op, module, reason)

    def _should_ignore_node(self, node) -> bool:
        ignored = super()._should_ignore_node(node)
        kind = node.kind()
        if not (ignored and kind.startswith("prim::")):  # prim:: nodes are not computation
            module = node.scopeName().split("/")[-1]
            self.uncounted.append((kind, module, "ignored" if ignored else "unsupported"))
        return ignored


def _own(inclusive: Mapping[str, int], children: Mapping[str, list[str]]) -> dict[str, int]:
    """Per module, its own count: its inclusive count less its direct submodules'."""
    return {name: inclusive.get(name, 0) - sum(inclusive.get(c, 0) for c in kids)
            for name, kids in children.items()}


def _children(model: nn.Module) -> dict[str, list[str]]:
    return {name: [f"{name}.{c}" if name else c for c, _ in module.named_children()]
            for name, module in model.named_modules()}


def _walk(node) -> list[Row | Branch]:
    """The rows and branch nodes of the evaluation tree, in order (a branch before its rows)."""
    if isinstance(node, Row):
        return [node]
    if isinstance(node, Seq):
        return [n for child in node.children for n in _walk(child)]
    return [node, *(n for seq in node.branches for n in _walk(seq))]


def _run(model: nn.Module, x: torch.Tensor, paths: list[str]) -> tuple[dict[str, list[int]], int]:
    """One forward pass: every listed module's output shape (one sample) and FlopCounterMode's
    total. A module torch cannot run becomes an error naming its layer."""
    modules = dict(model.named_modules())
    shapes: dict[str, list[int]] = {}
    running: list[str] = []  # the modules whose forward has started and not finished

    def enter(path: str):
        return lambda module, args: running.append(path)

    def leave(path: str):
        def hook(module, args, out) -> None:  # returns None: the output stays as it is
            shapes[path] = list(out.shape[1:])
            running.pop()
        return hook

    handles = [h for path in paths for h in (modules[path].register_forward_pre_hook(enter(path)),
                                             modules[path].register_forward_hook(leave(path)))]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    except RuntimeError as e:
        raise CostModelError(f"torch cannot run this layer: {str(e).splitlines()[0]}",
                             path=running[-1] if running else None) from None
    finally:
        for h in handles:
            h.remove()
    return shapes, counter.get_total_flops()


def _layer_checks(result: Result, own_flops: dict[str, int], own_params: dict[str, int],
                  shapes: dict[str, list[int]]) -> list[LayerCheck]:
    checks, covered = [], set()
    for node in _walk(result.tree):
        if isinstance(node, Row):
            flops, params, shape, type_ = node.flops, node.params, node.out.as_list(), node.type
        else:  # a parallel node: its split and merge are functional ops of its module
            parts = [r for r in (node.split, node.merge) if r is not None]
            flops = sum(r.flops for r in parts)
            params = sum(r.params for r in parts)
            shape, type_ = node.merge.out.as_list(), " + ".join(r.type for r in parts)
        covered.add(node.path)
        checks.append(LayerCheck(node.path, type_, flops, own_flops.get(node.path, 0), params,
                                 own_params.get(node.path, 0), shape, shapes.get(node.path)))
    # Containers hold no ops of their own; anything fvcore puts there would be unaccounted for.
    for name in own_flops:
        if name not in covered and (own_flops[name] or own_params.get(name, 0)):
            checks.append(LayerCheck(name, "container", 0, own_flops[name], 0,
                                     own_params.get(name, 0), None, None))
    return checks


def _op_checks(result: Result, by_operator: Mapping[str, int]) -> list[OpCheck]:
    analytic: Counter[str] = Counter()
    for row in result.rows:
        if row.layer is not None and row.flops:
            analytic[torch_layer(row).fvcore_op(row) or f"({row.type}: no fvcore op)"] += row.flops
    ops = sorted(set(analytic) | {op for op, n in by_operator.items() if n})
    return [OpCheck(op, analytic[op], int(by_operator.get(op, 0))) for op in ops]


def _uncounted(records: list[tuple[str, str, str]]) -> list[Uncounted]:
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for op, module, reason in records:
        found[(op, reason)].append(module)
    return [Uncounted(op, reason, len(mods), tuple(dict.fromkeys(mods)))
            for (op, reason), mods in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


def verify_result(result: Result, paper: Result) -> Verification:
    """Check ``result`` (evaluated in FVCORE_SCOPE) against fvcore and PyTorch; ``paper`` is
    the same model evaluated in FLOP_COUNTER_SCOPE."""
    model = build(result)
    x = example_input(result)
    paths = [n.path for n in _walk(result.tree)]
    shapes, flop_counter = _run(model, x, paths)

    analysis = RecordingFlopCount(model, (x,))
    children = _children(model)
    own_flops = _own(analysis.by_module(), children)
    own_params = _own(parameter_count(model), children)
    numel = sum(p.numel() for p in model.parameters())
    return Verification(
        model=result.model, input=result.input,
        layers=tuple(_layer_checks(result, own_flops, own_params, shapes)),
        ops=tuple(_op_checks(result, analysis.by_operator())),
        uncounted=tuple(_uncounted(analysis.uncounted)),
        flops=result.totals.flops, fvcore_flops=int(analysis.total()),
        madds_x2=paper.totals.flops, flop_counter=int(flop_counter),
        params=result.totals.params, fvcore_params=int(parameter_count(model)[""]), numel=numel)


def verify_model(model, *, input=None, width: float | None = None, depth: float | None = None,
                 num_classes: int | None = None) -> Verification:
    """Load, evaluate, build and check one model (zoo name, spec file or ModelSpec)."""
    spec = load(model)
    kwargs = dict(input=input, width=width, depth=depth, num_classes=num_classes)
    return verify_result(evaluate(spec, options=FVCORE_SCOPE, **kwargs),
                         evaluate(spec, options=FLOP_COUNTER_SCOPE, **kwargs))
