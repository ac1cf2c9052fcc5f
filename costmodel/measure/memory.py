"""Measured peak memory of a forward pass of the built module (torch).

torch's CPU allocator keeps no statistics by default; its profiler does when asked
(``profile_memory=True``): every allocation and free through the CPU allocator becomes a
``[memory]`` event carrying the allocator's running total ("Total Allocated"), so the largest
running total is the peak, in bytes, exactly as requested from the allocator (no rounding:
the CPU allocator aligns but does not round sizes). On a GPU, ``torch.cuda.max_memory_allocated``
(after ``reset_peak_memory_stats``) gives the same; that path is taken for ``device='cuda'``.

Only what is allocated inside the measurement counts: the weights are made before it (and
reported apart, from the module's parameters and floating-point buffers); the input is made
inside it, so that it counts as the analytic model counts it.

Each allocation is also attributed to the top-level operator (aten::conv2d, aten::cat, …)
during which it happened: one freed before its operator returns is that kernel's workspace
(im2col columns, oneDNN scratch), not a tensor of the network. The peak of the tensors alone
(``tensor_peak``) is what :func:`costmodel.analysis.memory.peak_memory` predicts.
"""

from __future__ import annotations

import bisect
import json
import os
import tempfile
from dataclasses import dataclass

import torch
from torch import nn

from costmodel.crosscheck.builder import build
from costmodel.engine import Result


@dataclass(frozen=True)
class MeasuredMemory:
    """A forward pass's memory in bytes: ``peak`` everything the allocator held at once
    (the input, the tensors, the kernels' workspace), ``tensor_peak`` the tensors alone
    (allocations that outlive the operator that made them), ``workspace`` what the kernels
    held beside the tensors at the moment of ``peak``, ``peak_op`` the operator running at the
    peak, and ``weights`` the module's parameters and floating-point buffers."""

    peak: int
    tensor_peak: int
    workspace: int
    peak_op: str
    weights: int


def _weights(module: nn.Module) -> int:
    tensors = list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _set_inplace(module: nn.Module) -> None:
    for m in module.modules():
        if hasattr(m, "inplace") and isinstance(m.inplace, bool):
            m.inplace = True


def _events(trace: dict) -> tuple[list[tuple[float, float, str]], list[dict]]:
    """The top-level operators (start, end, name) in order, and the memory events in order."""
    ops = sorted((e["ts"], e["ts"] + e.get("dur", 0), e["name"]) for e in trace["traceEvents"]
                 if e.get("cat") == "cpu_op")
    top: list[tuple[float, float, str]] = []
    for start, end, name in ops:
        if not top or start >= top[-1][1]:
            top.append((start, end, name))
    memory = sorted((e for e in trace["traceEvents"] if e.get("name") == "[memory]"),
                    key=lambda e: (e["ts"], e["args"].get("Ev Idx", 0)))
    return top, memory


def _op_at(top: list[tuple[float, float, str]], ts: float) -> int:
    """The index of the top-level operator running at ``ts``, or -1 (between operators)."""
    i = bisect.bisect_right(top, (ts, float("inf"), "")) - 1
    return i if i >= 0 and top[i][0] <= ts <= top[i][1] else -1


def _analyse(trace: dict) -> tuple[int, int, int, str]:
    top, memory = _events(trace)
    # which allocations are freed inside the operator that made them: workspace
    made: dict[int, tuple[int, int]] = {}  # address → (event index, operator)
    workspace: set[int] = set()
    for i, e in enumerate(memory):
        a = e["args"]
        op = _op_at(top, e["ts"])
        if a["Bytes"] > 0:
            made[a["Addr"]] = (i, op)
        elif a["Addr"] in made:
            j, op_made = made.pop(a["Addr"])
            if op_made >= 0 and op_made == op:
                workspace.update((i, j))
    total = tensors = 0
    peak = tensor_peak = peak_workspace = 0
    peak_op = ""
    for i, e in enumerate(memory):
        total += e["args"]["Bytes"]
        if i not in workspace:
            tensors += e["args"]["Bytes"]
            tensor_peak = max(tensor_peak, tensors)
        if total > peak:
            op = _op_at(top, e["ts"])
            peak, peak_workspace, peak_op = total, total - tensors, top[op][2] if op >= 0 else ""
    return peak, tensor_peak, peak_workspace, peak_op


def _profiled_peak(run) -> tuple[int, int, int, str]:
    """(peak, tensor peak, workspace at the peak, operator at the peak) of ``run()``'s CPU
    allocations, from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as f:
            trace = json.load(f)
    return _analyse(trace)


OPTIMIZERS = {"sgd": lambda p: torch.optim.SGD(p, lr=0.01),
              "momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
              "adam": lambda p: torch.optim.Adam(p)}


def measure_training(result: Result, optimizer: str = "sgd", batch: int | None = None) -> int:
    """Peak bytes of one training step (forward, backward of the outputs' sum, optimizer
    step, gradients freed) of ``build(result)`` in train mode on CPU: the weights and the
    optimizer's state (made by a warm-up step, measured from its tensors) plus the largest
    running total of the step's own allocations."""
    batch = result.options.batch if batch is None else batch
    h, w = result.input
    module = build(result).train()
    opt = OPTIMIZERS[optimizer](module.parameters())

    def step() -> None:
        module(torch.randn(batch, result.in_channels, h, w)).sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # the optimizer's state is made here
    state = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                if isinstance(t, torch.Tensor))
    peak, _, _, _ = _profiled_peak(step)
    return _weights(module) + state + peak


def measure_memory(result: Result, batch: int | None = None, inplace_activations: bool = False,
                   device: str = "cpu") -> MeasuredMemory:
    """Peak memory of one eval-mode, inference-mode forward pass of ``build(result)`` at
    ``batch`` (default: the result's), after one warm-up pass (lazy initialisation)."""
    batch = result.options.batch if batch is None else batch
    h, w = result.input
    shape = (batch, result.in_channels, h, w)
    module = build(result).to(device)
    if inplace_activations:
        _set_inplace(module)
    weights = _weights(module)
    with torch.inference_mode():
        module(torch.randn(shape, device=device))  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            x = torch.randn(shape, device=device)
            y = module(x)
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
            del x, y
            return MeasuredMemory(peak, peak, 0, "", weights)


        def forward() -> None:
            x = torch.randn(shape)  # inside: the input counts, as predicted
            y = module(x)
            del x, y

        peak, tensor_peak, workspace, op = _profiled_peak(forward)
    return MeasuredMemory(peak, tensor_peak, workspace, op, weights)
