"""The engine: a spec evaluated into rows, a tree and totals (``evaluate``, the walker in
``walk``), what it keeps between evaluations (``memo``), and that result's model and the walks
over its tree (``result``)."""

from costmodel.engine.memo import Memo
from costmodel.engine.result import (CATEGORY_LABELS, Branch, Dag, Node, Result, Row, Seq,
                                     Totals, name_of, nodes, rows_of)
from costmodel.engine.walk import evaluate, evaluate_layers

__all__ = ["CATEGORY_LABELS", "Branch", "Dag", "Memo", "Node", "Result", "Row", "Seq", "Totals",
           "evaluate", "evaluate_layers", "name_of", "nodes", "rows_of"]
