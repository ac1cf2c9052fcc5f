"""The library API the CLI is a thin layer over: load → evaluate → compare; and a model made of
a list of layers, for a formula's or a test's one block (``layers_spec``, ``evaluate_layers``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Union

from costmodel.engine import Result, evaluate
from costmodel.engine.walk import evaluate_layers
from costmodel.errors import CostModelError
from costmodel.layers.base import MAX_MULTIPLIER, check_count, check_multiplier
from costmodel.options import Options
from costmodel.spec.loader import layers_spec
from costmodel.spec.model import ModelSpec
from costmodel.spec.zoo import zoo
from costmodel.targets import resolve_model

if TYPE_CHECKING:  # pandas is imported by compare_frame alone, when it is called
    import pandas as pd

__all__ = ["load", "evaluate_model", "compare", "compare_frame", "Options", "Result",
           "ModelSpec", "CostModelError", "ModelRef", "InputSize", "layers_spec",
           "evaluate_layers", "zoo", "check_multiplier", "check_count", "MAX_MULTIPLIER"]
"""Everything a user of the library needs is importable from here: the functions, the
``Options`` they take, the ``Result`` they return, the ``ModelSpec`` ``load`` returns and the
``CostModelError`` every bad input raises. ``zoo`` lists the built-in models;
``check_multiplier``, ``check_count`` and ``MAX_MULTIPLIER`` are the library's own checks of a
multiplier (width, depth, resolution) and of a count, which the CLI applies to its options."""

ModelRef = Union[str, "os.PathLike[str]", ModelSpec]
"""A model as the functions take it: a zoo name (``mobilenet-0.5``), a spec file path, a
Python target (``mypkg.nets:MyNet``, ``nets.py:MyNet(width=0.5)``: see ``costmodel.targets``)
or a ModelSpec already loaded."""

InputSize = Union[str, int, tuple[int, int], None]
"""An input size: ``32``, ``"224x160"`` or ``(224, 160)`` as H×W; None for the spec's own."""


def load(model: ModelRef, *, input: InputSize = None) -> ModelSpec:
    """A zoo name (``mobilenet-0.5``), a spec file path, a Python target or a ModelSpec → a
    validated ModelSpec. ``input`` matters to a target alone: it is traced at that size (224
    when None), since a module's shapes need not follow from its first input's."""
    if isinstance(model, ModelSpec):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise CostModelError(f"a model is a zoo name, a spec file path, a Python target or a "
                             f"ModelSpec, got {type(model).__name__}", field="model")
    return resolve_model(os.fspath(model), input)  # a target is the only path to torch


def evaluate_model(model: ModelRef, *, input: InputSize = None, width: float | None = None,
                   depth: float | None = None, num_classes: int | None = None,
                   options: Options = Options()) -> Result:
    """Load and evaluate one model: per-layer rows and totals."""
    return evaluate(load(model, input=input), input=input, width=width, depth=depth,
                    num_classes=num_classes, options=options)


def compare(models: Iterable[ModelRef], *, input: InputSize = None, width: float | None = None,
            depth: float | None = None, num_classes: int | None = None,
            options: Options = Options()) -> list[Result]:
    """Evaluate several models with the same settings."""
    if isinstance(models, (str, os.PathLike, ModelSpec)):  # not its characters, one by one
        raise CostModelError("compare takes a list of models; use evaluate_model for one",
                             field="models")
    try:
        models = list(models)
    except TypeError:
        raise CostModelError(f"compare takes a list of models, got {type(models).__name__}",
                             field="models") from None
    return [evaluate_model(m, input=input, width=width, depth=depth, num_classes=num_classes,
                           options=options) for m in models]


def compare_frame(models: Iterable[ModelRef], *, input: InputSize = None,
                  width: float | None = None, depth: float | None = None,
                  num_classes: int | None = None, options: Options = Options()) -> pd.DataFrame:
    """``compare`` as a pandas DataFrame, one row per model (raw integers)."""
    import pandas as pd

    from costmodel.views import compare_records

    results = compare(models, input=input, width=width, depth=depth, num_classes=num_classes,
                      options=options)
    return pd.DataFrame(compare_records(results))
