"""Reading the evaluated tree (Seq / Branch / Row nodes) the way the analyses need it: a
node's input and output shapes, its stages and blocks. The walks themselves (``rows_of``,
``nodes``) are the result model's (costmodel/engine/result.py)."""

from __future__ import annotations

from dataclasses import dataclass

from costmodel.errors import CostModelError
from costmodel.engine import Branch, Dag, Node, Result, Row, Seq, name_of, nodes, rows_of
from costmodel.layers.aux import Aux
from costmodel.shape import Shape

__all__ = ["CONTAINERS", "WEIGHTED", "Segment", "blocks_of", "downsamples", "find_node",
           "is_container", "is_shape_preserving", "node_input", "node_output", "node_type",
           "rows_of", "segments"]  # rows_of: the result model's, here for the analyses

WEIGHTED = ("conv", "conv1x1", "depthwise", "fc")
"""Row categories of layers with weights (convolutions and fully connected layers)."""
CONTAINERS = ("sequential", "stage", "repeat")
"""Block types that only group layers: the analyses look through them to the blocks inside."""


def node_input(node: Node) -> Shape:
    """The shape that enters ``node`` (its first row's input: every branch of a branching node
    without a split sees the node's input, and a split's input is the node's input)."""
    first = next(rows_of(node))
    return first.inputs[0]


def node_output(node: Node) -> Shape:
    if isinstance(node, Row):
        return node.out
    if isinstance(node, Branch):
        return node.merge.out
    if isinstance(node, Dag):
        return node.out
    if isinstance(node, Seq) and isinstance(node.layer, Aux):  # the main path goes on with
        return node_input(node)                                # the aux block's input
    return list(rows_of(node))[-1].out


def node_type(node: Node) -> str:
    """The spec type that produced ``node`` (a row's type, a block's or a branching node's)."""
    if isinstance(node, Row):
        return node.type
    layer = node.layer
    return getattr(layer, "type", "model") if layer is not None else "model"


def is_container(node: Node) -> bool:
    return isinstance(node, Seq) and node_type(node) in CONTAINERS


def is_shape_preserving(node: Node) -> bool:
    return node_input(node) == node_output(node)


def downsamples(node: Node) -> bool:
    """True where the node's output map is spatially smaller than its input (a flatten is a
    view, not a downsampling)."""
    x, y = node_input(node), node_output(node)
    if x.flat or y.flat:
        return False
    return y.h < x.h or y.w < x.w


def blocks_of(node: Node) -> list[Node]:
    """The blocks of ``node``: container blocks (sequential, stage, repeat) are looked through;
    composite blocks (dwsep, shufflenet_unit, …), branching nodes and primitives are blocks."""
    if is_container(node):
        return [b for child in node.children for b in blocks_of(child)]  # type: ignore[union-attr]
    return [node]


@dataclass(frozen=True)
class Segment:
    """A stage of the network: a model-defined ``stage`` node, or a run of top-level layers
    cut at each spatial downsampling (specs without stages, and the layers between stages);
    ``head`` is the classifier at the end (from the first top-level layer that makes a vector
    or a 1×1 map)."""

    label: str
    nodes: tuple[Node, ...]
    kind: str  # "stage", "segment" or "head"

    @property
    def input(self) -> Shape:
        return node_input(self.nodes[0])

    @property
    def output(self) -> Shape:
        return node_output(self.nodes[-1])

    @property
    def head(self) -> bool:
        return self.kind == "head"


def _run_label(run: list[Node]) -> str:
    first, last = name_of(run[0].path), name_of(run[-1].path)
    return first if len(run) == 1 else f"{first}…{last}"


def _makes_head(node: Node) -> bool:
    y = node_output(node)
    return y.flat or (y.h == 1 and y.w == 1 and node_input(node).hw > 1)


def _top_level(tree: Seq) -> list[Node]:
    """The model's layers, looking through plain ``sequential`` groups (which may hold
    stages)."""
    out: list[Node] = []
    for node in tree.children:
        if isinstance(node, Seq) and node_type(node) == "sequential":
            out.extend(_top_level(node))
        else:
            out.append(node)
    return out


def segments(result: Result) -> list[Segment]:
    """The network's stages in order (see Segment)."""
    if result.tree is None:
        raise CostModelError("the data flow needs the evaluated tree (evaluate without "
                             "totals_only)")
    top = _top_level(result.tree)
    last_stage = max((i for i, n in enumerate(top) if isinstance(n, Seq) and n.is_stage),
                     default=-1)
    head_at = next((i for i, n in enumerate(top)
                    if i > last_stage and not (isinstance(n, Seq) and n.is_stage)
                    and _makes_head(n)), len(top))
    out: list[Segment] = []
    run: list[Node] = []

    def close():
        if run:
            out.append(Segment(_run_label(run), tuple(run), "segment"))
            run.clear()

    for node in top[:head_at]:
        if isinstance(node, Seq) and node.is_stage:
            close()
            out.append(Segment(name_of(node.path), (node,), "stage"))
            continue
        if run and downsamples(node):
            close()
        run.append(node)
    close()
    if head_at < len(top):
        out.append(Segment("head", tuple(top[head_at:]), "head"))
    return out


def find_node(result: Result, path: str) -> Node:
    """The node (row, block or branching node) at ``path``; a clear error otherwise."""
    path = path.strip().strip(".")
    found = {n.path: n for n in nodes(result.tree) if n.path}
    if path in found:
        return found[path]
    import difflib

    close = difflib.get_close_matches(path, list(found), n=4, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else \
        " (`costmodel show` lists the layer paths)"
    raise CostModelError(f"{result.model} has no layer '{path}'{hint}", field="layer")
