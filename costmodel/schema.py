"""The JSON Schema of the spec language, for editors (VS Code's YAML extension and others
that read ``# yaml-language-server: $schema=...``) and validators.

It is Pydantic's schema of ``ModelSpec`` (the layer union told apart by ``type``, through a
``discriminator`` mapping), with one addition: a spec may write ``$name`` for any value
outside ``vars`` and ``variants`` (substituted before validation, see
``costmodel.spec.loader``), so every such value also accepts a ``$``-string, and a layer
whose ``type`` is a variable (``{type: $block, planes: 64}``) is accepted as it stands — its
fields are checked once the variable is known, by ``costmodel show``.
"""

from __future__ import annotations

from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"  # the dialect Pydantic writes
VARIABLE = {"type": "string", "pattern": r"^\$", "description": "A variable from 'vars' ($name)."}
VARIABLE_LAYER = {"type": "object", "required": ["type"], "properties": {"type": VARIABLE},
                  "description": "A layer whose type is a variable from 'vars'."}
_LITERAL_ONLY = {"vars", "variants", "type"}  # values the loader does not substitute


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (a dict ready for ``json.dumps``)."""
    from costmodel.spec.model import ModelSpec

    schema = ModelSpec.model_json_schema()
    schema["required"] = [k for k in schema["required"] if k != "name"]  # the file's stem
    for owner in [schema, *(d for k, d in schema["$defs"].items() if k != "Variant")]:
        for name, prop in owner.get("properties", {}).items():
            if name not in _LITERAL_ONLY:
                owner["properties"][name] = _or_variable(prop)
    return {"$schema": DIALECT, **_layer_or_variable(schema), "title": "costmodel spec"}


def _layer_or_variable(node: Any) -> Any:
    """``node`` with every layer union (a ``discriminator`` on ``type``) also accepting a
    layer whose type is a variable."""
    if isinstance(node, list):
        return [_layer_or_variable(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _layer_or_variable(v) for k, v in node.items()}
    if "discriminator" in node:
        return {"anyOf": [node, VARIABLE_LAYER]}
    return node


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
