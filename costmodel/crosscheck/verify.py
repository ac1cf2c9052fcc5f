"""Cross-checks the analytic counts against fvcore and PyTorch on the built torch module.

Per layer: fvcore's FlopCountAnalysis FLOPs (the module's own, without its submodules'), the
module's parameter count and its output shape from a real forward pass. Per operator: fvcore's
by_operator(). In total: fvcore, and independently torch.utils.flop_counter.FlopCounterMode
(2 FLOPs per multiply-add) and sum(p.numel()). The ops fvcore counts as nothing are collected
with fvcore's reason instead of disappearing into the totals.

FlopCounterMode is also read per layer: a layer whose count is not its analytic 2×madds is
listed with the ops that read its weights but have no FlopCounterMode formula. The one such
gap the analytic side explains is an LSTM step: torch on CPU runs nn.LSTM as oneDNN's fused
aten.mkldnn_rnn_layer, which FlopCounterMode has no formula for, so the cell's multiply-adds
go uncounted (without oneDNN the cell decomposes into aten.addmm, which it counts). Such a gap
is explained when it is exactly 2× the cell's multiply-adds; any other gap is a difference.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

with warnings.catch_warnings():  # fvcore.nn scripts its loss functions at import time
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis, parameter_count

from costmodel.api import load
from costmodel.errors import CostModelError
from costmodel.engine import Branch, Dag, Result, Row, Seq, evaluate, nodes
from costmodel.options import Options
from costmodel.crosscheck.builder import build, example_input, torch_layer
from costmodel.crosscheck.modern_cnn import channels_last_paths, torch_shape
from costmodel.crosscheck.checks import CounterGap, LayerCheck, OpCheck, Uncounted, Verification

FVCORE_SCOPE = Options(scope="fvcore", flops_per_madd=1, bn_params=True)
"""fvcore's conventions: its default ops, 1 per multiply-add, params as torch counts them."""
FLOP_COUNTER_SCOPE = Options(scope="paper", flops_per_madd=2, bn_params=True)
"""FlopCounterMode's: conv and matmul only, 2 FLOPs per multiply-add."""


class RecordingFlopCount(FlopCountAnalysis):
    """fvcore's FlopCountAnalysis, also noting each op it counts as nothing, and why.

    fvcore asks ``_should_ignore_node`` about every op it has no counter for: True means
    ignored (its list of free ops, and prim:: bookkeeping), False unsupported. This records
    the answer and the modules running when the op ran (outermost first); fvcore's own counts
    are untouched.

    Ancestor mode "caller": an op counts for every module whose forward was running, so a
    layer that runs shared weights it does not own (SkipNet's recurrent gates) is charged
    for its own step. fvcore's default, "owner", would charge the owner's ancestors instead;
    where no module is shared the two are the same."""

    def __init__(self, model: nn.Module, inputs: tuple[torch.Tensor, ...]):
        super().__init__(model, inputs)
        self.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        self.ancestor_mode("caller")
        self.uncounted: list[tuple[str, tuple[str, ...], str]] = []  # (op, modules, reason)

    def _should_ignore_node(self, node) -> bool:
        ignored = super()._should_ignore_node(node)
        kind = node.kind()
        if not (ignored and kind.startswith("prim::")):  # prim:: nodes are not computation
            modules = tuple(node.scopeName().split("/"))
            self.uncounted.append((kind, modules, "ignored" if ignored else "unsupported"))
        return ignored


class WeightOpsWithoutFormula(TorchDispatchMode):
    """Notes, per layer, each op that reads weights (tensors that require grad) and has no
    FlopCounterMode formula, views left out: where a layer's multiply-adds can run unseen by
    FlopCounterMode (a fused kernel such as oneDNN's LSTM, aten.mkldnn_rnn_layer). Batch norm
    and PReLU appear too; they hold no multiply-adds in FlopCounterMode's scope."""

    def __init__(self, registry: Mapping, layer: Callable[[], str | None]):
        super().__init__()
        self.registry, self.layer = registry, layer
        self.found: dict[str | None, list[str]] = defaultdict(list)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if (func.overloadpacket not in self.registry and not func.is_view
                and any(isinstance(t, torch.Tensor) and t.requires_grad
                        for t in tree_leaves((args, kwargs)))):
            self.found[self.layer()].append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def _own(inclusive: Mapping[str, int], children: Mapping[str, list[str]]) -> dict[str, int]:
    """Per module, its own count: its inclusive count less its direct submodules'."""
    return {name: inclusive.get(name, 0) - sum(inclusive.get(c, 0) for c in kids)
            for name, kids in children.items()}


