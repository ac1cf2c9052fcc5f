"""What the analyses know about a primitive, declared on its class (never as lists of type
names elsewhere).

Every :class:`~costmodel.layers.base.Primitive` subclass declares:

- ``operator``: the kind of operator it is (``Operator``). G3 of ``costmodel rules`` counts
  the ``conv``, ``linear`` and ``pooling`` kinds as the paper's "fragmented operators".
- ``elementwise``: the group of ShuffleNet V2's G4 (element-wise operators, heavy in memory
  access for their FLOPs) its MAC counts in, or None (the default). A conv counts as
  ``depthwise`` by its category, per instance (groups = C_in).
- ``runs_channels_last``: its torch module runs on an N×H×W×C tensor (between permutes: the
  token and attention layers); default False.
- ``describe(x)``: the layer in a few words for the data-flow tables ('conv 3×3/2', 'dw 1×3');
  the default is its row label.

Its ``type`` tags (the first is the canonical name, the others aliases) come from the
``type`` Literal itself: ``tags(cls)``. Knowledge that needs torch (the module a primitive
runs as) is registered per class in ``costmodel.crosscheck.builder``; derivations per class in
``costmodel.analysis.explain_layer``. A block may name its parts for them (``Block.parts``).
"""

from __future__ import annotations

import typing
from typing import Literal

from costmodel.shape import pair

Operator = Literal["conv", "linear", "pooling", "elementwise", "normalization",
                   "data_movement", "view", "none"]
"""conv: convolutions (dense, grouped, depthwise, transposed); linear: matrix products (fully
connected, LSTM steps); pooling; elementwise: per-element arithmetic (activations);
normalization; data_movement: copies that rearrange or resample the map (shuffle, upsample);
view: no copy at all (flatten, slice); none: costs nothing at inference (identity, dropout)."""

ElementwiseGroup = Literal["activation", "channel_shuffle", "depthwise", "bn"]
"""G4's groups of primitives (the merges ``add`` and ``multiply`` are its other groups)."""


def tags(cls: type) -> tuple[str, ...]:
    """A layer class's ``type`` tags, the canonical one first, then its aliases."""
    return typing.get_args(cls.model_fields["type"].annotation)


def aliases(cls: type) -> tuple[str, ...]:
    return tags(cls)[1:]


def missing(cls: type) -> list[str]:
    """The traits a primitive class fails to declare (none, for every class of the package)."""
    return [name for name in ("operator",) if not isinstance(getattr(cls, name, None), str)]


# --- words for describe() --------------------------------------------------------------------

def kernel_text(v) -> str:
    """3 → '3×3'; [1, 3] → '1×3'."""
    kh, kw = pair(v)
    return f"{kh}×{kw}"


def stride_text(v) -> str:
    """'' for stride 1 (or None), '/2', '/(1,2)'."""
    if v is None:
        return ""
    sh, sw = pair(v)
    if (sh, sw) == (1, 1):
        return ""
    return f"/{sh}" if sh == sw else f"/({sh},{sw})"
