"""What every layer of a spec is: a primitive with one closed-form cost, or a block that
expands into layers. The evaluator (``costmodel.engine``) walks them; it knows nothing
about any particular layer type.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from costmodel.errors import CostModelError, ShapeError
from costmodel.layers.traits import ElementwiseGroup, Operator
from costmodel.shape import Shape

# --- the numbers a spec, a budgets file, an option or a library argument may hold -----------
#
# Strict everywhere: a boolean is never a number (``out: true`` is not 1 channel), a float is
# never a count (``kernel: 3.0`` and ``kernel: 2.5`` are refused, not truncated; an integer
# is taken where a float is expected), NaN and ±inf are refused, and every number has a
# documented upper bound, so no value can make the arithmetic overflow a float or run away.

MAX_INT = 2**31 - 1
"""The largest integer a spec's field may hold (channels, kernel, stride, groups, repeat
count...): 2,147,483,647, the largest int32. No real network comes near it; the input's sides
have their own, lower limit (``costmodel.limits.INPUT_SIDE``)."""

MAX_MULTIPLIER = 100
"""The largest width, depth or resolution multiplier (and MBConv ``expansion``): 0 < m ≤ 100,
in specs, options and library arguments. The zoo's largest are width 2.0 and depth 3.1;
beyond 100 a multiplier is a typo (``1e3``) that would expand into millions of layers or
channels, not a design."""



def _not_bool_or_float(value: Any) -> Any:
    """Say why a bool or a float is not a count (strict mode's own words are only "Input
    should be a valid integer"); anything else goes on to the strict int check."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "must be a whole number, got {value} (true/false "
                                  "is not a number)", {"value": str(value).lower()})
    if isinstance(value, float):
        raise PydanticCustomError("int_type", "must be a whole number, got {value} (a float is "
                                  "never rounded to a count)", {"value": value})
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "must be a number, got {value} (true/false is "
                                  "not a number)", {"value": str(value).lower()})
    return value


PosInt = Annotated[int, Strict(), Field(gt=0, le=MAX_INT), BeforeValidator(_not_bool_or_float)]
"""A positive whole number, at most ``MAX_INT``."""
NonNegInt = Annotated[int, Strict(), Field(ge=0, le=MAX_INT), BeforeValidator(_not_bool_or_float)]
"""A whole number from 0 to ``MAX_INT``."""
Multiplier = Annotated[float, Strict(), Field(gt=0, le=MAX_MULTIPLIER, allow_inf_nan=False),
                       BeforeValidator(_not_bool)]
"""A width or depth multiplier: a finite number, 0 < m ≤ ``MAX_MULTIPLIER``."""

STRICT = ConfigDict(strict=True, allow_inf_nan=False)
"""The validation settings of every model of a spec (merged into each ``model_config``)."""


def check_multiplier(value: Any, field: str) -> float:
    """A width, depth or resolution multiplier given to the library or the CLI, as a float; a
    CostModelError naming ``field`` unless it is a finite number in (0, MAX_MULTIPLIER]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise CostModelError(f"{field} multiplier must be a finite number, got {value!r}",
                             field=field)
    if value <= 0:
        raise CostModelError(f"{field} multiplier must be positive, got {value:g}", field=field)
    if value > MAX_MULTIPLIER:
        raise CostModelError(f"{field} multiplier {value:g} is implausibly large (at most "
                             f"{MAX_MULTIPLIER})", field=field)
    return float(value)


def check_count(value: Any, field: str, minimum: int = 1) -> int:
    """A whole number given to the library or the CLI (a number of classes), as an int; a
    CostModelError naming ``field`` for a bool, a float (even 3.0: nothing is truncated) or
    a number outside [minimum, MAX_INT]."""
    try:
        if isinstance(value, bool):
            raise TypeError
        n = operator.index(value)  # ints and int-like (numpy) values; never floats
    except TypeError:
        raise CostModelError(f"{field} must be a whole number, got {value!r}",
                             field=field) from None
    if not minimum <= n <= MAX_INT:
        raise CostModelError(f"{field} must be from {minimum} to {MAX_INT:,}, got {n}",
                             field=field)
    return n


Channels = Union[PosInt, Literal["classes"]]
"""A channel count in a spec: an integer, or ``classes`` for the model's number of classes."""

L = TypeVar("L", bound="LayerSpec")

