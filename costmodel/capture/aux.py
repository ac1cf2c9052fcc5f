"""Training-only branches (GoogLeNet's and Inception v3's auxiliary classifiers): modules whose
parameters count but which the eval-mode trace never reaches (``if self.training: aux =
self.aux1(x)``).

After the eval trace, the parameters no traced op uses are grouped by the top-most module
holding only such parameters. A second trace in training mode shows where each of those
modules taps the main path: the value its first op reads from outside it. That value is a node
of the eval trace too (fx names nodes in order, and the two traces agree up to the first
``self.training`` branch); the importer puts an ``aux`` layer there, holding the module's own
import at that value's shape (``costmodel.capture.importer``). A module that is not called in
training mode either, or taps a value the eval trace lacks, stays unreached: the importer
notes it (its parameters are missing from the spec).
"""

from __future__ import annotations

import torch.fx as fx
from torch import nn


def unreached(module: nn.Module, graph: fx.Graph) -> list[str]:
    """The top-most modules whose parameters no op of ``graph`` uses (in definition order)."""
    leaves = {str(n.target) for n in graph.nodes if n.op == "call_module"}
    attrs = {str(n.target) for n in graph.nodes if n.op == "get_attr"}

    def prefixes(param: str) -> list[str]:
        parts = param.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts))]

    names = [n for n, _ in module.named_parameters()]
    missing = [n for n in names if n not in attrs and not any(p in leaves for p in prefixes(n))]
    if not missing:
        return []
    touched = {p for n in set(names) - set(missing) for p in prefixes(n)}  # hold a used one
    found: dict[str, None] = {}
    for name in missing:  # the shortest prefix holding no used parameter
        top = next((p for p in prefixes(name) if p not in touched), None)
        if top is not None:
            found[top] = None
    return list(found)


def _in(node: fx.Node, path: str) -> bool:
    if node.op == "call_module":
        target = str(node.target)
        if target == path or target.startswith(path + "."):
            return True
    stack = node.meta.get("nn_module_stack") or {}
    return any(p == path or p.startswith(path + ".") for p, _ in stack.values())


def taps(module: nn.Module, paths: list[str],
         tracer: type[fx.Tracer]) -> dict[str, tuple[str, object, list[str]]]:
    """For each module path, the node (of a training-mode trace) it reads from outside
    itself: {node name: (its op, its target, [paths tapping it])}. Paths not called in
    training are left out."""
    was_training = module.training
    module.train()
    try:
        graph = tracer().trace(module)
    except Exception:  # noqa: BLE001 - the training-mode trace is a best effort
        return {}
    finally:
        module.train(was_training)
    found: dict[str, list[str]] = {}
    for path in paths:
        first = next((n for n in graph.nodes if _in(n, path)), None)
        if first is None:
            continue
        outside = [a for a in first.all_input_nodes if not _in(a, path)]
        if len(outside) == 1:
            node = outside[0]
            found.setdefault(node.name, (node.op, node.target, []))[2].append(path)
    return found


__all__ = ["taps", "unreached"]