def _children(model: nn.Module, rows: set[str]) -> dict[str, list[str]]:
    """The modules of the layer tree (containers and layers, the model as ''), each with its
    direct children among them. A layer's module may have submodules of its own (a recurrent
    gate's controller): they are part of the layer, so its counts are inclusive."""
    found: dict[str, list[str]] = {}

    def visit(name: str, module: nn.Module) -> None:
        kids = [] if name in rows else \
            [(f"{name}.{c}" if name else c, m) for c, m in module.named_children()]
        found[name] = [k for k, _ in kids]
        for kid, m in kids:
            visit(kid, m)

    visit("", model)
    return found


def _checked(tree: Seq) -> list[Row | Branch | Dag]:
    """What gets a check of its own: the rows and the branching nodes and graphs, in order (a
    branching node, which holds its split and merge, before its branches' rows; a graph, which
    holds its merges, before its nodes' rows)."""
    return [n for n in nodes(tree, ends=False) if type(n) is not Seq]


@dataclass
class ForwardPass:
    """What one forward pass under FlopCounterMode found: per listed module its output shape
    (one sample) and FlopCounterMode's count (its ops and its submodules'); per layer the ops
    that read weights without a FlopCounterMode formula; FlopCounterMode's total."""

    shapes: dict[str, list[int]]
    counted: dict[str, int]
    without_formula: dict[str | None, list[str]]
    total: int


def _run(model: nn.Module, x: torch.Tensor, paths: list[str]) -> ForwardPass:
    """One forward pass over the listed modules. A module torch cannot run becomes an error
    naming its layer."""
    modules = dict(model.named_modules())
    counter = FlopCounterMode(display=False)
    shapes: dict[str, list[int]] = {}
    counted: dict[str, int] = {}
    started: list[tuple[str, int]] = []  # the modules running, with the count when they began

    def enter(path: str):
        return lambda module, args: started.append((path, counter.get_total_flops()))

    def leave(path: str):
        def hook(module, args, out) -> None:  # returns None: the output stays as it is
            shapes[path] = list(out.shape[1:])
            counted[path] = counter.get_total_flops() - started.pop()[1]
        return hook

    handles = [h for path in paths for h in (modules[path].register_forward_pre_hook(enter(path)),
                                             modules[path].register_forward_hook(leave(path)))]
    recorder = WeightOpsWithoutFormula(counter.flop_registry,
                                       lambda: started[-1][0] if started else None)
    try:
        with torch.no_grad(), counter, recorder:
            model(x)
    except RuntimeError as e:
        if _is_allocation_failure(e):
            raise  # not this layer's fault: verify_result reports the model as too large
        raise CostModelError(f"torch cannot run this layer: {str(e).splitlines()[0]}",
                             path=started[-1][0] if started else None) from None
    finally:
        for h in handles:
            h.remove()
    return ForwardPass(shapes, counted, recorder.found, counter.get_total_flops())


def _layer_checks(result: Result, own_flops: dict[str, int], own_params: dict[str, int],
                  shapes: dict[str, list[int]]) -> list[LayerCheck]:
    checks, covered = [], set()
    last = channels_last_paths(result)  # their torch output is N×H×W×C
    for node in _checked(result.tree):
        if isinstance(node, Row):
            flops, params, type_ = node.flops, node.params, node.type
            shape = torch_shape(node.out, node.path in last)
            if node.training_only:  # an aux layer: registered, not run in eval mode
                shape = None
        elif isinstance(node, Dag):  # a graph: its merges are functional ops of its module
            parts = [r for r in node.merges if r is not None]
            flops = sum(r.flops for r in parts)
            params = sum(r.params for r in parts)
            shape, type_ = node.out.as_list(), " + ".join(r.type for r in parts) or "graph"
        else:  # a parallel node: its split and merge are functional ops of its module
            parts = [r for r in (node.split, node.merge) if r is not None]
            flops = sum(r.flops for r in parts)
            params = sum(r.params for r in parts)
            shape = torch_shape(node.merge.out, node.path in last)
            type_ = " + ".join(r.type for r in parts)
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


def _counter_gaps(paper: Result, run: ForwardPass) -> list[CounterGap]:
    """The layers whose FlopCounterMode count is not their analytic 2×madds."""
    gaps = []
    for row in paper.rows:
        if row.layer is None or run.counted.get(row.path, 0) == row.flops:
            continue
        lstm = torch_layer(row).lstm_madds(row) * FLOP_COUNTER_SCOPE.flops_per_madd
        gaps.append(CounterGap(row.path, row.type, row.flops, run.counted.get(row.path, 0), lstm,
                               tuple(dict.fromkeys(run.without_formula.get(row.path, ())))))
    return gaps