ChannelScaling = Literal["scale", "fixed", "no_shrink"]
"""How the width multiplier treats a layer's output channels: ``scale`` (default), ``fixed``
(never scaled), ``no_shrink`` (scaled up but never below the base, MobileNet V2's last conv)."""


@dataclass(frozen=True, slots=True)
class Rounding:
    """A family's channel-rounding rule for the width multiplier α.

    ``truncate``: max(int(c·α), min) — MobileNet V1 (slim's ``min_depth=8``), ShuffleNet (min 1).
    ``divisible``: torchvision's ``_make_divisible(c·α, divisor, min)``: nearest multiple of
    ``divisor``, at least ``min``, never more than 10% below c·α — MobileNet V2/V3, EfficientNet.
    """

    # a plain dataclass (cheap on every layer): in a strict model Pydantic would take only an
    # instance, not a spec's mapping; lax here, its numbers are still strict (PosInt)
    __pydantic_config__ = ConfigDict(strict=False)

    rule: Literal["truncate", "divisible"] = "truncate"
    divisor: PosInt = 8
    min: NonNegInt = 1

    def apply(self, c: int, alpha: float) -> int:
        v = c * alpha
        if self.rule == "truncate":
            return max(int(v), self.min)
        floor = self.min or self.divisor
        new = max(floor, int(v + self.divisor / 2) // self.divisor * self.divisor)
        if new < 0.9 * v:
            new += self.divisor
        return new


@dataclass(frozen=True, slots=True)
class Context:
    """Model-level settings a layer needs to know its own size."""

    num_classes: int = 1000
    width: float = 1.0
    rounding: Rounding = Rounding()
    depth: float = 1.0
    """Depth multiplier d: every ``repeat`` runs ceil(n·d) times (EfficientNet's round_repeats)."""

    def channels(self, c: Channels, scaling: ChannelScaling = "scale") -> int:
        """A spec's channel count after the width multiplier and the family's rounding."""
        if c == "classes":
            return self.num_classes
        if scaling == "fixed" or self.width == 1.0:
            return c
        scaled = self.rounding.apply(c, self.width)
        return max(scaled, c) if scaling == "no_shrink" else scaled


class Cost(NamedTuple):
    """Everything one primitive costs, for batch size 1.

    flops: multiply-adds the papers count (conv and linear layers only), 1 per fused multiply-add.
    fvcore_flops: what fvcore's FlopCountAnalysis counts by default for the same op, in eval mode.
    params: trainable parameters (torch's count). mac: memory access cost in elements, as
    ShuffleNet V2 defines it: input feature maps + output feature map + weights (and batch
    norm's running statistics) read. weight_mac: the part of ``mac`` that is weights and
    statistics (the rest is feature maps): a batch of N reads the weights once and N times
    the feature maps, MAC_N = N·(mac − weight_mac) + weight_mac (``Walker.add``).
    """

    out: Shape
    flops: int = 0
    fvcore_flops: int = 0
    params: int = 0
    mac: int = 0
    weight_mac: int = 0


def require_map(x: Shape) -> None:
    if x.flat:
        raise ShapeError(f"needs a C×H×W feature map, got a flattened vector of {x.c}")


def check_groups(c_in: int, c_out: int, groups: int) -> None:
    if c_in % groups:
        raise ShapeError(f"{c_in} input channels are not divisible by groups={groups}",
                         field="groups")
    if c_out % groups:
        raise ShapeError(f"{c_out} output channels are not divisible by groups={groups}",
                         field="groups")


_IMMUTABLE = (type(None), bool, int, float, str, tuple, frozenset)
_UNSET = object()
"""What a prototype holds in a required field (derived refuses to copy one without it)."""
_PROTOTYPES: dict[type, tuple[Any, frozenset[str], frozenset[str]]] = {}


def _defaults(cls: type) -> tuple[Any, frozenset[str], frozenset[str]]:
    """(a prototype: an instance of ``cls`` holding its defaults, and _UNSET in its required
    fields; the field names; the required ones) — looked up once per class. The prototype is
    None where a default is mutable (each instance needs its own copy) or the class has a
    ``model_post_init``. It never leaves this module."""
    known = _PROTOTYPES.get(cls)
    if known is None:
        fields = cls.model_fields
        required = frozenset(n for n, f in fields.items() if f.is_required())
        values = {n: _UNSET if n in required else f.get_default(call_default_factory=True)
                  for n, f in fields.items()}
        safe = all(isinstance(v, _IMMUTABLE) or v is _UNSET for v in values.values()) \
            and not cls.__pydantic_post_init__
        prototype = cls.model_construct(set(), **values) if safe else None
        known = _PROTOTYPES[cls] = (prototype, frozenset(fields), required)
    return known


def derived(cls: type[L], **fields) -> L:
    """A layer built from sizes a block computed, without Pydantic validation: blocks expand on
    every evaluation, and validating would build each class's validator at start-up. Values
    from the user's spec are validated when the spec loads; sizes a block derives are checked
    by the formulas (a conv refuses 0 channels).

    The instance is the one Pydantic's ``model_construct(**fields)`` builds (fields in
    declaration order, ``model_fields_set`` the fields given), made by the public
    ``model_copy(update=fields)`` of a prototype that holds the class's defaults: that is about
    half the time, as model_construct resolves every default again on each call (most of a
    sweep's expansion time). A name that is not a field, or a required field left out, is a
    TypeError (model_construct would drop the one and leave the other unset)."""
    prototype, names, required = _PROTOTYPES.get(cls) or _defaults(cls)
    if not (fields.keys() <= names and required <= fields.keys()):
        raise TypeError(f"derived({cls.__name__}): unknown fields "
                        f"{sorted(fields.keys() - names)}, missing fields "
                        f"{sorted(required - fields.keys())}")
    if prototype is None:
        return cls.model_construct(**fields)
    return prototype.model_copy(update=fields)


class LayerSpec(BaseModel):
    """Base of every layer in a spec. ``name`` becomes the layer's path segment."""

    # Schemas are built on first use (the spec's, or a block's first expansion), not at import:
    # that keeps the CLI's start-up short.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, **STRICT)

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]+$")


