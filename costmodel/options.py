"""What the user chooses about a count: the counting conventions (``Options``), the element
types MAC is reported in, and the input size."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Literal

from costmodel.errors import CostModelError
from costmodel.limits import INPUT_SIDE, INT_DIGITS

Scope = Literal["paper", "fvcore"]
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8}


@dataclass(frozen=True, slots=True)
class Options:
    """How numbers are counted and reported.

    scope: ``paper`` counts multiply-adds of conv and linear layers only (the papers',
    torchvision's convention); ``fvcore`` counts what fvcore counts by default (also batch norm,
    adaptive average pooling, upsampling; eval mode).
    flops_per_madd: 1 (papers, fvcore) or 2 (PyTorch's flop counter).
    bn_params: count batch-norm γ/β in params (torch's count) or leave them out.
    dtype: element type for MAC in bytes.
    """

    scope: Scope = "paper"
    flops_per_madd: Literal[1, 2] = 1
    bn_params: bool = True
    dtype: str = "float32"

    def __post_init__(self):
        # exact types: True is not 1 FLOP per multiply-add, "no" is not a bool
        if not isinstance(self.scope, str) or self.scope not in ("paper", "fvcore"):
            raise CostModelError(f"unknown scope {self.scope!r} (paper or fvcore)", field="scope")
        if type(self.flops_per_madd) is not int or self.flops_per_madd not in (1, 2):
            raise CostModelError(f"flops per multiply-add must be 1 or 2, got "
                                 f"{self.flops_per_madd!r}", field="flops_per_madd")
        if not isinstance(self.bn_params, bool):
            raise CostModelError(f"bn_params must be True or False, got {self.bn_params!r}",
                                 field="bn_params")
        if not isinstance(self.dtype, str) or self.dtype not in DTYPE_BYTES:
            raise CostModelError(f"unknown dtype {self.dtype!r} ({', '.join(DTYPE_BYTES)})",
                                 field="dtype")

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    def describe(self) -> str:
        """The conventions in one line, printed with every output."""
        unit = "1 FLOP per multiply-add" if self.flops_per_madd == 1 else \
            "2 FLOPs per multiply-add (PyTorch's convention)"
        scope = "conv + linear layers" if self.scope == "paper" else \
            "fvcore's default ops (conv, linear, batch norm, adaptive avg pool, upsample)"
        bn = "incl." if self.bn_params else "excl."
        return (f"FLOPs: {unit}, counting {scope}; params {bn} BN affine; "
                f"MAC: memory access cost (elements read + written), {self.dtype}")


_INPUT_TEXT = re.compile(r"\s*([0-9]+)\s*(?:[x×]\s*([0-9]+)\s*)?", re.IGNORECASE)
"""``32`` or ``224x160``: ASCII digits only (``int()`` would also take ``1_000``, ``٣`` and
surrounding signs)."""


def parse_input(value: str | int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``32`` or ``"32"`` → (32, 32); ``"224x160"``, ``(224, 160)`` or ``[224, 160]`` → (224, 160)
    as H×W. Sides are whole numbers (never a bool, never a float, even 224.0: nothing is
    truncated) from 1 to ``costmodel.limits.INPUT_SIDE``; anything else is a CostModelError
    (a LimitError over the limit) naming the field ``input``."""
    if isinstance(value, str):
        m = _INPUT_TEXT.fullmatch(value)
        if m is None:
            raise CostModelError(f"input size {value!r} is not N or HxW (e.g. 32 or 224x160)",
                                 field="input")
        sides = [g for g in m.groups() if g is not None]
        for digits in sides:  # before int(): a 10,000-digit side is refused, not converted
            INT_DIGITS.check(len(digits.lstrip("0")), field="input")
        sides = [int(g) for g in sides]
    elif isinstance(value, (tuple, list)):
        sides = list(value)
    else:
        sides = [value]
    if len(sides) == 1:
        sides *= 2
    if len(sides) != 2:
        raise CostModelError(f"input size {value!r} must be one or two sizes (N or HxW)",
                             field="input")
    hw = []
    for side in sides:
        try:
            if isinstance(side, bool):
                raise TypeError
            side = operator.index(side)  # int or int-like (numpy); a float raises
        except TypeError:
            raise CostModelError(f"input size {value!r} must be whole numbers, got {side!r}",
                                 field="input") from None
        if side < 1:
            raise CostModelError(f"input size {value!r} must be one or two positive integers",
                                 field="input")
        INPUT_SIDE.check(side, field="input")
        hw.append(side)
    return hw[0], hw[1]
