"""Layer types of the spec language.

Each module here defines layer types (Pydantic models with a literal ``type``) next to the
closed-form formulas they use. Adding a layer type means adding one module: the union below
is built from whatever the modules define.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Union

from pydantic import Field

from costmodel.layers.base import Block, Context, Cost, LayerSpec, Primitive, Rounding
from costmodel.layers.structure import Branching

for _module in sorted(p.stem for p in Path(__file__).parent.glob("*.py")):
    if _module != "__init__":
        importlib.import_module(f"{__name__}.{_module}")


def _concrete(cls: type) -> list[type[LayerSpec]]:
    found = []
    for sub in cls.__subclasses__():
        if "type" in sub.model_fields:
            found.append(sub)
        found.extend(_concrete(sub))
    return list(dict.fromkeys(found))


LAYER_TYPES: tuple[type[LayerSpec], ...] = tuple(_concrete(LayerSpec))
Layer = Annotated[Union[LAYER_TYPES], Field(discriminator="type")]  # type: ignore[valid-type]
"""Any layer of a spec, told apart by its ``type``."""

# Layers that hold layers name the union as "Layer"; their schemas are built on first use
# (defer_build), when the name resolves in their module.
for _cls in LAYER_TYPES:
    setattr(importlib.import_module(_cls.__module__), "Layer", Layer)


def type_names() -> dict[str, type[LayerSpec]]:
    """Every ``type`` tag and the class it selects."""
    names = {}
    for cls in LAYER_TYPES:
        tags = cls.model_fields["type"].annotation.__args__
        names.update({tag: cls for tag in tags})
    return names


__all__ = ["Block", "Branching", "Context", "Cost", "Layer", "LAYER_TYPES", "LayerSpec",
           "Primitive", "Rounding", "type_names"]
