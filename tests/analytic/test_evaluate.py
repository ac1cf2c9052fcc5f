"""The evaluator's walk: a node equal to one already walked (the copies of a repeat) is replayed
— its rows and subtree moved to its own path — and must equal walking it again; the walks over
the result's tree; the memo an evaluation keeps; a block that reads its input's spatial size
without saying so."""

from __future__ import annotations

import pytest

from costmodel.api import load
from costmodel.engine import Branch, Memo, Row, evaluate, nodes, rows_of
from costmodel.engine.memo import SHARED
from costmodel.engine.walk import Walker
from costmodel.errors import CostModelError
from costmodel.layers import Block
from costmodel.layers.base import derived
from costmodel.layers.conv import Conv
from costmodel.spec.model import ModelSpec
from costmodel.options import Options
from costmodel.shape import Shape
from costmodel.spec.loader import validate_spec
from costmodel.spec.zoo import zoo


class WalkEverything(Memo):
    """A memo whose content keys never match: no node is replayed, every one is walked."""

    def content_key(self, block):
        return (object(),)


def _walked_again(spec, options):
    """The evaluation with every node walked (no repeat-replay)."""
    return evaluate(spec, options=options, memo=WalkEverything())


@pytest.mark.parametrize("model", [e.name for e in zoo()])
def test_replayed_copies_equal_walked_copies(model):
    spec = load(model)
    for options in (Options(), Options(scope="fvcore")):
        replayed, walked = evaluate(spec, options=options), _walked_again(spec, options)
        assert replayed.rows == walked.rows  # paths, stages, shapes and every number
        assert replayed.totals == walked.totals
        assert replayed.tree == walked.tree
        assert [r.layer for r in replayed.rows] == [r.layer for r in walked.rows]  # by content
        assert tuple(rows_of(replayed.tree)) == replayed.rows
        assert len({r.path for r in replayed.rows}) == len(replayed.rows)


def test_a_repeat_is_replayed_with_its_stage_moved():
    """A repeat of stages: each copy's rows carry the copy's own stage path; the copies after
    the second are replays of the second (the first has another input: 4 channels, not 8)."""
    spec = validate_spec({
        "name": "stages", "input": 16, "in_channels": 4,
        "layers": [{"type": "repeat", "name": "r", "n": 4,
                    "layers": [{"type": "stage", "layers": [
                        {"type": "conv", "out": 8}, {"type": "bn"},
                        {"type": "residual", "layers": [{"type": "conv", "out": 8}]}]}]}],
    }, "stages.yaml")
    walker = Walker(spec.context(), Options(), memo=Memo())
    walker.walk(spec.layers, Shape(4, 16, 16))
    assert walker.copied == 2 * 4  # r.2 and r.3: conv, bn, conv, add each
    everything = Walker(spec.context(), Options(), memo=WalkEverything())
    everything.walk(spec.layers, Shape(4, 16, 16))
    assert everything.copied == 0 and everything.rows == walker.rows
    result = evaluate(spec)
    assert list(result.rows) == walker.rows
    assert [r.stage for r in result.rows if r.type == "conv"] == \
        ["r.0", "r.0", "r.1", "r.1", "r.2", "r.2", "r.3", "r.3"]
    assert [r.path for r in result.rows if r.type == "conv"][-2:] == ["r.3.0", "r.3.2.main.0"]
    assert result.rows == _walked_again(spec, Options()).rows


# --- the walks over the tree ------------------------------------------------------------------

@pytest.mark.parametrize("model", ["shufflenet-v2", "googlenet", "skipnet-cifar", "espnet"])
def test_nodes_yields_every_node_once_each_before_what_it_holds(model):
    result = evaluate(load(model))
    every = list(nodes(result.tree))
    assert len({id(n) for n in every}) == len(every)
    assert tuple(n for n in every if type(n) is Row) == result.rows == tuple(rows_of(result.tree))
    assert every[0] is result.tree
    seen = {""}
    for n in every[1:]:  # the node its path lies in came before it
        assert n.path.rpartition(".")[0] in seen, n.path
        seen.add(n.path)
    branches = [n for n in every if type(n) is Branch]
    assert branches
    ends = {id(r) for b in branches for r in (b.split, b.merge) if r is not None}
    without = list(nodes(result.tree, ends=False))
    assert [n for n in every if id(n) not in ends] == without


