"""Structural layers: sequences, stages, repeats, parallel branches and residuals.

``parallel`` is the one graph node the evaluator knows: its branches run on the input (or on
the parts of a channel split) and one merge primitive joins them. Everything else expands to
a list of layers.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from costmodel import limits
from costmodel.layers.base import Block, Context, Layer, LayerSpec, PosInt, derived
from costmodel.layers.merge import MergeKind
from costmodel.shape import Shape


class Sequential(Block):
    """Layers applied in order. It is the block that an ``se`` inside it with ``of: block``
    is sized from: its input's channels are given to each such layer, through residuals and
    parallels but not into a nested block (which is that layer's own block)."""

    type: Literal["sequential"] = "sequential"
    layers: list[Layer] = Field(min_length=1)

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        bound = _for_block_input(self.layers, x.c)
        return self.layers if bound is None else bound


def _for_block_input(layers: list[LayerSpec], c: int) -> list[LayerSpec] | None:
    """``layers`` with each layer that needs its block's input (``needs_block_input``, an
    ``se`` with ``of: block``) given ``c`` channels, through branching nodes; None if none
    does (the common case: the list is used as it is)."""
    out, changed = [], False
    for layer in layers:
        new = layer
        if getattr(layer, "needs_block_input", False):
            new = layer.for_block_input(c)
        elif isinstance(layer, Residual):
            main, short = _for_block_input(layer.layers, c), _for_block_input(layer.shortcut, c)
            if main is not None or short is not None:
                new = layer.model_copy(update={"layers": main or layer.layers,
                                               "shortcut": short or layer.shortcut})
        elif isinstance(layer, Parallel):
            branches = [_for_block_input(b, c) for b in layer.branches]
            if any(b is not None for b in branches):
                new = layer.model_copy(update={"branches": [
                    b if b is not None else old for b, old in zip(branches, layer.branches)]})
        changed = changed or new is not layer
        out.append(new)
    return out if changed else None


class Stage(Sequential):
    """A named group of layers that analyses treat as one stage (data flow, scaling)."""

    type: Literal["stage"] = "stage"
    stage = True


class Repeat(Block):
    """``layers`` applied ``n`` times in a row; copy i is named ``i``.

    ``first`` overrides fields of the first copy's layers (``first: {stride: 2}``: the first
    block of a stage downsamples, as in MobileNet V2 / EfficientNet tables). A plain key sets
    that field of every layer of the repeat that has it; a dotted key is a path into the copy,
    as the copy's rows are named: ``main.conv1.stride`` (a ``residual``'s ``main`` or
    ``shortcut``, a ``sequential``'s layer by name or index, a ``parallel``'s branch), the last
    part a field; where the repeat has several layers, the path starts with one of them
    (``block.main.conv1.stride``). The model's depth multiplier d makes it ceil(n·d) copies
    (``depth_scaling: false`` opts out).
    """

    type: Literal["repeat"] = "repeat"
    n: PosInt
    layers: list[Layer] = Field(min_length=1)
    first: dict[str, Any] = {}
    depth_scaling: bool = True

    @model_validator(mode="after")
    def _first_applies(self):
        for key in self.first:
            if "." not in key and not any(key in type(layer).model_fields
                                          for layer in self.layers):
                raise ValueError(f"'first' sets '{key}', which no layer of the repeat has (a "
                                 f"dotted path, 'main.conv1.{key}', reaches inside a layer)")
        self.first_copy  # validated here, with the spec (and cached with it)
        return self

    def count(self, ctx: Context) -> int:
        """ceil(n·d) copies, refused over the REPEAT limit before any is made (a repeat of 10⁹
        would otherwise allocate gigabytes first)."""
        n = self.n * ctx.depth if self.depth_scaling else self.n
        if not n <= limits.REPEAT.value:  # written so that NaN is refused too
            scaled = f"{self.n:,} × depth {ctx.depth:g} = " if self.depth_scaling and \
                ctx.depth != 1 else ""
            found = f"{math.ceil(n):,}" if math.isfinite(n) else str(n)
            raise limits.REPEAT.exceeded(f"n: {scaled}{found}", field="n")
        return math.ceil(n)

    @cached_property
    def first_copy(self) -> list[LayerSpec]:
        """The first copy's layers, ``first`` applied and validated: once per repeat (the copy
        depends neither on the input nor on the width), when the spec is validated."""
        if not self.first:
            return self.layers
        copies = []
        for layer in self.layers:
            update = {k: v for k, v in self.first.items()
                      if "." not in k and k in type(layer).model_fields}
            data = {**layer.model_dump(exclude_unset=True), **update}
            copies.append(type(layer).model_validate(data) if update else layer)
        for key, value in self.first.items():
            if "." not in key:
                continue
            parts = key.split(".")
            i = 0
            if len(copies) > 1:  # the copy is a sequence: the path starts with its layer
                i = _select(copies, parts.pop(0), key, "the repeat")
            copies[i] = _set_path(copies[i], parts, value, key)
        return copies

    def expand(self, x: Shape, ctx: Context) -> list[LayerSpec]:
        bodies = [self.first_copy] + [self.layers] * (self.count(ctx) - 1)  # count checks n
        if len(self.layers) == 1:
            return [body[0].model_copy(update={"name": str(i)}) for i, body in enumerate(bodies)]
        return [derived(Sequential, name=str(i), layers=body) for i, body in enumerate(bodies)]


class Branching(LayerSpec):
    """A graph node: branches joined by one merge. The evaluator and the torch builder handle
    every subclass through ``branching()``."""

    def branching(self) -> tuple[list[str], list[list[Layer]], MergeKind,
                                 list[int] | Literal["half"] | None]:
        """(branch names, branches, merge, split)."""
        raise NotImplementedError  # pragma: no cover - abstract


class Parallel(Branching):
    """Branches on the same input, joined by ``merge``. An empty branch is the identity.

    With ``split`` (a list of channel counts, or ``half``) branch i gets part i of the input's
    channels instead of the whole input.
    """

    type: Literal["parallel"] = "parallel"
    branches: list[list[Layer]] = Field(min_length=1)
    merge: MergeKind
    split: list[PosInt] | Literal["half"] | None = None
    branch_names: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]] | None = None

    @model_validator(mode="after")
    def _check(self):
        n = len(self.branches)
        if self.branch_names is not None and len(self.branch_names) != n:
            raise ValueError(f"branch_names has {len(self.branch_names)} names for {n} branches")
        parts = 2 if self.split == "half" else (len(self.split) if self.split else n)
        if parts != n:
            raise ValueError(f"split makes {parts} parts for {n} branches")
        return self

    def branching(self):
        names = self.branch_names or [str(i) for i in range(len(self.branches))]
        return names, self.branches, self.merge, self.split


