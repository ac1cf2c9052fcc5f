"""Walks a spec into per-layer rows and totals.

The evaluator knows five kinds of layer and nothing else about any particular type: a
Primitive (one cost, one row), a Block (expands into layers), a Branching node (branches +
merge), a Graph (the general case: nodes wired by name, each merging earlier nodes' outputs)
and an Aux block (training-only layers: params counted, nothing run at inference).
What it keeps between evaluations (expansions, plans, content keys) is a ``Memo``
(costmodel/engine/memo.py); the repeat-replay is explained at ``Walker.composite``.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import ValidationError

from costmodel import limits
from costmodel.engine.memo import BLOCK, BRANCHING, GRAPH, PRIMITIVE, SHARED, ChannelsOnly, Memo
from costmodel.engine.result import Branch, Dag, Node, Result, Row, Seq, Totals, _row
from costmodel.errors import CostModelError, LimitError, ShapeError
from costmodel.layers import Block, Branching, Context, Cost, LayerSpec, Primitive
from costmodel.layers.aux import Aux
from costmodel.layers.base import check_count, check_multiplier
from costmodel.layers.graph import INPUT, Graph
from costmodel.layers.merge import MERGES, channel_split
from costmodel.limits import INPUT_SIDE
from costmodel.options import Options, parse_input
from costmodel.shape import Shape
from costmodel.spec.model import ModelSpec


def _moved(node: Node, old: str, new: str, rows: list[Row]) -> Node:
    """A copy of the subtree ``node`` (walked at path ``old``) at path ``new``: every path, and
    every stage inside it, re-rooted; its rows, in execution order, appended to ``rows`` (the
    repeat-replay: see ``Walker.composite``)."""
    n = len(old)
    inside = old + "."

    def row(r: Row) -> Row:
        stage = r[3]
        if stage is not None and (stage == old or stage.startswith(inside)):
            # a stage that is the node itself or lies inside it moves with it
            moved = _row((new + r[0][n:], r[1], r[2], new + stage[n:]) + r[4:])
        else:
            moved = _row((new + r[0][n:],) + r[1:])
        rows.append(moved)
        return moved

    def move(node: Node) -> Node:  # in the walker's order: split, branches, merge
        if type(node) is Row:
            return row(node)
        if type(node) is Seq:
            return Seq(new + node.path[n:], tuple(map(move, node.children)), node.layer)
        if type(node) is Dag:  # each node's merge, then its layers
            merges, seqs = [], []
            for merge, seq in zip(node.merges, node.seqs):
                merges.append(None if merge is None else row(merge))
                seqs.append(move(seq))
            return Dag(new + node.path[n:], node.names, node.inputs, tuple(merges), tuple(seqs),
                       node.layer)
        split = None if node.split is None else row(node.split)
        branches = tuple(map(move, node.branches))
        return Branch(new + node.path[n:], node.names, branches, row(node.merge), split,
                      node.layer)

    return move(node)


_LOOKAHEAD = 20_000
"""Rows a full walk copies before it checks the whole network with a lean walk (see Walker):
more than any network of the zoo (SkipNet-CIFAR has 600 rows), and well under a second."""


class Walker:
    """Walks layers in execution order, summing totals; unless ``lean``, it also keeps the
    rows and the tree (a sweep needs only the totals). ``evaluate`` is the way to use it; its
    expansions, plans and content keys come from ``memo``.

    It bounds its own work (``costmodel.limits``), the same in both modes: ``count`` is the rows
    the walk has produced or is about to (a list's primitives are counted when the list is
    entered, a replayed node's rows before they are copied), checked against LAYERS each time
    it grows, so repeats nested fifty deep stop at the limit instead of after 2^50 rows; ``depth``
    (an argument: cheaper than an attribute to keep) is the number of blocks and branching
    nodes around a layer list, checked against
    NESTING, which keeps the walk's recursion well inside Python's stack. A replayed node is
    not checked again: the copies of a repeat are as deep as the first; a node shared by two
    depths (a spec built in Python) may reach NESTING levels below its own, which the stack
    still holds, and ``walk`` turns a RecursionError into a LimitError in any case.

    A lean walk replays a node in O(1), so it reaches a limit after work linear in the spec; a
    full walk copies every replayed row, so it would build up to a million rows before refusing
    repeats nested fifty deep. Once it has copied _LOOKAHEAD rows, it therefore walks the whole
    network lean first (once), which refuses what is over a limit at once, and goes on.
    """

    def __init__(self, ctx: Context, options: Options, lean: bool = False,
                 memo: Memo = SHARED):
        self.ctx = ctx
        self.options = options
        self.lean = lean
        self.memo = memo
        self.expansions = memo.begin(ctx)
        self.plan = memo.plan  # bound once: both run for every list and block walked
        self.content_key = memo.content_key
        self.paper = options.scope == "paper"
        self.per_madd = options.flops_per_madd
        self.bn_params = options.bn_params
        self.batch = options.batch
        self.rows: list[Row] = []
        self.flops = self.params = self.mac = self.peak = 0
        self.aux_params = 0  # the training-only part of params
        self.training_only = False  # inside an aux block
        self.repeated: dict[tuple, tuple] = {}
        self.aux_repeated: dict[tuple, tuple] = {}  # the replays inside aux blocks (see aux)
        # the limits are read once per evaluation (each read looks at the environment)
        self.max_count = limits.LAYERS.value  # read once per evaluation
        self.max_depth = limits.NESTING.value
        self.count = 0
        self.copied = 0  # rows copied by replays (full walk)
        self.root: tuple | None = None  # what walk() walks, until the lean walk ahead is done

    def walk(self, layers: list[LayerSpec], x: Shape) -> tuple[Shape, Seq | None]:
        """The model's layers from input ``x``."""
        self.root = (layers, x)
        try:
            return self.layers(layers, x, "", None)
        except RecursionError:  # only where NESTING was raised past what the stack holds
            raise LimitError(f"blocks are nested more deeply than Python's stack allows "
                             f"({limits.NESTING.variable} is set to {self.max_depth:,} levels)"
                             ) from None

    def layers(self, layers: list[LayerSpec], x: Shape, prefix: str, stage: str | None,
               owner: LayerSpec | None = None, depth: int = 0) -> tuple[Shape, Seq | None]:
        plan, primitives = self.plan(layers, prefix)
        count = self.count = self.count + primitives
        if count > self.max_count:
            raise limits.LAYERS.exceeded(f"{count:,} so far", path=prefix or None)
        children: list[Node] = []
        for name, layer, kind in plan:
            path = f"{prefix}.{name}" if prefix else name
            try:
                if kind is PRIMITIVE:
                    x, node = self.primitive(layer, x, path, stage)
                else:
                    x, node = self.composite(layer, kind, x, path, stage, depth)
            except CostModelError as e:  # a shape, or a limit a block checks (repeat's copies)
                if e.path is None:
                    e.path = path
                raise
            children.append(node)
        return x, (None if self.lean else Seq(prefix, tuple(children), owner))

    def composite(self, layer: LayerSpec, kind: str, x: Shape, path: str,
                  stage: str | None, depth: int) -> tuple[Shape, Node | None]:
        """A block or a branching node, walked — or replayed.

        The repeat-replay: a node equal to one already walked in this evaluation, on the same
        input and in the same stage (the copies of a repeat, whose layers differ only in name),
        is not walked again. Its cost is a function of its fields, its input and the context,
        all the same, so its totals are added again (``replay``) and its rows and subtree are
        the first copy's, moved to its own path (``_moved``: paths re-rooted, and stages that
        lie inside it). "Equal" is the memo's content key (``Memo.content_key``: class and
        field values, nested layers by identity); the key adds the input shape and the stage
        the node is in, unless it is a stage itself. This is what makes a repeat of n copies
        cost one walk plus n-1 copies, and keeps the work limits cheap to check (a lean walk
        replays in O(1)). The entry holds the layer, so the ids in its key stay its own.
        """
        inner = path if kind is BLOCK and layer.stage else stage
        key = (self.content_key(layer), x, None if inner is path else stage)
        hit = self.repeated.get(key)
        if hit is not None:
            return self.replay(hit, path)
        depth += 1
        if depth > self.max_depth:
            raise limits.NESTING.exceeded(f"{depth:,} here", path=path)
        flops, params, mac, peak, count = self.flops, self.params, self.mac, self.peak, self.count
        aux_params = self.aux_params
        self.peak = 0
        if kind is BRANCHING:
            out, node = self.branching(layer, x, path, stage, depth)
        elif kind is BLOCK:
            out, node = self.layers(self.expand(layer, x), x, path, inner, layer, depth)
        elif kind is GRAPH:
            out, node = self.graph(layer, x, path, stage, depth)
        else:  # AUX
            out, node = self.aux(layer, x, path, stage, depth)
        # its totals and its rows (a replay adds them too)
        self.repeated[key] = (out, path, node, self.flops - flops, self.params - params,
                              self.mac - mac, self.peak, self.count - count, layer,
                              self.aux_params - aux_params)
        if peak > self.peak:
            self.peak = peak
        return out, node

    def replay(self, hit: tuple, path: str) -> tuple[Shape, Node | None]:
        out, first, node, flops, params, mac, peak, count, _, aux_params = hit
        self.count += count  # checked before anything is copied
        if self.count > self.max_count:
            raise limits.LAYERS.exceeded(f"{self.count:,} so far", path=path)
        self.flops += flops
        self.params += params
        self.aux_params += aux_params
        self.mac += mac
        if peak > self.peak:
            self.peak = peak
        if self.lean:
            return out, None
        self.copied += count
        if self.copied > _LOOKAHEAD and self.root is not None:
            root, self.root = self.root, None
            Walker(self.ctx, self.options, True, self.memo).walk(*root)  # raises if over a limit
        return out, _moved(node, first, path, self.rows)

    def expand(self, block: Block, x: Shape) -> list[LayerSpec]:
        # Expansions depend on the input's channels and the context, not on its spatial size
        # (Block's contract), so a sweep over resolutions reuses them (keyed on the whole shape,
        # a sweep of MobileNet V2 over widths × inputs ran 2.5× slower). A block without
        # spatial_expansion therefore expands from a ChannelsOnly view of its input, which
        # refuses to be read for its spatial size: the contract cannot be broken silently.
        spatial = block.spatial_expansion
        key = (id(block), x) if spatial else (id(block), x.c, x.flat)
        hit = self.expansions.get(key)
        if hit is None:
            try:
                layers = block.expand(x if spatial else ChannelsOnly(x, type(block)), self.ctx)
            except ValidationError as e:  # the block's sizes, derived from its input, are bad
                err = e.errors(include_url=False)[0]
                field = ".".join(str(k) for k in err["loc"] if not str(k).startswith(("literal",
                                                                                     "constr")))
                raise ShapeError(f"on a {x} input it would make a layer with {field} "
                                 f"{err.get('input')!r}: {err['msg']}") from None
            hit = self.memo.expanded(self.expansions, key, block, layers)
        return hit[1]

    def add(self, path: str, type_: str, category: str, stage: str | None,
            inputs: tuple[Shape, ...], cost: Cost, layer: LayerSpec | None = None) -> Row | None:
        if self.training_only:
            return self.add_training_only(path, type_, category, stage, inputs, cost, layer)
        flops = (cost.flops if self.paper else cost.fvcore_flops) * self.per_madd
        params = cost.params if (self.bn_params or category != "bn") else 0
        mac = cost.mac
        n = cost.out.numel
        batch = self.batch
        if batch != 1:  # the hot path: batch 1 (the default) does no more than this test
            # the feature maps are read and written once per image, the weights once
            flops *= batch
            mac = batch * (mac - cost.weight_mac) + cost.weight_mac
            n *= batch
        self.flops += flops
        self.params += params
        self.mac += mac
        if n > self.peak:
            self.peak = n
        if self.lean:
            return None
        row = _row((path, type_, category, stage, inputs, cost.out, flops, params, mac, layer,
                    batch, False))
        self.rows.append(row)
        return row

    def add_training_only(self, path: str, type_: str, category: str, stage: str | None,
                          inputs: tuple[Shape, ...], cost: Cost, layer: LayerSpec | None
                          ) -> Row | None:
        """A layer of an aux block: its params count (and apart, in aux_params); at inference
        it does not run: no FLOPs, no MAC, no activation (the peak is the main path's)."""
        params = cost.params if (self.bn_params or category != "bn") else 0
        self.params += params
        self.aux_params += params
        if self.lean:
            return None
        row = _row((path, type_, category, stage, inputs, cost.out, 0, params, 0, layer,
                    self.batch, True))
        self.rows.append(row)
        return row

    def primitive(self, layer: Primitive, x: Shape, path: str,
                  stage: str | None) -> tuple[Shape, Row | None]:
        cost = layer.cost(x, self.ctx)
        if self.lean:  # the category only matters to rows and to excluding BN params
            return cost.out, self.add(path, "", layer.category, stage, (x,), cost)
        return cost.out, self.add(path, layer.label(), layer.category_of(x, self.ctx), stage,
                                  (x,), cost, layer)

    def branching(self, node: Branching, x: Shape, path: str, stage: str | None,
                  depth: int) -> tuple[Shape, Branch | None]:
        names, branches, merge, split = node.branching()
        self.count += 1 if split is None else 2  # the merge and split rows (checked in layers)
        split_row = None
        if split is not None:
            try:
                inputs, cost = channel_split(x, split)
            except ShapeError as e:
                e.path = e.path or path
                raise
            split_row = self.add(f"{path}.split", "channel_split", "other", stage, (x,), cost)
        else:
            inputs = [x] * len(branches)
        outs, seqs = [], []
        for n, b, xi in zip(names, branches, inputs):
            out, seq = self.layers(b, xi, f"{path}.{n}", stage, None, depth)
            outs.append(out)
            seqs.append(seq)
        try:
            cost = MERGES[merge](outs)
        except ShapeError as e:
            e.path = e.path or path
            raise
        merge_row = self.add(f"{path}.{merge}", merge, "other", stage, tuple(outs), cost)
        if self.lean:
            return cost.out, None
        return cost.out, Branch(path, tuple(names), tuple(seqs), merge_row, split_row, node)


    def graph(self, graph: Graph, x: Shape, path: str, stage: str | None,
              depth: int) -> tuple[Shape, Dag | None]:
        """A graph's nodes in order, over a table of their outputs by name: each node's
        inputs merged (one merge row, ``<path>.<node>.<merge>``), then its layers (at
        ``<path>.<node>``). The wiring was checked when the spec was validated."""
        wiring = graph.wiring
        self.count += sum(merge is not None for _, _, merge, _ in wiring)  # checked in layers
        outputs = {INPUT: x}
        merges: list[Row | None] = []
        seqs: list[Seq | None] = []
        for name, inputs, merge, layers in wiring:
            where = f"{path}.{name}"
            if merge is None:
                xi = outputs[inputs[0]]
                merges.append(None)
            else:
                xs = tuple(outputs[i] for i in inputs)
                try:
                    cost = MERGES[merge](list(xs))
                except ShapeError as e:
                    e.path = e.path or where
                    raise
                merges.append(self.add(f"{where}.{merge}", merge, "other", stage, xs, cost))
                xi = cost.out
            outputs[name], seq = self.layers(layers, xi, where, stage, None, depth)
            seqs.append(seq)
        out = outputs[wiring[-1][0]]  # the output is the last node (Graph checks it)
        if self.lean:
            return out, None
        return out, Dag(path, tuple(w[0] for w in wiring), tuple(w[1] for w in wiring),
                        tuple(merges), tuple(seqs), graph)

    def aux(self, aux: Aux, x: Shape, path: str, stage: str | None,
            depth: int) -> tuple[Shape, Seq | None]:
        """An aux block's layers on ``x``, training-only (``add_training_only``); the main path
        goes on with ``x``. Replays never cross the aux block's edge: a block inside it costs
        other than the same block outside, so inside it the walker keeps a table of its own."""
        outer = self.training_only, self.repeated
        self.training_only, self.repeated = True, self.aux_repeated
        try:
            _, seq = self.layers(aux.layers, x, path, stage, aux, depth)
        finally:
            self.training_only, self.repeated = outer
        return x, seq


def evaluate(spec: ModelSpec, *, input: str | int | tuple[int, int] | None = None,
             width: float | None = None, depth: float | None = None,
             num_classes: int | None = None, options: Options = Options(),
             totals_only: bool = False, memo: Memo | None = None) -> Result:
    """Evaluate ``spec`` at an input size (default: the spec's) into rows and totals; ``width``
    and ``depth`` override the spec's multipliers. ``totals_only`` skips the rows and the tree
    (for sweeps: the Result then has no rows). ``memo`` keeps expansions between evaluations
    (default: the process-wide ``costmodel.engine.memo.SHARED``; see Memo)."""
    if not isinstance(spec, ModelSpec):
        raise CostModelError(f"evaluate() takes a ModelSpec, got {type(spec).__name__} "
                             "(costmodel.api.evaluate_model also takes a name or a path)",
                             field="spec")
    if not isinstance(options, Options):
        raise CostModelError(f"options must be a costmodel.options.Options, got "
                             f"{type(options).__name__}", field="options")
    if input is not None:
        hw = parse_input(input)
    else:  # the spec's own; its limit is checked here, where it may have changed since loading
        hw = spec.input_hw
        INPUT_SIDE.check(max(hw), file=spec.file, field="input")
    ctx = spec.context()
    if width is not None:
        ctx = replace(ctx, width=check_multiplier(width, "width"))
    if depth is not None:
        ctx = replace(ctx, depth=check_multiplier(depth, "depth"))
    if num_classes is not None:
        ctx = replace(ctx, num_classes=check_count(num_classes, "num_classes"))
    if memo is not None and not isinstance(memo, Memo):
        raise CostModelError(f"memo must be a costmodel.engine.memo.Memo, got "
                             f"{type(memo).__name__}", field="memo")
    walker = Walker(ctx, options, totals_only, SHARED if memo is None else memo)
    try:
        out, tree = walker.walk(spec.layers, Shape(spec.in_channels, hw[0], hw[1]))
    except CostModelError as e:
        e.file = e.file or spec.file
        raise
    return Result(model=spec.name, input=hw, in_channels=spec.in_channels,
                  num_classes=ctx.num_classes, width=ctx.width, depth=ctx.depth, options=options,
                  rows=tuple(walker.rows), tree=tree,
                  totals=Totals(walker.flops, walker.params, walker.mac, walker.peak), output=out,
                  aux_params=walker.aux_params)


def evaluate_layers(layers: list[dict], *, input: int | tuple[int, int], in_channels: int = 3,
                    name: str = "layers", options: Options = Options(),
                    **model: object) -> Result:
    """Evaluate a throwaway model made of ``layers`` (see ``layers_spec``)."""
    from costmodel.spec.loader import layers_spec  # validation: only throwaway specs need it

    return evaluate(layers_spec(layers, input=input, in_channels=in_channels, name=name,
                                **model), options=options)
