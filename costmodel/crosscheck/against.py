"""``costmodel verify SPEC --against TARGET``: a spec against the user's real module.

``verify`` alone builds its torch module *from the spec*, so it confirms a spec against
itself. Here the module is the user's own (a Python target, ``costmodel.targets``): it runs
once at the spec's input, and the spec, evaluated in fvcore's scope, is compared with it layer
by layer, in order.

What is compared. Each side becomes a sequence of *counted items* in execution order:

- spec: its rows (``Result.rows``, fvcore scope) that hold FLOPs or params;
- module: every leaf module (no submodules) that holds FLOPs (fvcore's ``by_module()``) or
  params, with the output shape its forward hook saw, one item per call; and every container
  whose own forward does counted work outside its submodules (``F.adaptive_avg_pool2d``,
  ``F.linear``, a parameter of its own), placed where that work first ran.

Free items (ReLU, max pool, dropout, flatten, element-wise merges: no params and no fvcore
FLOPs on their side) are skipped on both sides alike; a wrong stride in one of them still shows
at the next counted layer's shape. The two sequences are aligned with difflib on (shape,
params, FLOPs), so a layer missing from the spec shows as one missing item and not as every
later layer differing; unmatched stretches are paired in order. Totals: the spec's FLOPs
against fvcore's total, its params against ``sum(p.numel())``.

This module's top level imports no torch: the result classes render without the extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from costmodel.render import Column, Table

SHOWN = 10
"""Differing pairs listed unless every pair is asked for."""


@dataclass(frozen=True)
class Item:
    """One counted layer of one side."""

    path: str
    type: str
    shape: list[int] | None
    params: int
    flops: int

    def key(self) -> tuple:
        return (tuple(self.shape) if self.shape is not None else None, self.params, self.flops)


@dataclass(frozen=True)
class Pair:
    """A spec item and the module item it is compared with (None: nothing on that side)."""

    spec: Item | None
    module: Item | None

    @property
    def differs(self) -> list[str]:
        if self.spec is None:
            return ["missing from the spec"]
        if self.module is None:
            return ["not in the module"]
        s, m = self.spec, self.module
        found = []
        if m.shape is not None and s.shape != m.shape:
            found.append("shape")
        if s.params != m.params:
            found.append("params")
        if s.flops != m.flops:
            found.append("flops")
        return found

    @property
    def ok(self) -> bool:
        return not self.differs

    def record(self) -> dict[str, Any]:
        def side(item: Item | None) -> dict[str, Any] | None:
            return None if item is None else {"path": item.path, "type": item.type,
                                              "shape": item.shape, "params": item.params,
                                              "flops": item.flops}
        return {"ok": self.ok, "differs": self.differs, "spec": side(self.spec),
                "module": side(self.module)}


@dataclass(frozen=True)
class AgainstResult:
    spec: str
    target: str
    input: tuple[int, int]
    pairs: tuple[Pair, ...]
    skipped_spec: int
    skipped_module: int
    flops: int
    fvcore_flops: int
    params: int
    numel: int

    @property
    def differing(self) -> list[Pair]:
        return [p for p in self.pairs if not p.ok]

    @property
    def ok(self) -> bool:
        return not self.differing and self.flops == self.fvcore_flops and \
            self.params == self.numel

    def record(self) -> dict[str, Any]:
        return {"ok": self.ok, "spec": self.spec, "against": self.target,
                "input": list(self.input), "compared": len(self.pairs),
                "differing": len(self.differing),
                "skipped_free": {"spec": self.skipped_spec, "module": self.skipped_module},
                "totals": {"flops": self.flops, "fvcore_flops": self.fvcore_flops,
                           "params": self.params, "numel": self.numel},
                "layers": [p.record() for p in self.pairs]}


# --- pairing (plain data: tested without torch) ----------------------------------------------

def pair_items(spec: list[Item], module: list[Item]) -> list[Pair]:
    """Align two sequences of counted items (see the module's docstring)."""
    from difflib import SequenceMatcher

    matcher = SequenceMatcher(None, [i.key() for i in spec], [i.key() for i in module],
                              autojunk=False)  # repeated blocks are the norm, not junk
    pairs: list[Pair] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            pairs += [Pair(s, m) for s, m in zip(spec[a0:a1], module[b0:b1], strict=True)]
            continue
        left, right = spec[a0:a1], module[b0:b1]
        n = min(len(left), len(right))
        pairs += [Pair(s, m) for s, m in zip(left[:n], right[:n], strict=True)]
        pairs += [Pair(s, None) for s in left[n:]] + [Pair(None, m) for m in right[n:]]
    return pairs


def spec_items(result) -> tuple[list[Item], int]:
    """The spec's counted rows, in order, and how many free rows were skipped."""
    items = [Item(r.path, r.type, r.out.as_list(), r.params, r.flops) for r in result.rows]
    counted = [i for i in items if i.params or i.flops]
    return counted, len(items) - len(counted)


# --- running the module (torch) --------------------------------------------------------------

# fvcore counts these functions (its default handles, as torch-level names); a container that
# calls one itself, outside its submodules, has counted work of its own at that point.
_COUNTED_FUNCTIONS = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "linear", "matmul", "__matmul__", "mm", "bmm", "addmm", "einsum", "batch_norm",
    "group_norm", "layer_norm", "instance_norm", "adaptive_avg_pool2d", "interpolate",
    "upsample", "upsample_nearest", "upsample_bilinear", "grid_sample"})


