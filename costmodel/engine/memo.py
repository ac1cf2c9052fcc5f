"""What the walker keeps from one evaluation to the next (``Memo``), and the channels-only view
of a shape that a block's ``expand`` gets where its expansion is memoized on channels.

Three tables, all keyed by the ``id()`` of spec objects. Specs are immutable and every entry
holds the object it is keyed by, so an id cannot be reused while its entry exists, and a hit
is always right:

- the expansions: per context, a block's input channels (its whole input shape where the block
  sets ``spatial_expansion``) → the layers it expands into. Repeated blocks and
  re-evaluations (compare, sweeps over resolutions) then skip building the expansion's
  Pydantic layers again;
- the plans: a layer list → (name, layer, kind) for each of its layers, names checked unique,
  and how many of them are primitives;
- the content keys: a block → what it is, its name aside (the walker's repeat-replay, see
  ``_Walker.composite`` in costmodel/engine/walk.py, finds the copies of a repeat by them).

A Memo is bounded: when an evaluation starts (``begin``) with a table over ``limit`` entries,
the memo is emptied (what it held is rebuilt on demand). Nothing is dropped during an
evaluation, whose own entries the work limits bound (costmodel.limits: LAYERS, NESTING), so
nothing an evaluation keys by id can be freed, and its id reused, while the evaluation runs.
"""

from __future__ import annotations

from typing import Any

from costmodel.errors import ShapeError
from costmodel.layers import Block, Branching, Context, LayerSpec, Primitive
from costmodel.layers.aux import Aux
from costmodel.layers.graph import Graph
from costmodel.shape import Shape

PRIMITIVE, BRANCHING, BLOCK = "primitive", "branching", "block"
GRAPH, AUX = "graph", "aux"
"""The kinds of layer the walker tells apart (a plan's third column): a graph is the general
case of a branching node (nodes wired by name), an aux block a training-only branch."""

Plan = tuple[tuple[tuple[str, LayerSpec, str], ...], int]
"""((name, layer, kind) for each layer of a list, how many of them are primitives)."""


class Memo:
    """Block expansions, layer-list plans and content keys, kept across evaluations (see the
    module's docstring). ``costmodel.engine.walk.evaluate`` uses one process-wide instance,
    ``SHARED``, unless it is given another: a test, or a long-running caller that wants its
    own bound or to drop everything at a moment of its choosing, owns one."""

    def __init__(self, limit: int = 200_000):
        self.limit = limit
        """Entries one table may hold when an evaluation starts (the expansions of every
        context count together)."""
        self._expansions: dict[Context, dict] = {}
        self._expanded = 0  # entries in all the expansion tables
        self._plans: dict[int, tuple[list, Plan]] = {}
        self._keys: dict[int, tuple[LayerSpec, tuple]] = {}

    def __len__(self) -> int:
        """Entries held, all tables together."""
        return self._expanded + len(self._plans) + len(self._keys)

    def clear(self) -> None:
        self._expansions.clear()
        self._expanded = 0
        self._plans.clear()
        self._keys.clear()

    def begin(self, ctx: Context) -> dict:
        """The start of an evaluation in context ``ctx``: the memo is emptied if a table is
        over its limit; returns the expansion table of ``ctx``, which ``expanded`` fills."""
        if max(self._expanded, len(self._plans), len(self._keys)) > self.limit:
            self.clear()
        table = self._expansions.get(ctx)
        if table is None:
            table = self._expansions[ctx] = {}
        return table

    def expanded(self, table: dict, key: tuple, block: Block, layers: list[LayerSpec]
                 ) -> tuple[Block, list[LayerSpec]]:
        """Keeps ``block``'s expansion ``layers`` under ``key`` in ``table`` (from ``begin``);
        the entry holds the block, whose id is in the key."""
        entry = table[key] = (block, layers)
        self._expanded += 1
        return entry

    def plan(self, layers: list[LayerSpec], prefix: str) -> Plan:
        """The plan of a layer list (see ``Plan``), names checked unique — once per list: spec
        lists and memoized expansions live on, so this runs once per list, not per evaluation."""
        hit = self._plans.get(id(layers))
        if hit is not None and hit[0] is layers:
            return hit[1]
        plan, seen = [], set()
        for i, layer in enumerate(layers):
            name = layer.name or str(i)
            if name in seen:
                raise ShapeError(f"two layers are named '{name}' here",
                                 path=f"{prefix}.{name}" if prefix else name, field="name")
            seen.add(name)
            if isinstance(layer, Primitive):
                kind = PRIMITIVE
            elif isinstance(layer, Branching):
                kind = BRANCHING
            elif isinstance(layer, Block):
                kind = BLOCK
            elif isinstance(layer, Graph):
                kind = GRAPH
            elif isinstance(layer, Aux):
                kind = AUX
            else:  # pragma: no cover - the spec's union admits nothing else
                raise TypeError(f"not a layer: {layer!r}")
            plan.append((name, layer, kind))
        entry = (tuple(plan), sum(k is PRIMITIVE for *_, k in plan))
        self._plans[id(layers)] = (layers, entry)
        return entry

    def content_key(self, block: LayerSpec) -> tuple:
        """What a block is, its name aside: its class and field values (nested lists and layers
        by identity: specs are immutable, and the entry keeps them alive). A repeat's copies,
        which differ only in name, share one key."""
        hit = self._keys.get(id(block))
        if hit is not None and hit[0] is block:
            return hit[1]
        parts: list = [type(block)]
        for k, v in block.__dict__.items():
            if k != "name":
                try:
                    hash(v)
                except TypeError:
                    v = ("id", id(v))
                parts.append((k, v))
        key = tuple(parts)
        self._keys[id(block)] = (block, key)
        return key


SHARED = Memo()
"""The memo ``evaluate`` uses unless it is given one."""


class ChannelsOnly:
    """The input shape as ``Block.expand`` sees it where the expansion is memoized on the
    input's channels (a block without ``spatial_expansion``): ``c`` and ``flat`` read as usual;
    anything that reads the spatial size (``h``, ``w``, ``hw``, ``numel``, unpacking, comparing,
    printing) raises, naming the block and the fix, instead of the memo silently handing the
    expansion made for one resolution to another."""

    __slots__ = ("c", "flat", "_block")

    def __init__(self, x: Shape, block: type):
        self.c = x.c
        self.flat = x.flat
        self._block = block

    def _refuse(self, what: str) -> TypeError:
        cls = self._block.__name__
        return TypeError(
            f"{cls}.expand() reads the input's {what}, but its expansion is memoized on the "
            f"input's channels only: set `spatial_expansion = True` on {cls} (see "
            "costmodel.layers.base.Block) so that the walker gives it the whole shape")

    def __getattr__(self, name: str) -> Any:  # only for what the slots do not hold
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._refuse(f"spatial size (x.{name})")

    def __iter__(self):
        raise self._refuse("spatial size (unpacking the shape)")

    def __getitem__(self, i: Any):
        raise self._refuse("spatial size (x[...])")

    def __eq__(self, other: object) -> bool:
        raise self._refuse("spatial size (comparing shapes)")

    def __hash__(self) -> int:
        raise self._refuse("spatial size (hashing the shape)")

    def __str__(self) -> str:
        raise self._refuse("spatial size (printing the shape)")

    def __repr__(self) -> str:
        return f"ChannelsOnly(c={self.c}, flat={self.flat})"
