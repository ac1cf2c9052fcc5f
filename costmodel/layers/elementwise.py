"""Element-wise layers: activations, dropout, identity, stochastic depth."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from costmodel.layers.base import Context, Cost, Primitive
from costmodel.shape import Shape

ActivationFn = Literal["relu", "relu6", "leaky_relu", "hswish", "hsigmoid", "swish", "silu",
                       "sigmoid", "tanh", "gelu"]

PIECEWISE_LINEAR = frozenset(("relu", "relu6", "leaky_relu", "hswish", "hsigmoid"))
"""Activations of comparisons and a multiply, no exp or division: timed in the latency model's
``relu`` class. Measured (1 thread, 96×112×112 fresh output): relu 0.67 ms, relu6 0.66,
leaky_relu 0.76, hswish 0.76, hsigmoid 0.82 — against swish 1.75, sigmoid 1.51, gelu 1.59,
tanh 4.19 (the ``activation`` class)."""


def elementwise_cost(x: Shape) -> Cost:
    """Cost of a unary element-wise op (activation).

    FLOPs  = 0 (not multiply-adds; neither the papers nor fvcore count them)
    MAC    = 2·C·H·W (read the map, write the map; ShuffleNet V2 G4)
    """
    return Cost(out=x, mac=2 * x.numel)


class Activation(Primitive):
    """A non-linearity. ``type: relu`` is short for ``type: activation, fn: relu``."""

    type: Literal["activation", "relu", "relu6", "leaky_relu", "hswish", "hsigmoid", "swish",
                  "silu", "sigmoid", "tanh", "gelu"] = "activation"
    fn: ActivationFn | None = None
    negative_slope: float = Field(default=0.01, ge=0)
    """leaky_relu's slope (torch's default 0.01; Keras' LeakyReLU uses 0.3)."""
    category = "activation"
    operator = "elementwise"
    elementwise = "activation"

    @model_validator(mode="after")
    def _fn_from_type(self):
        if self.type == "activation":
            if self.fn is None:
                raise ValueError("'fn' is required with type 'activation' (e.g. fn: relu)")
        elif self.fn is None:
            object.__setattr__(self, "fn", self.type)
        elif self.fn != self.type:
            raise ValueError(f"fn '{self.fn}' contradicts type '{self.type}'")
        return self

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return elementwise_cost(x)

    def label(self) -> str:
        return self.fn or self.type

    def latency_class(self) -> str:
        return "relu" if self.fn in PIECEWISE_LINEAR else "activation"


class Identity(Primitive):
    """A layer that costs nothing at inference: ``identity``, or ``dropout`` (``p`` is kept for
    the torch builder)."""

    type: Literal["identity", "dropout"] = "identity"
    p: float = Field(default=0.5, ge=0, le=1)
    operator = "none"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return Cost(out=x)


class StochasticDepth(Primitive):
    """Stochastic depth (Huang et al., 2016; torchvision.ops.StochasticDepth): in training it
    drops the residual branch it ends, per sample (``mode: row``) or for the whole batch
    (``batch``), with probability ``p``; at inference it is the identity, so it costs nothing
    (FLOPs, params and MAC 0). ``p`` and ``mode`` are kept for the torch builder."""

    type: Literal["stochastic_depth"] = "stochastic_depth"
    p: float = Field(default=0.0, ge=0, le=1)
    mode: Literal["row", "batch"] = "row"
    operator = "none"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        return Cost(out=x)