class _AnyLayerType:
    """Validation of a field that holds layers: the discriminated union of every layer type,
    built (every layer module imported) when the first schema that needs it is built — so
    reading a cached spec imports only the modules its own layers come from."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from costmodel.layers import layer_union

        return handler.generate_schema(layer_union())


Layer = Annotated[LayerSpec, _AnyLayerType()]
"""Any layer of a spec, told apart by its ``type``: the annotation of fields that hold layers."""


class Primitive(LayerSpec):
    """A layer with one closed-form cost.

    ``category`` groups layers the way MobileNet's Table 2 does; a primitive may refine it per
    instance with ``category_of``. ``operator`` (no default: every primitive says it),
    ``elementwise`` and ``describe`` are its traits for the analyses (``layers.traits``).
    """

    category: ClassVar[str] = "other"
    operator: ClassVar[Operator]
    elementwise: ClassVar[ElementwiseGroup | None] = None
    runs_channels_last: ClassVar[bool] = False
    """Its torch module runs on an N×H×W×C tensor, after a ``permute`` to channels_last (the
    token and attention layers): the builder, verify and the importer read this."""

    def cost(self, x: Shape, ctx: Context) -> Cost:  # pragma: no cover - abstract
        raise NotImplementedError

    def label(self) -> str:
        """The layer's type as rows show it."""
        return self.type  # type: ignore[attr-defined]

    def category_of(self, x: Shape, ctx: Context) -> str:
        return self.category

    def describe(self, x: Shape) -> str:
        """The layer in a few words, on input ``x`` (data-flow tables): 'conv 3×3/2'."""
        return self.label()

    def latency_class(self) -> str | None:
        """The operator class its latency is predicted as (``costmodel.latency``), where its
        ``operator`` alone does not say; None (the default): the class its operator gives."""
        return None


class Block(LayerSpec):
    """A layer made of other layers: ``expand`` returns the layers it stands for, given its
    input shape. The result may hold blocks too; the evaluator expands until only primitives
    and branching nodes remain.

    An expansion may depend on the input's channels and the context, but not on its spatial
    size — the evaluator memoizes expansions on that — unless the block sets
    ``spatial_expansion = True``. Without it, ``expand`` gets a view of the input that refuses
    to be read for its size (costmodel.engine.memo.ChannelsOnly: a TypeError naming the block).
    """

    stage: ClassVar[bool] = False
    spatial_expansion: ClassVar[bool] = False
    parts: ClassVar[dict[str, str]] = {}
    """Parts of the expansion by role → their layer name (the block's own words for what
    other modules read: ``explain`` finds a unit's depthwise conv by ``parts["dw"]``)."""

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:  # pragma: no cover - abstract
        raise NotImplementedError

