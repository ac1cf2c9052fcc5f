"""SkipNet (Wang et al. ECCV 2018): residual blocks that a gate may skip, per input, and the
gates' own cost, as in the official code (ucbdrive/skipnet, cifar/ and imagenet/models.py).

A ``gated_residual`` block computes y = ReLU(g·F(x) + shortcut(x)), where g ∈ {0, 1} is its
gate's decision on the block's input: when g = 0 the block's main branch F is not run, and
the output is the shortcut (the identity, or the 1×1 projection of a down-sampling block,
which runs either way). What a skippable network costs for given execution probabilities is
``costmodel.analysis.skipnet``'s business; the evaluator counts every block as executed
(the maximum).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from costmodel.errors import ShapeError
from costmodel.layers.base import Block, Context, Cost, LayerSpec, Primitive, derived
from costmodel.layers.compose import norm_act
from costmodel.layers.conv import Conv, PosInt
from costmodel.layers.elementwise import Activation
from costmodel.layers.linear import linear_cost
from costmodel.layers.lstm import lstm_cost
from costmodel.layers.pool import Pool
from costmodel.layers.resnet import BasicBlock, Bottleneck
from costmodel.layers.structure import Parallel, Residual
from costmodel.shape import Shape, spatial_out

GateKind = Literal["ffgate1", "ffgate2", "rnn"]

RES, GATED, BLOCK, GATE = "res", "gated", "block", "gate"
"""Names in a gated block's expansion: <block>.res.main.gated.{block,gate}, <block>.res.shortcut."""


def _vector(x: Shape, what: str) -> None:
    if x.hw != 1:
        raise ShapeError(f"{what} needs a C×1×1 input, got {x}")


class GateDecision(Primitive):
    """A feed-forward gate's last step: softmax over its two logits (skip, execute), keeping
    P(execute), thresholded at 0.5 at inference. 2×1×1 → 1×1×1; no multiply-adds.
    MAC = 2 + 1."""

    type: Literal["gate_decision"] = "gate_decision"
    category = "activation"
    operator = "elementwise"
    elementwise = "activation"

    def cost(self, x: Shape, ctx: Context) -> Cost:
        _vector(x, "a gate decision")
        if x.c != 2:
            raise ShapeError(f"a gate decision takes 2 logits (skip, execute), got {x.c}")
        return Cost(out=Shape(1, 1, 1), mac=x.c + 1)


def rnn_gate_cost(embed: int, hidden: int, shared: bool) -> Cost:
    """One step of SkipNet's recurrent gate controller: LSTM(embed → hidden), then a linear
    projection hidden → 1 (with bias) and a sigmoid.

    FLOPs  = 4·h·(e + h) + h   (LSTM step, see lstm_cost; projection)
    fvcore = h   (fvcore has no rule for aten::lstm; it counts the projection. So does torch's
                  FlopCounterMode where the step runs as one fused kernel: see lstm_cost)
    params = 4·h·(e + h) + 8·h + h + 1, or 0 when ``shared``: every gate of a SkipNet runs the
             same controller, whose weights count once
    MAC    = the LSTM step's + the projection's (h + 1 + weights) + the sigmoid's 2
    """
    cell = lstm_cost(embed, hidden, bias=True)
    proj = linear_cost(hidden, 1, bias=True)
    params = 0 if shared else cell.params + proj.params
    return Cost(out=Shape(1, 1, 1), flops=cell.flops + proj.flops, fvcore_flops=proj.flops,
                params=params, mac=cell.mac + proj.mac + 2,
                weight_mac=cell.weight_mac + proj.weight_mac)


class RNNGate(Primitive):
    """SkipNet's recurrent gate controller, one step per gated block (see rnn_gate_cost):
    E×1×1 block embedding → P(execute) as 1×1×1. ``shared``: the controller's weights are
    counted on another gate."""

    type: Literal["rnn_gate"] = "rnn_gate"
    hidden: PosInt = 10
    shared: bool = False
    category = "fc"
    operator = "linear"  # a G3 operator, as lstm: an LSTM step and a projection

    def cost(self, x: Shape, ctx: Context) -> Cost:
        _vector(x, "the recurrent gate")
        return rnn_gate_cost(x.c, self.hidden, self.shared)


