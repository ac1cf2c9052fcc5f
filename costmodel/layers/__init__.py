"""Layer types of the spec language.

Each module here defines layer types (Pydantic models with a literal ``type``) next to the
closed-form formulas they use. Adding a layer type means adding one module: the union of layer
types is built from whatever the modules define, when a spec is first validated. Until then
only the modules a command touches are imported (a cached spec imports its own layers' modules
as it is unpickled), which keeps a cold ``costmodel compare`` short.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field

from costmodel.layers.base import Block, Context, Cost, Layer, LayerSpec, Primitive, Rounding
from costmodel.layers.structure import Branching


def _concrete(cls: type) -> list[type[LayerSpec]]:
    found = []
    for sub in cls.__subclasses__():
        if "type" in sub.model_fields:
            found.append(sub)
        found.extend(_concrete(sub))
    return list(dict.fromkeys(found))


@functools.cache
def layer_types() -> tuple[type[LayerSpec], ...]:
    """Every layer type (every module of this package imported, once)."""
    for module in sorted(p.stem for p in Path(__file__).parent.glob("*.py")):
        if module != "__init__":
            importlib.import_module(f"{__name__}.{module}")
    return tuple(_concrete(LayerSpec))


@functools.cache
def layer_union() -> Any:
    """The type ``Layer`` stands for: the union of every layer type, told apart by ``type``."""
    return Annotated[Union[layer_types()], Field(discriminator="type")]  # type: ignore[valid-type]


def type_names() -> dict[str, type[LayerSpec]]:
    """Every ``type`` tag and the class it selects."""
    names = {}
    for cls in layer_types():
        tags = cls.model_fields["type"].annotation.__args__
        names.update({tag: cls for tag in tags})
    return names


__all__ = ["Block", "Branching", "Context", "Cost", "Layer", "LayerSpec", "Primitive",
           "Rounding", "layer_types", "layer_union", "type_names"]
