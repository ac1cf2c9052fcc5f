"""One step of an LSTM cell (SkipNet's recurrent gate)."""

from __future__ import annotations

from typing import Literal


from costmodel.errors import ShapeError
from costmodel.layers.base import Context, Cost, PosInt, Primitive
from costmodel.shape import Shape


def lstm_cost(n_in: int, hidden: int, bias: bool, shared: bool = False) -> Cost:
    """Cost of one time step of torch's single-layer nn.LSTM(n_in, hidden).

    FLOPs  = 4·h·(n_in + h): the four gates' input-to-hidden and hidden-to-hidden products
             (the gates' sigmoid/tanh and the element-wise c = f⊙c + i⊙g, h = o⊙tanh(c) are
             not multiply-adds of a weight; bias adds are not counted). fvcore counts 0: it has
             no rule for aten::lstm. torch's FlopCounterMode sees the kernel torch runs instead:
             on CPU with oneDNN aten.mkldnn_rnn_layer, which it has no formula for (0); without
             oneDNN the two products as aten.addmm, which it counts (2 per multiply-add).
    params = 4·h·(n_in + h) + 8·h·[bias] (torch keeps two bias vectors, b_ih and b_hh), or 0
             when ``shared``: the cell's weights are counted where they are first used
    MAC    = n_in + 2h (x, h_{t−1}, c_{t−1}) + 2h (h_t, c_t) + weights
    """
    weights = 4 * hidden * (n_in + hidden) + (8 * hidden if bias else 0)
    return Cost(out=Shape(hidden, 1, 1, flat=True), flops=4 * hidden * (n_in + hidden),
                params=0 if shared else weights, mac=n_in + 4 * hidden + weights,
                weight_mac=weights)


class LSTM(Primitive):
    """One LSTM step on a vector (or a C×1×1 map) of features; returns the hidden state, in the
    same form. ``shared``: the cell's weights are another layer's (a recurrent controller run
    once per block), so this step adds FLOPs but no params."""

    type: Literal["lstm"] = "lstm"
    hidden: PosInt
    bias: bool = True
    shared: bool = False
    category = "fc"
    operator = "linear"  # a G3 operator: the step is two matrix products (and gates)

    def cost(self, x: Shape, ctx: Context) -> Cost:
        if x.hw != 1:
            raise ShapeError(f"an LSTM step needs a vector or a C×1×1 map, got {x}: pool first")
        c = lstm_cost(x.c, self.hidden, self.bias, self.shared)
        out = c.out if x.flat else Shape(self.hidden, 1, 1)
        return c._replace(out=out)
