"""Feature-map shapes and the integer arithmetic of spatial sizes.

Shapes are per sample (batch size 1), C×H×W. A flattened vector is ``Shape(F, 1, 1,
flat=True)`` so that every layer sees the same three numbers.
"""

from __future__ import annotations

from typing import NamedTuple

from costmodel.errors import ShapeError


class Shape(NamedTuple):
    """C×H×W (a NamedTuple: immutable, hashable and cheap to make — evaluation makes many)."""

    c: int
    h: int
    w: int
    flat: bool = False

    @property
    def numel(self) -> int:
        return self.c * self.h * self.w

    @property
    def hw(self) -> int:
        return self.h * self.w

    def as_list(self) -> list[int]:
        """[C] for a vector, [C, H, W] for a feature map (the torch shape without N)."""
        return [self.c] if self.flat else [self.c, self.h, self.w]

    def __str__(self) -> str:
        return f"{self.c}" if self.flat else f"{self.c}×{self.h}×{self.w}"


def pair(v: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """An int or an (h, w) pair as an (h, w) tuple."""
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF/Keras 'same' padding along one axis: (before, after), output = ceil(size/stride).

    The extra pixel of an odd total goes after, as in TensorFlow.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return (total // 2, total - total // 2)


def window_out(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int = 1,
               ceil_mode: bool = False) -> int:
    """Output length of a sliding window (torch's formula for conv and pooling).

    floor((size + pad_before + pad_after - dilation·(kernel-1) - 1) / stride) + 1, or ceil with
    ``ceil_mode`` (where, as in torch, the last window must start inside the padded input).
    """
    span = size + pad[0] + pad[1] - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad[0]:
            out -= 1
        return out
    return span // stride + 1


def spatial_out(shape: Shape, kernel: tuple[int, int], stride: tuple[int, int],
                padding: int | tuple[int, int] | list[int] | str,
                dilation: tuple[int, int] = (1, 1), ceil_mode: bool = False) -> tuple[int, int]:
    """Output (H, W) of a windowed layer; raises ShapeError when a side would fall below 1."""
    if shape.flat:
        raise ShapeError(f"needs a C×H×W feature map, got a flattened vector of {shape.c}")
    if padding == "same":
        pads = (same_padding(shape.h, kernel[0], stride[0], dilation[0]),
                same_padding(shape.w, kernel[1], stride[1], dilation[1]))
    elif padding == "valid":
        pads = ((0, 0), (0, 0))
    else:
        ph, pw = pair(padding)
        pads = ((ph, ph), (pw, pw))
    h = window_out(shape.h, kernel[0], stride[0], pads[0], dilation[0], ceil_mode)
    w = window_out(shape.w, kernel[1], stride[1], pads[1], dilation[1], ceil_mode)
    if h < 1 or w < 1:
        side = "H" if h < 1 else "W"
        raise ShapeError(
            f"the {side} side shrinks below 1: input {shape} with kernel "
            f"{kernel[0]}×{kernel[1]}, stride {stride[0]}×{stride[1]}, padding {padding!r}"
        )
    return h, w