def _avg_to_one(h: int, w: int) -> LayerSpec:
    """The official gates' nn.AvgPool2d(pool_size), whose window is the whole map (a plain
    average pool: fvcore counts nothing for it, unlike an adaptive one)."""
    return derived(Pool, name="avg", type="avg_pool", kernel=[h, w], stride=[h, w], padding=0,
                   ceil_mode=False)


def gate_layers(kind: GateKind, x: Shape, embed: int, hidden: int,
                shared: bool) -> list[LayerSpec]:
    """The layers of one gate on a C×H×W block input.

    ffgate1: 2×2 max pool → 3×3 conv → BN → ReLU → 3×3 conv, stride 2 → BN → ReLU →
             average pool to 1×1 → 1×1 conv to 2 logits (bias) → decision.
             Cost ≈ 9C²·HW·(1/4 + 1/16): 5/32 = 15.6% of a C→C basic block (18C²·HW).
    ffgate2: 3×3 conv, stride 2 → BN → ReLU → average pool → 1×1 conv to 2 (bias) → decision.
             Cost ≈ 9C²·HW/4: 1/8 = 12.5% of a basic block.
    rnn:     average pool → 1×1 conv to ``embed`` (bias; per block) → the shared controller
             (LSTM, projection, sigmoid).
    """
    c = x.c
    if kind == "rnn":
        return [_avg_to_one(x.h, x.w),
                derived(Conv, name="embed", out=embed, kernel=1, bias=True,
                        channel_scaling="fixed"),
                derived(RNNGate, name="rnn", hidden=hidden, shared=shared)]
    layers: list[LayerSpec] = []
    h, w = x.h, x.w
    if kind == "ffgate1":
        layers += [derived(Pool, name="pool", type="max_pool", kernel=2, stride=2, padding=0,
                           ceil_mode=False),
                   derived(Conv, name="conv1", out=c, kernel=3, channel_scaling="fixed"),
                   *norm_act("conv1", "relu")]
        h, w = spatial_out(x, (2, 2), (2, 2), 0)
    last = "conv2" if kind == "ffgate1" else "conv"
    layers += [derived(Conv, name=last, out=c, kernel=3, stride=2, channel_scaling="fixed"),
               *norm_act(last, "relu")]
    h, w = spatial_out(Shape(c, h, w), (3, 3), (2, 2), 1)
    return [*layers, _avg_to_one(h, w),
            derived(Conv, name="fc", out=2, kernel=1, bias=True, channel_scaling="fixed"),
            derived(GateDecision, name="decision")]


class GatedResidual(Block):
    """A residual ``block`` (basic_block or bottleneck) that its ``gate`` may skip.

    Expands to res = (main: gated = (block: F's layers) × (gate: the gate's layers),
    shortcut), added, then ReLU. The gate runs on the block's input — in the official code,
    the gate after block i decides block i+1 from block i's output. Gate cost is always paid;
    so is a projection shortcut; F and the merges are what skipping saves.

    ``rnn_weights``: with ``gate: rnn`` every gate runs one shared LSTM controller: mark one
    block ``own`` (it counts the controller's 891 params for embed = hidden = 10) and the
    others ``shared``.
    """

    type: Literal["gated_residual"] = "gated_residual"
    block: Annotated[Union[BasicBlock, Bottleneck], Field(discriminator="type")]
    gate: GateKind = "rnn"
    embed: PosInt = 10
    hidden: PosInt = 10
    rnn_weights: Literal["own", "shared"] = "own"
    spatial_expansion = True  # the gates' average pool spans the whole map

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        main, shortcut = self.block.parts(x, ctx)
        gate = gate_layers(self.gate, x, self.embed, self.hidden, self.rnn_weights == "shared")
        gated = derived(Parallel, name=GATED, merge="multiply", branch_names=[BLOCK, GATE],
                        branches=[main, gate])
        return [derived(Residual, name=RES, layers=[gated], shortcut=shortcut, merge="add"),
                derived(Activation, name="relu", type="relu", fn="relu")]
