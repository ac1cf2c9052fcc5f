"""The library API the CLI is a thin layer over: load → evaluate → compare; and a model made of
a list of layers, for a formula's or a test's one block (``layers_spec``, ``evaluate_layers``)."""

from __future__ import annotations

import os
from pathlib import Path

from costmodel.engine import Result, evaluate
from costmodel.engine.walk import evaluate_layers
from costmodel.errors import CostModelError
from costmodel.layers.base import MAX_MULTIPLIER, check_count, check_multiplier
from costmodel.options import Options
from costmodel.spec.loader import layers_spec
from costmodel.spec.model import ModelSpec
from costmodel.spec.zoo import resolve, zoo

__all__ = ["load", "evaluate_model", "compare", "compare_frame", "layers_spec",
           "evaluate_layers", "zoo", "check_multiplier", "check_count", "MAX_MULTIPLIER"]
"""``zoo`` lists the built-in models; ``check_multiplier``, ``check_count`` and
``MAX_MULTIPLIER`` are the library's own checks of a multiplier (width, depth, resolution) and
of a count, which the CLI applies to its options."""


def load(model: str | Path | ModelSpec) -> ModelSpec:
    """A zoo name (``mobilenet-0.5``), a spec file path, or a ModelSpec → a validated ModelSpec."""
    if isinstance(model, ModelSpec):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise CostModelError(f"a model is a zoo name, a spec file path or a ModelSpec, got "
                             f"{type(model).__name__}", field="model")
    return resolve(os.fspath(model))


def evaluate_model(model: str | Path | ModelSpec, *, input=None, width: float | None = None,
                   depth: float | None = None, num_classes: int | None = None,
                   options: Options = Options()) -> Result:
    """Load and evaluate one model: per-layer rows and totals."""
    return evaluate(load(model), input=input, width=width, depth=depth,
                    num_classes=num_classes, options=options)


def compare(models, *, input=None, width: float | None = None, depth: float | None = None,
            num_classes: int | None = None, options: Options = Options()) -> list[Result]:
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


def compare_frame(models, **kwargs):
    """``compare`` as a pandas DataFrame, one row per model (raw integers)."""
    import pandas as pd

    from costmodel.views import compare_records

    return pd.DataFrame(compare_records(compare(models, **kwargs)))
