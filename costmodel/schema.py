"""The JSON Schema of the spec language, for editors (VS Code's YAML extension and others
that read ``# yaml-language-server: $schema=...``) and validators.

It is Pydantic's schema of ``ModelSpec`` (the layer union told apart by ``type``, through a
``discriminator`` mapping), with one addition: a spec may write ``$name`` for any value
outside ``vars`` and ``variants`` (substituted before validation, see
``costmodel.spec.loader``), so every such value also accepts a ``$``-string.
"""

from __future__ import annotations

from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"  # the dialect Pydantic writes
VARIABLE = {"type": "string", "pattern": r"^\$", "description": "A variable from 'vars' ($name)."}
_LITERAL_ONLY = {"vars", "variants", "type"}  # values the loader does not substitute


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (a dict ready for ``json.dumps``)."""
    from costmodel.spec.model import ModelSpec

    schema = ModelSpec.model_json_schema()
    for owner in [schema, *(d for k, d in schema["$defs"].items() if k != "Variant")]:
        for name, prop in owner.get("properties", {}).items():
            if name not in _LITERAL_ONLY:
                owner["properties"][name] = _or_variable(prop)
    return {"$schema": DIALECT, "title": "costmodel spec", **schema}


def _or_variable(prop: dict[str, Any]) -> dict[str, Any]:
    """``prop`` that also accepts ``$name``, at its top and in its lists' items (annotations
    such as title and default stay at the top, where editors look for them)."""
    notes = {k: prop[k] for k in ("title", "default", "description") if k in prop}
    body = {k: v for k, v in prop.items() if k not in notes}
    return {**notes, "anyOf": [_items_or_variable(body), VARIABLE]}


def _items_or_variable(body: dict[str, Any]) -> dict[str, Any]:
    if "items" in body:
        items = body["items"]
        # a list of layers keeps its discriminated union intact: a layer is never a $name
        if "discriminator" not in items and "$ref" not in items:
            body = {**body, "items": {"anyOf": [items, VARIABLE]}}
    if "anyOf" in body:
        body = {**body, "anyOf": [_items_or_variable(b) for b in body["anyOf"]]}
    return body