class Residual(Branching):
    """``layers`` (branch ``main``) plus a ``shortcut`` (identity unless given), joined by
    ``merge`` (add)."""

    type: Literal["residual"] = "residual"
    layers: list[Layer] = Field(min_length=1)
    shortcut: list[Layer] = []
    merge: MergeKind = "add"

    def branching(self):
        return ["main", "shortcut"], [self.layers, self.shortcut], self.merge, None


def _select(layers: list, part: str, key: str, owner: str) -> int:
    """The index of the layer named ``part`` (or numbered so) in ``layers``."""
    names = [(lay.get("name") if isinstance(lay, dict) else lay.name) or str(i)
             for i, lay in enumerate(layers)]
    if part in names:
        return names.index(part)
    raise ValueError(f"'first' sets '{key}': {owner} has no layer '{part}' "
                     f"(layers: {', '.join(names)})")


def _set_path(layer: LayerSpec, parts: list[str], value: Any, key: str) -> LayerSpec:
    """``layer`` with the field at the dotted path ``parts`` (inside it) set to ``value``,
    validated again."""
    from costmodel.layers import type_names

    data = layer.model_dump(exclude_unset=True)
    data.setdefault("type", layer.type)
    node: Any = data
    for j, part in enumerate(parts[:-1]):
        node = _child(node, part, key, ".".join(parts[:j]) or "the copy")
    field = parts[-1]
    cls = type_names().get(node.get("type")) if isinstance(node, dict) else None
    if cls is None or field not in cls.model_fields:
        import difflib

        close = difflib.get_close_matches(field, list(cls.model_fields) if cls else [], n=1)
        raise ValueError(f"'first' sets '{key}': a '{node.get('type')}' layer has no field "
                         f"'{field}'" + (f" (did you mean {close[0]}?)" if close else ""))
    node[field] = value
    try:
        return type(layer).model_validate(data)
    except ValueError as e:  # a ValidationError: the value does not fit the field
        errors = getattr(e, "errors", None)
        msg = errors(include_url=False)[0]["msg"] if errors else str(e)
        raise ValueError(f"'first' sets '{key}' to {value!r}: {msg}") from None


def _child(node: dict, part: str, key: str, where: str) -> dict:
    """The layer (as a mapping) that path part ``part`` names inside ``node``: a residual's
    ``main``/``shortcut`` then a layer of it, a parallel's branch then a layer of it, or a
    layer of a sequential, stage or repeat."""
    t = node.get("type")
    if t == "residual" and part in ("main", "shortcut"):
        items = node.setdefault("layers" if part == "main" else "shortcut", [])
        return {"type": "sequential", "layers": items}  # the list, edited in place
    if t == "parallel":
        names = node.get("branch_names") or [str(i) for i in range(len(node["branches"]))]
        if part in names:
            return {"type": "sequential", "layers": node["branches"][names.index(part)]}
    if isinstance(node.get("layers"), list) and t != "residual":
        return node["layers"][_select(node["layers"], part, key, f"'{where}'")]
    parts = "main, shortcut" if t == "residual" else "none"
    raise ValueError(f"'first' sets '{key}': '{where}' ({t}) has no part '{part}' "
                     f"(parts: {parts})")
