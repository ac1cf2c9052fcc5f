"""The evaluator's walk: a node equal to one already walked (the copies of a repeat) is replayed
— its rows and subtree moved to its own path — and must equal walking it again."""

from __future__ import annotations

import pytest

import costmodel.engine.walk as evaluate_module
from costmodel.api import load
from costmodel.engine import Branch, Row, Seq, evaluate
from costmodel.engine.walk import _moved
from costmodel.options import Options
from costmodel.spec.loader import validate_spec
from costmodel.spec.zoo import zoo


def _rows_in_tree_order(node):
    """The tree's rows in execution order: a branch's split, its branches, then its merge."""
    if isinstance(node, Row):
        yield node
    elif isinstance(node, Seq):
        for child in node.children:
            yield from _rows_in_tree_order(child)
    elif isinstance(node, Branch):
        if node.split is not None:
            yield node.split
        for seq in node.branches:
            yield from _rows_in_tree_order(seq)
        yield node.merge


def _walked_again(spec, options):
    """The evaluation with every node walked: each layer object gets a key of its own, so no
    copy matches another."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate_module, "_content_key", lambda layer: (id(layer),))
        return evaluate(spec, options=options)


@pytest.mark.parametrize("model", [e.name for e in zoo()])
def test_replayed_copies_equal_walked_copies(model):
    spec = load(model)
    for options in (Options(), Options(scope="fvcore")):
        replayed, walked = evaluate(spec, options=options), _walked_again(spec, options)
        assert replayed.rows == walked.rows  # paths, stages, shapes and every number
        assert replayed.totals == walked.totals
        assert replayed.tree == walked.tree
        assert [r.layer for r in replayed.rows] == [r.layer for r in walked.rows]  # by content
        assert tuple(_rows_in_tree_order(replayed.tree)) == replayed.rows
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
    moved = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate_module, "_moved",
                   lambda node, old, new, rows: moved.append((old, new)) or
                   _moved(node, old, new, rows))
        result = evaluate(spec)
    assert moved == [("r.1", "r.2"), ("r.1", "r.3")]
    assert [r.stage for r in result.rows if r.type == "conv"] == \
        ["r.0", "r.0", "r.1", "r.1", "r.2", "r.2", "r.3", "r.3"]
    assert [r.path for r in result.rows if r.type == "conv"][-2:] == ["r.3.0", "r.3.2.main.0"]
    assert result.rows == _walked_again(spec, Options()).rows
