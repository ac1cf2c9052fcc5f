"""``graph``: any wiring that is not a nest of branches (DenseNet's dense block, where each
layer concatenates ALL the earlier outputs): named nodes, each merging the outputs of earlier
nodes and then running its layers.

    - type: graph
      name: block1
      nodes:
        - {name: a, layers: [...]}                        # input: the previous node (the
        - {name: b, inputs: [input, a], merge: concat,    #   first node's: the graph's input)
           layers: [...]}                                 # >1 input: merged, then the layers
        - {name: c, inputs: [input, a, b], merge: concat} # (which may be empty)
      output: c                                           # optional: the last node

What it costs: its nodes' layers, each as its own type costs, plus one merge row per node with
more than one input (``costmodel/layers/merge.py``):

    concat:    FLOPs = 0;  MAC = Σ inputs + output (a copy; each node copies all its inputs
               again, as torchvision's DenseNet does with torch.cat)
    add:       FLOPs = 0;  MAC = Σ inputs + output
    multiply:  FLOPs = 0;  MAC = Σ inputs + output

Rows: a node's layers are ``<graph>.<node>.<layer>``, its merge ``<graph>.<node>.<merge>``.
``input`` names the graph's input; a node may take only earlier nodes, and every node's
output must be used (by a later node, or as the graph's output) — so the output is the last
node (``output``, if given, must name it). The evaluator walks it as its own kind of node (``Walker.graph``), and the torch
builder runs it as a GraphModule (the nodes in order over a dict of tensors).
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)

from costmodel.layers.base import STRICT, Layer, LayerSpec

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
GraphMerge = Literal["concat", "add", "multiply"]
INPUT = "input"
"""The name of the graph's input in ``inputs``."""


class GraphNode(BaseModel):
    """One node of a graph: its inputs merged (when more than one), then its layers."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, **STRICT)

    name: Name
    inputs: list[Name] | None = Field(default=None, min_length=1)
    merge: GraphMerge | None = None
    layers: list[Layer] = []


Wiring = tuple[tuple[str, tuple[str, ...], str | None, list], ...]


def wire(nodes: list[GraphNode]) -> Wiring:
    """(name, inputs, merge, layers) per node, in order, with the default inputs filled in;
    a ValueError naming the node where the wiring is wrong: a name taken twice, an input that
    is no earlier node, a merge missing or given for one input, a node that does nothing, or
    one whose output nothing uses (the output is the last node)."""
    seen: list[str] = [INPUT]
    used: set[str] = set()
    out = []
    for i, node in enumerate(nodes):
        where = f"node '{node.name}' (nodes.{i})"
        if node.name in seen:
            raise ValueError(f"{where}: the name is taken"
                             + (" (input is the graph's input)" if node.name == INPUT else ""))
        inputs = tuple(node.inputs) if node.inputs is not None else (seen[-1],)
        for name in inputs:
            if name not in seen:
                later = any(n.name == name for n in nodes[i:])
                raise ValueError(f"{where}: input '{name}' is " + (
                    "not an earlier node (a node takes only the graph's input and earlier "
                    "nodes)" if later else
                    f"no node of the graph (known here: {', '.join(seen)})"))
        if len(inputs) > 1 and node.merge is None:
            raise ValueError(f"{where}: {len(inputs)} inputs need a merge (concat, add or "
                             "multiply)")
        if len(inputs) == 1 and node.merge is not None:
            raise ValueError(f"{where}: merge '{node.merge}' needs two inputs or more")
        if len(inputs) == 1 and not node.layers:
            raise ValueError(f"{where}: one input and no layers: the node does nothing")
        used.update(inputs)
        seen.append(node.name)
        out.append((node.name, inputs, node.merge, node.layers))
    unused = [n for n in seen[1:-1] if n not in used]
    if unused:
        raise ValueError(f"the output of node '{unused[0]}' is used by no later node (every "
                         f"node but the last, the graph's output, must be used)")
    return tuple(out)


class Graph(LayerSpec):
    """Named nodes wired by name (see the module's docstring)."""

    type: Literal["graph"] = "graph"
    nodes: list[GraphNode] = Field(min_length=1)
    output: Name | None = None

    @field_validator("nodes")
    @classmethod
    def _wired(cls, nodes: list[GraphNode]) -> list[GraphNode]:
        wire(nodes)
        return nodes

    @field_validator("output")
    @classmethod
    def _last(cls, output: str | None, info: ValidationInfo) -> str | None:
        nodes = info.data.get("nodes")
        if output is not None and nodes and output != nodes[-1].name:
            names = [n.name for n in nodes]
            if output not in names:
                raise ValueError(f"'{output}' is no node of the graph ({', '.join(names)})")
            after = names[names.index(output) + 1:]
            raise ValueError(f"the output must be the last node: nodes after '{output}' "
                             f"({', '.join(after)}) would be unused")
        return output

    @model_validator(mode="after")
    def _wiring_kept(self):
        self.wiring  # noqa: B018 - made with the spec (and cached with it), as Repeat.first_copy
        return self

    @cached_property
    def wiring(self) -> Wiring:
        """``wire(self.nodes)``, once per graph: the walker and the torch builder read it."""
        return wire(self.nodes)