def _uncounted(records: list[tuple[str, tuple[str, ...], str]],
               layers: Mapping[str, list[str]]) -> list[Uncounted]:
    """fvcore's uncounted ops by (op, reason), each charged to the innermost layer-tree module
    running it (a shared controller's ops to the layer that ran them, not to their owner)."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for op, modules, reason in records:
        module = next((m for m in reversed(modules) if m in layers), "")
        found[(op, reason)].append(module)
    return [Uncounted(op, reason, len(mods), tuple(dict.fromkeys(mods)))
            for (op, reason), mods in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


# --- memory: refuse what cannot be built, rather than fail (or be killed) half way -----------

MEMORY_SHARE = 0.75
"""The share of the available memory a verification may plan to use."""


def memory_needed(result: Result) -> int:
    """Bytes a verification holds at most, float32: the input, every layer's output (fvcore's
    trace keeps them all alive at once) and the weights. Measured: MobileNet at 1000×1000 is
    estimated at 1.23 GB and raises the process's peak by about 0.93 GB."""
    h, w = result.input
    elements = result.in_channels * h * w + sum(r.out.numel for r in result.rows) + \
        result.totals.params
    return 4 * elements


def memory_available() -> int | None:
    """Bytes this process can still allocate: the system's available memory, or less where a
    cgroup (a container) caps it; None where neither can be read."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    try:  # cgroup v2: the cap less what the group already uses
        with open("/sys/fs/cgroup/memory.max") as f:
            cap = f.read().strip()
        if cap.isdigit():
            with open("/sys/fs/cgroup/memory.current") as f:
                found.append(int(cap) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def _gb(n: int | float) -> str:
    return f"{n / 1e9:.3g} GB"


def _too_large(result: Result, needed: int, available: int | None = None) -> CostModelError:
    h, w = result.input
    where = f", and {_gb(available)} of memory is available" if available is not None else ""
    return CostModelError(f"too large to build in torch: {result.model} at {h}×{w} needs about "
                          f"{_gb(needed)} for its activations and weights (float32){where}; "
                          f"verify it at a smaller --input", field="input")


def _check_memory(result: Result) -> None:
    needed, available = memory_needed(result), memory_available()
    if available is not None and needed > MEMORY_SHARE * available:
        raise _too_large(result, needed, available)


def _is_allocation_failure(e: BaseException) -> bool:
    """torch's CPU allocator raises RuntimeError ("can't allocate memory"), CUDA's
    OutOfMemoryError, Python MemoryError."""
    if isinstance(e, MemoryError) or isinstance(e, getattr(torch, "OutOfMemoryError", ())):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or
                                            "out of memory" in text)


def verify_result(result: Result, paper: Result) -> Verification:
    """Check ``result`` (evaluated in FVCORE_SCOPE) against fvcore and PyTorch; ``paper`` is
    the same model evaluated in FLOP_COUNTER_SCOPE. A model whose activations would not fit
    in memory is refused before anything is allocated; an allocation that fails all the same
    is the same error, never a crash."""
    _check_memory(result)
    try:
        return _verify(result, paper)
    except (MemoryError, RuntimeError) as e:
        if _is_allocation_failure(e):
            raise _too_large(result, memory_needed(result)) from None
        raise


def _verify(result: Result, paper: Result) -> Verification:
    model = build(result)
    x = example_input(result)
    nodes = _checked(result.tree)
    run = _run(model, x, [n.path for n in nodes])

    analysis = RecordingFlopCount(model, (x,))
    children = _children(model, {n.path for n in nodes if isinstance(n, Row)})
    own_flops = _own(analysis.by_module(), children)
    own_params = _own(parameter_count(model), children)
    numel = sum(p.numel() for p in model.parameters())
    return Verification(
        model=result.model, input=result.input,
        layers=tuple(_layer_checks(result, own_flops, own_params, run.shapes)),
        ops=tuple(_op_checks(result, analysis.by_operator())),
        uncounted=tuple(_uncounted(analysis.uncounted, children)),
        flops=result.totals.flops, fvcore_flops=int(analysis.total()),
        madds_x2=paper.totals.flops, flop_counter=int(run.total),
        params=result.totals.params, fvcore_params=int(parameter_count(model)[""]), numel=numel,
        counter_gaps=tuple(_counter_gaps(paper, run)))


def verify_model(model, *, input=None, width: float | None = None, depth: float | None = None,
                 num_classes: int | None = None) -> Verification:
    """Load, evaluate, build and check one model (zoo name, spec file or ModelSpec). An error
    names the spec file, as the analytic commands' do."""
    spec = load(model, input=input)  # a Python target is traced at the input
    kwargs = dict(input=input, width=width, depth=depth, num_classes=num_classes)
    try:
        return verify_result(evaluate(spec, options=FVCORE_SCOPE, **kwargs),
                             evaluate(spec, options=FLOP_COUNTER_SCOPE, **kwargs))
    except CostModelError as e:
        if e.file is None and spec.file:
            e.file = spec.file
        raise
