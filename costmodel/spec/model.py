"""The model spec: input, model-level parameters and the layer list."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from costmodel.layers import Context, Layer, Rounding
from costmodel.layers.base import STRICT, Multiplier, PosInt

InputSize = Union[PosInt, Annotated[list[PosInt], Field(min_length=2, max_length=2)]]
"""H×W: an int for a square input, or [h, w]. Each side is at most ``costmodel.limits
.INPUT_SIDE``, checked when the model is evaluated (the limit can change after loading)."""
VarValue = Union[int, float, str, bool]
"""A ``$name`` variable's value; fields it is substituted into check its type."""


class Variant(BaseModel):
    """Model-level overrides selected by a name suffix (``mobilenet-0.5``)."""

    model_config = ConfigDict(extra="forbid", defer_build=True, **STRICT)

    description: str = ""
    width: Multiplier | None = None
    depth: Multiplier | None = None
    input: InputSize | None = None
    num_classes: PosInt | None = None
    vars: dict[str, VarValue] = {}


class BlockDef(BaseModel):
    """A reusable block defined in a spec's ``blocks``: ``layers`` with ``$param`` holes,
    used as a layer ``{type: <name>, name: b1, param: value…}``. The loader expands each use
    into a ``sequential`` (a ``stage`` with ``stage: true``) named by the use, the params
    substituted; a param whose default is null must be given at every use."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, **STRICT)

    description: str = ""
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], Any] = {}
    stage: bool = False
    layers: list[dict[str, Any]] = Field(min_length=1)
    """Layers as written in a spec (validated once expanded, at each use)."""


class ModelSpec(BaseModel):
    """A network: ``layers`` applied to a ``in_channels``×H×W input.

    ``width`` is the width multiplier α, applied to every layer's output channels with the
    family's ``rounding`` rule; ``depth`` multiplies repeat counts; the resolution multiplier ρ
    is the input size itself.
    """

    # validators are built at the first validation, not at import: a cached spec needs none
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, **STRICT)

    name: str
    description: str = ""
    family: str = ""
    source: str = ""
    """Where the architecture comes from (paper table, reference implementation)."""
    notes: list[str] = []
    """Choices the source leaves open, and how this spec makes them."""
    input: InputSize = 224
    """Default input size, H×W (an int for a square input)."""
    in_channels: PosInt = 3
    num_classes: PosInt = 1000
    width: Multiplier = 1.0
    """Width multiplier α, 0 < α ≤ 100 (``costmodel.layers.base.MAX_MULTIPLIER``)."""
    depth: Multiplier = 1.0
    """Depth multiplier: each ``repeat`` runs ceil(n·depth) times; 0 < depth ≤ 100."""
    rounding: Rounding = Rounding()
    aliases: list[str] = []
    variants: dict[str, Variant] = {}
    vars: dict[str, VarValue] = {}
    """Values that layer fields refer to as ``$name``; variants may override them."""
    blocks: dict[str, BlockDef] = {}
    """Reusable parameterised blocks, expanded where a layer's ``type`` names one."""
    layers: list[Layer] = Field(min_length=1)
    _file: str | None = PrivateAttr(default=None)

    @property
    def file(self) -> str | None:
        """The spec file this model was loaded from, if any."""
        return self._file

    @property
    def input_hw(self) -> tuple[int, int]:
        return (self.input, self.input) if isinstance(self.input, int) else tuple(self.input)

    def context(self) -> Context:
        return Context(num_classes=self.num_classes, width=self.width, rounding=self.rounding,
                       depth=self.depth)
