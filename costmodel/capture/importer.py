"""``import_module``: a module traced at an input size → a spec document."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from costmodel.capture.graph import trace
from costmodel.capture.structure import Namer, Structure
from costmodel.errors import CostModelError
from costmodel.layers.base import check_count


def import_module(module: nn.Module, input_hw: tuple[int, int], in_channels: int = 3, *,
                  name: str, unknown: Literal["error", "allow"] = "error") -> dict:
    """The spec document of ``module`` (in eval mode) at ``input_hw``: name, input,
    in_channels, num_classes (where a final linear layer gives it), layers, source, notes.

    An op with no spec layer raises a CostModelError naming the op and its module path; with
    ``unknown="allow"`` it becomes a ``type: unknown`` layer (listed in the notes)."""
    return capture(module, input_hw, in_channels, name=name, unknown=unknown)[0]


def capture(module: nn.Module, input_hw: tuple[int, int], in_channels: int = 3, *,
            name: str, unknown: Literal["error", "allow"] = "error") -> tuple[dict, dict[str, str]]:
    """``import_module``'s document, and the torch module each spec row's path is charged to
    by fvcore (rows inside ``graph`` nodes left out): for comparing layer by layer."""
    if not isinstance(module, nn.Module):
        raise CostModelError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if unknown not in ("error", "allow"):
        raise CostModelError(f"unknown must be 'error' or 'allow', got {unknown!r}",
                             field="unknown")
    try:
        h, w = input_hw
    except (TypeError, ValueError):
        raise CostModelError(f"input_hw must be (height, width), got {input_hw!r}",
                             field="input") from None
    for side, value in (("input", h), ("input", w), ("in_channels", in_channels)):
        check_count(value, side)
    was_training = module.training
    module.eval()
    try:
        dag, out = trace(module, torch.zeros(1, in_channels, h, w), unknown,
                         aux=lambda sub, x, path: _aux(sub, x, path, unknown))
    finally:
        module.train(was_training)
    namer = Namer(dag)
    layers = namer.layers(Structure(dag).items(out), "")
    cls = type(module)
    doc: dict = {
        "name": name,
        "source": f"imported from {cls.__module__}.{cls.__qualname__} by costmodel.capture "
                  f"(torch.fx trace at {h}×{w})",
        "input": h if h == w else [h, w],
        "in_channels": in_channels,
    }
    last = dag.ops[out]
    if last.kind == "layer" and last.layer["type"] == "linear":
        doc["num_classes"] = last.layer["out"]
    notes = list(dag.notes)
    if dag.unknowns:
        notes.insert(0, f"costs exclude {len(dag.unknowns)} unknown op(s): "
                     + "; ".join(dag.unknowns))
    if notes:
        doc["notes"] = notes
    doc["layers"] = layers
    return doc, namer.paths


def _aux(module: nn.Module, x, path: str, unknown: str) -> tuple[list[dict], dict[str, str]]:
    """A training-only module imported on its own, at the shape of the value it taps (in
    eval mode, as the rest: its dropout is then an identity, as the spec's rows say)."""
    doc, paths = capture(module, (x.h, x.w), x.c, name=path, unknown=unknown)
    return doc["layers"], paths