# --- the memo ---------------------------------------------------------------------------------

def test_an_evaluation_given_a_memo_keeps_its_expansions_there_not_in_the_shared_one():
    spec = load("mobilenet-v2")
    before = len(SHARED)
    memo = Memo()
    result = evaluate(spec, memo=memo, input=160)
    assert len(memo) > 0 and len(SHARED) == before
    kept = len(memo)
    assert evaluate(spec, memo=memo, input=160) == result
    assert len(memo) == kept  # the second evaluation found everything there
    memo.clear()
    assert len(memo) == 0
    assert evaluate(spec, memo=memo, input=160) == result and len(memo) == kept


def test_a_memo_over_its_limit_is_emptied_when_the_next_evaluation_starts():
    small, big = load("mobilenet"), load("mobilenet-v2")
    alone = Memo()
    evaluate(small, memo=alone)
    memo = Memo(limit=10)
    evaluate(big, memo=memo)
    assert len(memo) > 10  # nothing is dropped during an evaluation
    evaluate(small, memo=memo)
    assert len(memo) == len(alone)  # what the big one left was dropped first


def test_a_memo_that_is_not_a_memo_is_refused():
    with pytest.raises(CostModelError, match="memo"):
        evaluate(load("mobilenet"), memo={})


# --- a block's expansion may not read its input's spatial size unless it says so -------------

def _whole_map_pool(spatial: bool) -> type[Block]:
    """A block that reads its input's height: a depthwise-like conv whose kernel spans the map.
    No ``type``: it stays out of the spec language's union of layer types."""

    class WholeMapPool(Block):
        spatial_expansion = spatial

        def expand(self, x, ctx):
            return [derived(Conv, name="pool", out=x.c, kernel=x.h, padding=0)]

    return WholeMapPool


def _spec_of(block: Block) -> ModelSpec:
    return ModelSpec.model_construct(name="t", input=8, in_channels=4, layers=[block])


def test_a_block_that_reads_the_spatial_size_without_saying_so_fails_loudly():
    cls = _whole_map_pool(spatial=False)
    for totals_only in (False, True):
        with pytest.raises(TypeError, match=r"WholeMapPool.expand\(\) reads the input's spatial "
                           r"size \(x.h\).*set `spatial_expansion = True` on WholeMapPool"):
            evaluate(_spec_of(derived(cls)), totals_only=totals_only, memo=Memo())


def test_a_block_that_says_so_gets_the_whole_shape_at_every_input():
    spec, memo = _spec_of(derived(_whole_map_pool(spatial=True))), Memo()
    for side in (8, 16, 8):
        result = evaluate(spec, input=side, memo=memo)
        assert result.output == Shape(4, 1, 1)
        assert result.totals.flops == 4 * 4 * side * side  # a 4→4 conv, kernel side×side


@pytest.mark.parametrize("read", [
    lambda x: x.w, lambda x: x.hw, lambda x: x.numel, lambda x: x.as_list(),
    lambda x: tuple(x), lambda x: x[1], lambda x: x == Shape(4, 8, 8), lambda x: hash(x),
    lambda x: f"{x}",
], ids=["w", "hw", "numel", "as_list", "unpack", "index", "compare", "hash", "print"])
def test_every_way_of_reading_the_spatial_size_is_refused(read):
    class Reads(Block):
        def expand(self, x, ctx):
            read(x)
            return [derived(Conv, out=x.c, kernel=1)]

    with pytest.raises(TypeError, match="spatial_expansion = True"):
        evaluate(_spec_of(derived(Reads)), memo=Memo())
