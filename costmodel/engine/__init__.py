"""The engine: a spec evaluated into rows, a tree and totals (``evaluate``), and that result's
model (``result``)."""

from costmodel.engine.result import (CATEGORY_LABELS, Branch, Node, Result, Row, Seq, Totals,
                                     name_of)
from costmodel.engine.walk import evaluate, evaluate_layers

__all__ = ["CATEGORY_LABELS", "Branch", "Node", "Result", "Row", "Seq", "Totals", "evaluate",
           "evaluate_layers", "name_of"]
