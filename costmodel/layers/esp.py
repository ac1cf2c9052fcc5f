"""ESPNet's efficient spatial pyramid (ESP) module (Mehta et al. 2018), as in sacmehta/ESPNet's
DilatedParllelResidualBlockB and DownSamplerB."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from costmodel.errors import ShapeError
from costmodel.layers.base import Block, Channels, Context, LayerSpec, PosInt, derived
from costmodel.layers.conv import Conv
from costmodel.layers.norm import BatchNorm
from costmodel.layers.prelu import PReLU
from costmodel.layers.structure import Parallel, Residual
from costmodel.shape import Shape


class ESPModule(Block):
    """reduce → split → transform → hierarchical feature fusion → merge:

    - reduce: a 1×1 conv to n = ``out``//K channels (stride 1), or a 3×3 stride-2 conv (the
      down-sampling module);
    - transform: K parallel 3×3 convs with dilation 1, 2, 4, …, 2^(K−1) on the reduced maps,
      the dilation-1 one making n1 = out − (K−1)·n channels, the others n;
    - HFF: the dilated outputs are summed hierarchically (d2, d2+d4, d2+d4+d8, …) to undo
      gridding, then concatenated after d1 (``out`` channels);
    - ``add``: plus the input (needs C_in = ``out``, stride 1); then BN → PReLU.

    Convs have no bias. Params (reduce 1×1, N = out divisible by K): M·N/K + 9·N²/K — the
    paper's MN/K + (nN)²/K with n = 3. Effective receptive field [(n−1)·2^(K−1)+1]².
    """

    type: Literal["esp"] = "esp"
    out: Channels
    stride: Literal[1, 2] = 1
    branches: Annotated[PosInt, Field(ge=2, le=32)] = 5
    """K, at most 32: the last branch's dilation 2^(K−1) then stays within a 32-bit count (a
    larger K would only make astronomically dilated convs, and slow arithmetic on them)."""
    add: bool | None = None
    """Add the input: by default when the shapes allow (stride 1, C_in = out)."""

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        out = ctx.channels(self.out)
        k = self.branches
        n = out // k
        n1 = out - (k - 1) * n
        if n < 1:
            raise ShapeError(f"{out} output channels cannot feed {k} branches", field="out")
        add = self.add if self.add is not None else (self.stride == 1 and x.c == out)
        if add and (self.stride != 1 or x.c != out):
            raise ShapeError(f"adding the input needs stride 1 and {x.c} = out ({out}) channels",
                             field="add")
        kernel = 3 if self.stride == 2 else 1
        reduce = derived(Conv, name="reduce", out=n, kernel=kernel, stride=self.stride,
                         channel_scaling="fixed")
        dilated = [[derived(Conv, name="conv", out=n, kernel=3, dilation=2 ** i,
                            channel_scaling="fixed")] for i in range(1, k)]
        transform = derived(
            Parallel, name="transform", merge="concat", branch_names=["d1", "hff"],
            branches=[[derived(Conv, name="conv", out=n1, kernel=3, channel_scaling="fixed")],
                      [derived(Parallel, name="fuse", merge="hff", branches=dilated,
                               branch_names=[f"d{2 ** i}" for i in range(1, k)])]])
        body: list[LayerSpec] = [reduce, transform]
        if add:
            body = [derived(Residual, name="res", layers=body, shortcut=[], merge="add")]
        return [*body, derived(BatchNorm, name="bn"), derived(PReLU, name="act")]