def _shape(out: Any) -> list[int] | None:
    import torch
    from torch.utils._pytree import tree_leaves

    first = next((t for t in tree_leaves(out) if isinstance(t, torch.Tensor)), None)
    return None if first is None else list(first.shape[1:])


def module_items(model, x) -> tuple[list[Item], int, int, int]:
    """Run ``model`` once on ``x``: its counted items in execution order, how many free leaf
    calls were skipped, fvcore's total and ``sum(p.numel())``."""
    import warnings

    import torch
    from torch.overrides import TorchFunctionMode

    with warnings.catch_warnings():  # fvcore.nn scripts its loss functions at import time
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        from fvcore.nn import FlopCountAnalysis, parameter_count

    modules = dict(model.named_modules())
    leaves = {p for p, m in modules.items() if not any(True for _ in m.children())}
    running: list[str] = []
    events: list[tuple[str, str, Any]] = []  # ("leaf", path, shape) | ("own", path, None)
    own_at: set[str] = set()

    class Direct(TorchFunctionMode):
        """Notes where a container first calls a counted function itself."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            where = running[-1] if running else None
            if where is not None and where not in leaves and where not in own_at and \
                    getattr(func, "__name__", "") in _COUNTED_FUNCTIONS:
                own_at.add(where)
                events.append(("own", where, None))
            return func(*args, **(kwargs or {}))

    def enter(path: str):
        return lambda module, args: running.append(path)

    def leave(path: str):
        def hook(module, args, out) -> None:
            running.pop()
            if path in leaves:
                events.append(("leaf", path, _shape(out)))
            elif path not in own_at:
                events.append(("end", path, None))
        return hook

    handles = [h for path, m in modules.items()
               for h in (m.register_forward_pre_hook(enter(path)),
                         m.register_forward_hook(leave(path)))]
    try:
        with torch.no_grad(), Direct():
            model(x)
    finally:
        for h in handles:
            h.remove()

    analysis = FlopCountAnalysis(model, (x,))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        inclusive = analysis.by_module()
    params = parameter_count(model)
    children = {p: [f"{p}.{c}" if p else c for c, _ in m.named_children()]
                for p, m in modules.items()}

    def own(counts, path: str) -> int:
        return int(counts.get(path, 0)) - sum(int(counts.get(c, 0)) for c in children[path])

    calls: dict[str, int] = {}
    for kind, path, _ in events:
        if kind == "leaf":
            calls[path] = calls.get(path, 0) + 1
    items, skipped, seen = [], 0, set()
    for kind, path, shape in events:
        if kind == "end" and path in own_at:
            continue
        first = path not in seen
        seen.add(path)
        if kind == "leaf":
            # a module called k times: its fvcore count split over the calls, its params once
            flops, n = own(inclusive, path) // calls[path], own(params, path) if first else 0
        elif first:
            flops, n = own(inclusive, path), own(params, path)
        else:
            continue
        type_ = type(modules[path]).__name__ + ("" if kind == "leaf" else " (own ops)")
        if flops or n:
            items.append(Item(path or "(model)", type_, shape, n, flops))
        elif kind == "leaf":
            skipped += 1
    numel = sum(p.numel() for p in model.parameters())
    return items, skipped, int(analysis.total()), int(numel)


def verify_against(spec_ref, target: str, *, input=None, width=None,
                   num_classes=None) -> AgainstResult:
    """Evaluate a spec in fvcore's scope, build the target's module, run it at the spec's
    input and compare them (see the module's docstring)."""
    import torch

    from costmodel.api import load
    from costmodel.crosscheck.verify import FVCORE_SCOPE, _check_memory
    from costmodel.engine import evaluate
    from costmodel.errors import CostModelError
    from costmodel.targets import build_target, parse_target

    parsed = parse_target(target)
    spec = load(spec_ref)
    result = evaluate(spec, input=input, width=width, num_classes=num_classes,
                      options=FVCORE_SCOPE)
    _check_memory(result)
    model = build_target(parsed)
    model.eval()
    h, w = result.input
    x = torch.randn(1, result.in_channels, h, w)
    try:
        found, skipped_m, fvcore_total, numel = module_items(model, x)
    except RuntimeError as e:
        raise CostModelError(f"{target}: the module cannot run at the spec's input "
                             f"{result.in_channels}×{h}×{w}: {str(e).splitlines()[0]}",
                             field="input") from None
    expected, skipped_s = spec_items(result)
    return AgainstResult(spec.file or result.model, target, result.input,
                         tuple(pair_items(expected, found)), skipped_s, skipped_m,
                         result.totals.flops, fvcore_total, result.totals.params, numel)


# --- tables (no torch) -------------------------------------------------------------------------

def _shape_text(shape: list[int] | None) -> str:
    return "" if shape is None else "×".join(map(str, shape))


def against_tables(v: AgainstResult, every_layer: bool = False) -> list[Table]:
    """The layers that differ (the first SHOWN; every pair with ``every_layer``), then the
    totals."""
    shown = list(v.pairs) if every_layer else v.differing[:SHOWN]
    cols = [Column("spec", "spec layer"), Column("module", "module layer"),
            Column("differs", "differs"), Column("spec_shape", "spec out", drop=2),
            Column("module_shape", "module out", drop=2),
            Column("spec_params", "spec params", "int", drop=1),
            Column("module_params", "module params", "int", drop=1),
            Column("spec_flops", "spec FLOPs", "int"),
            Column("module_flops", "fvcore FLOPs", "int")]
    rows, marks = [], set()
    for i, p in enumerate(shown):
        s, m = p.spec, p.module
        rows.append({"spec": s.path if s else "—", "module": m.path if m else "—",
                     "differs": ", ".join(p.differs) or "",
                     "spec_shape": _shape_text(s.shape) if s else "",
                     "module_shape": _shape_text(m.shape) if m else "",
                     "spec_params": s.params if s else None,
                     "module_params": m.params if m else None,
                     "spec_flops": s.flops if s else None,
                     "module_flops": m.flops if m else None})
        if not p.ok:
            marks.add((i, "differs"))
    n = len(v.differing)
    title = (f"{v.spec} against {v.target} at {v.input[0]}×{v.input[1]}: "
             + (f"✅ all {len(v.pairs)} counted layers agree" if not n else
                f"❌ {n} of {len(v.pairs)} counted layers differ"
                + (f" (the first {len(shown)} shown)" if n > len(shown) and not every_layer
                   else "")))
    notes = [f"free layers skipped (no params, no fvcore FLOPs): {v.skipped_spec} in the "
             f"spec, {v.skipped_module} in the module",
             "layers are paired in execution order, aligned on (out shape, params, FLOPs); "
             "FLOPs in fvcore's scope (1 per multiply-add)"]
    layers = Table(title, cols, rows, notes=notes, marks=marks)
    totals = Table("Totals", [Column("metric", "metric"), Column("spec", "spec", "int"),
                              Column("module", "module", "int"), Column("status", "status")],
                   [{"metric": "FLOPs (fvcore)", "spec": v.flops, "module": v.fvcore_flops,
                     "status": "ok" if v.flops == v.fvcore_flops else "differs"},
                    {"metric": "params (sum p.numel())", "spec": v.params, "module": v.numel,
                     "status": "ok" if v.params == v.numel else "differs"}])
    return [layers, totals]
