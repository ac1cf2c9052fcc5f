"""``aux``: a training-only branch (GoogLeNet's and Inception v3's auxiliary classifiers with
``aux_logits=True``): layers that tap the main path and whose parameters count, but which do
not run at inference (torchvision runs them only in training mode).

    - {type: aux, name: aux1, layers: [...]}   # where the branch taps the main path

What it costs: its layers are evaluated on the aux block's input (for their shapes and
parameters) and their rows are kept, marked training-only (``Row.training_only``): at
inference their FLOPs (both scopes), MAC and activations are 0, their parameters count — in
``Totals.params``, and apart in ``Result.aux_params``. The main path goes on with the aux
block's input unchanged. The torch builder registers the aux modules (so that
``sum(p.numel())`` counts them) and does not run them in eval mode.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from costmodel.layers.base import Layer, LayerSpec


class Aux(LayerSpec):
    """Training-only layers on the current input; the main path goes on unchanged."""

    type: Literal["aux"] = "aux"
    layers: list[Layer] = Field(min_length=1)
