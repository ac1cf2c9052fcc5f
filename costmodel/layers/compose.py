"""Helpers that blocks use to spell out their primitives (not layer types themselves)."""

from __future__ import annotations

from typing import Literal

from costmodel.layers.base import LayerSpec, derived
from costmodel.layers.elementwise import Activation, ActivationFn
from costmodel.layers.norm import BatchNorm

PostOrder = Literal["bn_act", "act_bn"]
"""Order of the ops after a conv: batch norm then activation (torchvision, slim), or activation
then batch norm (the keras-effnet reference)."""


def norm_act(prefix: str, fn: ActivationFn | None, order: PostOrder = "bn_act",
             negative_slope: float = 0.01) -> list[LayerSpec]:
    """The batch norm and (unless ``fn`` is None) activation that follow a conv, named
    ``<prefix>_bn`` and ``<prefix>_act``."""
    bn = [derived(BatchNorm, name=f"{prefix}_bn")]
    if fn is None:
        return bn
    act = [derived(Activation, name=f"{prefix}_act", type=fn, fn=fn,
                   negative_slope=negative_slope)]
    return bn + act if order == "bn_act" else act + bn
