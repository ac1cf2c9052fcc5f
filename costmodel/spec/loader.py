"""Reading spec files: YAML or JSON → variants and ``$vars`` applied → a validated ModelSpec.

Every failure becomes a SpecError naming the file, the layer path and the field.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from costmodel.errors import SpecError, UnknownModelError
from costmodel.layers.base import MAX_MULTIPLIER
from costmodel.spec import cache
from costmodel.spec.model import ModelSpec

def read_document(file: Path) -> dict[str, Any]:
    """Parse a YAML or JSON spec file into a mapping (strictly: see costmodel.documents)."""
    from costmodel import documents  # here: a cached spec is never read, so never parsed

    data = documents.read(file, SpecError)
    if not isinstance(data, dict):
        raise SpecError("a spec must be a mapping with at least 'name' and 'layers'",
                        file=str(file))
    return data


def group_variant_names(pieces: list[str], declared: dict[str, Any]) -> list[str]:
    """Join name pieces that spell a declared variant whose name holds ``_`` or ``-``:
    ``shufflenet_v2_x0_5`` reaches the spec as pieces ``x0``, ``5``, i.e. the variant
    ``x0_5``. Longest match first; other pieces stay as they are."""
    names = {str(k).lower().replace("_", "-"): k for k in declared}
    grouped, i = [], 0
    while i < len(pieces):
        for j in range(len(pieces), i, -1):
            key = "-".join(pieces[i:j]).lower()
            if key in names:
                grouped.append(names[key])
                i = j
                break
        else:
            grouped.append(pieces[i])
            i += 1
    return grouped


_NUMBER = re.compile(r"\d+(\.\d*)?|\.\d+")  # no sign, exponent, "_", nan or inf


def apply_variants(data: dict[str, Any], pieces: list[str], file: str) -> dict[str, Any]:
    """Apply name suffixes: each is a declared variant or, if numeric, a width multiplier."""
    data = dict(data)
    declared = _mapping(data.get("variants"), "variants", file)
    pieces = group_variant_names(pieces, declared)
    for piece in pieces:
        if piece in declared:
            override = dict(_mapping(declared[piece], f"variants.{piece}", file))
        elif _NUMBER.fullmatch(piece):
            width = float(piece)
            if not 0 < width <= MAX_MULTIPLIER:
                raise UnknownModelError(
                    f"the suffix '{piece}' of '{data.get('name')}-{piece}' is a width "
                    f"multiplier, which must be greater than 0 and at most "
                    f"{MAX_MULTIPLIER:g}", file=file, field="width")
            override = {"width": width}
        else:
            hint = difflib.get_close_matches(piece, list(declared), n=3)
            known = ", ".join(declared) or "none"
            raise UnknownModelError(
                f"'{data.get('name')}' has no variant '{piece}'"
                + (f" (did you mean {', '.join(hint)}?)" if hint else f"; variants: {known}")
                + "; a numeric suffix is a width multiplier (0.5)", file=file)
        override.pop("description", None)
        data["vars"] = {**_mapping(data.get("vars"), "vars", file),
                        **_mapping(override.pop("vars", None), f"variants.{piece}.vars", file)}
        data.update(override)
    if pieces:
        data["name"] = "-".join([str(data.get("name", "")), *pieces])
    return data


def _mapping(value: Any, field: str, file: str) -> dict[str, Any]:
    """``value`` as a mapping (None is empty), or a SpecError naming the field."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"must be a mapping, not {type(value).__name__}", file=file,
                        field=field)
    return value


def substitute_vars(node: Any, variables: dict[str, Any], file: str, where: str = "",
                    field: str = "") -> Any:
    """Replace every string ``$name`` in the tree by ``variables[name]``. ``where`` is the
    layer path of ``node`` and ``field`` its field: the walk names layers as errors do."""
    if isinstance(node, str) and node.startswith("$"):
        key = node[1:]
        if key not in variables:
            raise SpecError(f"unknown variable '{node}' (defined: {', '.join(variables) or 'none'})",
                            file=file, path=where or None, field=field or None)
        return variables[key]
    if isinstance(node, list):
        return [substitute_vars(v, variables, file, where, field) for v in node]
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if not field and k in _STRUCTURAL and isinstance(v, list):  # a layer's sub-layers
                out[k] = _substitute_layers(str(k), v, node, variables, file, where)
            else:
                out[k] = substitute_vars(v, variables, file, where,
                                         f"{field}.{k}" if field else str(k))
        return out
    return node


def _substitute_layers(key: str, items: list, parent: dict, variables: dict[str, Any],
                       file: str, where: str) -> list:
    def layers(items: list, where: str) -> list:
        return [substitute_vars(item, variables, file, _join(where, _label(item, i)))
                for i, item in enumerate(items)]

    if key == "branches":  # a list of bare lists of layers, named by branch_names
        names = parent.get("branch_names")
        names = names if isinstance(names, list) else []
        return [layers(b, _join(where, str(names[j]) if j < len(names) else str(j)))
                if isinstance(b, list) else substitute_vars(b, variables, file, where, key)
                for j, b in enumerate(items)]
    return layers(items, _join(where, "shortcut") if key == "shortcut" else where)


def _label(item: Any, index: int) -> str:
    return str(item.get("name") or index) if isinstance(item, dict) else str(index)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


_STRUCTURAL = {"layers", "branches", "shortcut", "nodes"}  # nodes: a graph's


class _Blocks:
    """Expands the uses of a spec's ``blocks`` definitions (see ``expand_blocks``)."""

    def __init__(self, defs: dict[str, Any], variables: dict[str, Any], file: str):
        from costmodel import limits
        from costmodel.spec.model import BlockDef

        self.file, self.variables = file, variables
        self.defs: dict[str, BlockDef] = {}
        self.sizes: dict[str, int] = {}
        self.nodes = 0  # nodes made by expansion so far, against YAML_NODES
        self.uses: dict[str, str] = {}  # layer path of each use → the definition it uses
        self.max_nodes, self.max_depth = limits.YAML_NODES.value, limits.NESTING.value
        from costmodel.layers import type_names

        types = type_names()
        for name, body in defs.items():
            if name in types:
                raise SpecError(f"a block cannot be named '{name}': it is a layer type",
                                file=file, field=f"blocks.{name}")
            try:
                self.defs[name] = BlockDef.model_validate(body)
            except ValidationError as e:
                err = e.errors(include_url=False)[0]
                where = ".".join(str(k) for k in err["loc"])
                raise SpecError(_message(err) if err["type"] != "extra_forbidden" else
                                f"unknown field '{err['loc'][-1]}' (fields: description, "
                                f"params, stage, layers)", file=file,
                                field=f"blocks.{name}" + (f".{where}" if where else "")
                                ) from None
            self.sizes[name] = _size(body.get("layers"))

    def definition(self, item: Any) -> str | None:
        """The definition a layer uses (its ``type``, or the spec variable that ``type``
        names), or None."""
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            return None
        t = item["type"]
        if t.startswith("$") and isinstance(self.variables.get(t[1:]), str):
            t = self.variables[t[1:]]
        return t if t in self.defs else None

    def layers(self, items: Any, where: str, stack: tuple[str, ...]) -> Any:
        if not isinstance(items, list):
            return items
        return [self.layer(item, _join(where, _label(item, i)), stack)
                for i, item in enumerate(items)]

    def layer(self, item: Any, where: str, stack: tuple[str, ...]) -> Any:
        if not isinstance(item, dict):
            return item
        used = self.definition(item)
        if used is not None:
            return self.use(used, item, where, stack)
        out = dict(item)
        for key in ("layers", "shortcut"):
            if isinstance(out.get(key), list):
                out[key] = self.layers(out[key], _join(where, "shortcut") if key == "shortcut"
                                       else where, stack)
        if isinstance(out.get("branches"), list):
            names = out.get("branch_names")
            names = names if isinstance(names, list) else []
            out["branches"] = [self.layers(b, _join(where, str(names[j]) if j < len(names)
                                                    else str(j)), stack)
                               for j, b in enumerate(out["branches"])]
        if isinstance(out.get("first"), dict):  # a repeat's first copy may set layer lists
            out["first"] = {k: self.layers(v, where, stack) if isinstance(v, list) else v
                            for k, v in out["first"].items()}
        return out

    def use(self, name: str, item: dict, where: str, stack: tuple[str, ...]) -> dict:
        """One use: the definition's layers, params bound, uses inside them expanded, as a
        ``sequential`` (or ``stage``) named by the use."""
        at = {"file": self.file, "path": where or None}
        if name in stack:
            chain = " → ".join([*stack[stack.index(name):], name])
            raise SpecError(f"block '{name}' uses itself ({chain})", **at, field="type")
        if len(stack) >= self.max_depth:
            from costmodel import limits

            raise limits.NESTING.exceeded(f"blocks used inside blocks {len(stack) + 1:,} deep",
                                          **at)
        definition = self.defs[name]
        given = {k: v for k, v in item.items() if k not in ("type", "name")}
        for key in given:
            if key not in definition.params:
                close = difflib.get_close_matches(key, list(definition.params), n=1)
                raise SpecError(
                    f"block '{name}' has no parameter '{key}'" + (
                        f" (did you mean {close[0]}?)" if close else
                        f" (parameters: {', '.join(definition.params) or 'none'})"),
                    **at, field=key)
        values = {**definition.params, **given}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise SpecError(f"block '{name}' needs {', '.join(map(repr, missing))} "
                            f"(a parameter without a default)", **at, field=missing[0])
        # every use copies the body: counted like a YAML alias, before the copy is made
        self.nodes += self.sizes[name]
        if self.nodes > self.max_nodes:
            from costmodel import limits

            raise limits.YAML_NODES.exceeded(f"{self.nodes:,} after expanding blocks", **at)
        body = _bind(definition.layers, values)
        self.uses.setdefault(where, name)
        out: dict[str, Any] = {"type": "stage" if definition.stage else "sequential"}
        if "name" in item:
            out["name"] = item["name"]
        out["layers"] = self.layers(body, where, (*stack, name))
        return out


def _bind(node: Any, values: dict[str, Any]) -> Any:
    """``node`` with every string ``$p`` naming a param replaced by its value; other
    ``$names`` (the spec's vars) are left for ``substitute_vars``."""
    if isinstance(node, str) and node.startswith("$") and node[1:] in values:
        return values[node[1:]]
    if isinstance(node, list):
        return [_bind(v, values) for v in node]
    if isinstance(node, dict):
        return {k: _bind(v, values) for k, v in node.items()}
    return node


def _size(node: Any) -> int:
    """Nodes in a parsed document (as YAML_NODES counts them)."""
    if isinstance(node, list):
        return 1 + sum(_size(v) for v in node)
    if isinstance(node, dict):
        return 1 + sum(_size(v) for v in node.values())
    return 1


def expand_blocks(data: dict[str, Any], variables: dict[str, Any],
                  file: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``data`` with each use of a ``blocks`` definition (a layer whose ``type`` names one)
    replaced by the definition's layers, its params substituted, as a ``sequential`` named
    by the use. A definition may use another; one that uses itself is refused, and the copies
    count against YAML_NODES (as aliases do), their nesting against NESTING. Also returns
    the layer path of each use and the definition it uses (for ``in_block``)."""
    defs = _mapping(data.get("blocks"), "blocks", file)
    if not defs:
        return data, {}
    blocks = _Blocks(defs, variables, file)
    return {**data, "layers": blocks.layers(data.get("layers"), "", ())}, blocks.uses


def in_block(error: SpecError, uses: dict[str, str]) -> SpecError:
    """``error``, about a layer inside a use of a definition, also naming the definition."""
    path = error.path or ""
    inside = [u for u in uses if u and path.startswith(u + ".")]
    if inside:
        use = max(inside, key=len)
        error.message += f" (in block '{uses[use]}', used as '{use}')"
        error.args = (error.message,)
    return error


def _error_location(data: dict[str, Any], loc: tuple,
                    unknown_field: bool = False) -> tuple[str | None, str | None]:
    """Turn a Pydantic error location into (layer path, field) using the layers' names. For
    an unknown field (``unknown_field``), the location's last element is its name."""
    node: Any = data
    path: list[str] = []
    i = 0
    branch_names: list[str] | None = None
    while i < len(loc):
        key = loc[i]
        if key in _STRUCTURAL and isinstance(node, dict) and i + 1 < len(loc) \
                and isinstance(loc[i + 1], int):
            items = node.get(key) or []
            idx = loc[i + 1]
            if key == "branches":
                names = branch_names or []
                path.append(names[idx] if idx < len(names) else str(idx))
                node = {"layers": items[idx] if idx < len(items) else []}
                # a branch is a bare list: the next index picks a layer in it
                if i + 2 < len(loc) and isinstance(loc[i + 2], int):
                    loc = loc[: i + 2] + ("layers",) + loc[i + 2:]
                i += 2
                continue
            item = items[idx] if isinstance(items, list) and idx < len(items) else {}
            if key == "shortcut":
                path.append("shortcut")
            path.append(str(item.get("name") or idx) if isinstance(item, dict) else str(idx))
            node = item if isinstance(item, dict) else {}
            branch_names = node.get("branch_names") if isinstance(node, dict) else None
            i += 2
            # discriminated unions add the tag (the layer's type) to the location
            if i < len(loc) and isinstance(node, dict) and loc[i] == node.get("type"):
                i += 1
            continue
        break
    # drop the labels Pydantic gives union members ("constrained-int", "list[...]"), but
    # never the name of an unknown field, which may look like one ("kernel-size", "int")
    last = len(loc) - 1 if unknown_field else len(loc)
    rest = [str(k) for j, k in enumerate(loc[i:], i) if j == last or not _is_type_label(k)]
    return (".".join(path) or None), (".".join(rest) or None)


def _is_type_label(key) -> bool:
    k = str(key)
    return (not isinstance(key, int)) and ("[" in k or "-" in k or k in
                                            ("int", "str", "float", "bool", "list", "dict"))


def validate_spec(data: dict[str, Any], file: str) -> ModelSpec:
    """Validate a parsed document into a ModelSpec, or raise one SpecError listing the problems."""
    blocks = list(data.get("blocks") or {}) if isinstance(data.get("blocks"), dict) else []
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as e:
        problems: list[tuple[str | None, str | None, str]] = []
        seen: set[tuple] = set()
        for err in e.errors(include_url=False):
            path, field = _error_location(data, tuple(err["loc"]),
                                          unknown_field=err["type"] == "extra_forbidden")
            if (path, field) not in seen and len(problems) < 5:  # one message per field
                seen.add((path, field))
                problems.append((path, field, _message(err, blocks)))
        if len(problems) == 1:
            path, field, msg = problems[0]
            raise SpecError(msg, file=file, path=path, field=field) from None
        lines = [": ".join(([f"layer '{p}'"] if p else []) + ([f"field '{f}'"] if f else []) + [m])
                 for p, f, m in problems]
        if len(seen) > len(problems):
            lines.append(f"... and {len(seen) - len(problems)} more")
        raise SpecError("invalid spec:\n  " + "\n  ".join(lines), file=file) from None


def _message(err: dict[str, Any], blocks: list[str] = ()) -> str:
    if err["type"] == "extra_forbidden":
        loc = tuple(err["loc"])
        close = difflib.get_close_matches(str(loc[-1]), _fields_at(loc[:-1]), n=1)
        return f"unknown field '{loc[-1]}'" + (f" (did you mean {close[0]}?)" if close else "")
    if err["type"] == "union_tag_invalid":
        from costmodel.layers import type_names
        tag = err.get("ctx", {}).get("tag")
        close = difflib.get_close_matches(str(tag), [*type_names(), *blocks], n=3)
        return f"unknown layer type '{tag}'" + (
            f" (did you mean {', '.join(close)}?)" if close else "")
    if err["type"] == "union_tag_not_found":
        return "each layer needs a 'type'"
    return err["msg"]


def _fields_at(loc: tuple) -> list[str]:
    """The fields of the model a Pydantic location ``loc`` ends in (for "did you mean"):
    followed from ModelSpec through fields holding models, a layer's ``type`` tag (which
    discriminated unions put in the location) naming its class."""
    from costmodel.layers import type_names

    tags = type_names()
    cls: Any = ModelSpec
    for key in loc:
        if isinstance(key, str) and key in tags:
            cls = tags[key]
        elif isinstance(key, str) and cls is not None and key in cls.model_fields:
            cls = _model_in(cls.model_fields[key].annotation)
    return [] if cls is None else list(cls.model_fields)


def _model_in(annotation: Any) -> Any:
    """The first Pydantic model class in a type (``dict[str, Variant]`` → Variant), or None."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_spec(file: str | Path, variants: list[str] | None = None,
              vars: dict[str, Any] | None = None) -> ModelSpec:
    """Load and validate a spec file, with optional variant suffixes applied, then ``vars``
    overriding declared variables (a sweep over groups).

    Validated specs are cached (see costmodel.spec.cache): a file whose bytes have not changed
    since it was last validated is not parsed or validated again.
    """
    file = Path(file)
    variants = list(variants or [])
    vars = dict(vars or {})
    key = [*variants, *(f"${k}={v!r}" for k, v in sorted(vars.items()))]  # "$" names no variant
    entry = cache.Entry(file, key)  # hashes the file's bytes, before they are parsed
    cached = entry.load()
    if cached is not None:
        return cached
    spec = _load_uncached(file, variants, vars)
    entry.store(spec)  # only if the file still holds the bytes hashed above
    return spec


def _load_uncached(file: Path, variants: list[str], overrides: dict[str, Any]) -> ModelSpec:
    data = read_document(file)
    data = apply_variants(data, variants, str(file))
    variables = dict(_mapping(data.get("vars"), "vars", str(file)))
    for key in overrides:
        if key not in variables:
            raise SpecError(f"the spec declares no variable '{key}' "
                            f"(declared: {', '.join(variables) or 'none'})", file=str(file))
    variables.update(overrides)
    data["vars"] = variables
    # a variable may name another ("c1: $c1_small"), so variants can combine
    variables = {k: substitute_vars(v, variables, str(file), field=f"vars.{k}")
                 for k, v in variables.items()}
    data, uses = expand_blocks(data, variables, str(file))
    kept = ("vars", "variants", "blocks")
    try:
        done = substitute_vars({k: v for k, v in data.items() if k not in kept}, variables,
                               str(file))
    except SpecError as e:
        raise in_block(e, uses) from None
    data = {k: v if k in kept else done[k] for k, v in data.items()}
    data.setdefault("name", file.stem)
    from costmodel.spec.zoo import canonical_name, is_zoo_file  # here: zoo imports this module
    if is_zoo_file(file):  # one spelling in every output: the zoo's, with its variants
        data["name"] = canonical_name(file, variants)
    try:
        spec = validate_spec(data, str(file))
    except SpecError as e:
        raise in_block(e, uses) from None
    spec._file = str(file)
    return spec


def layers_spec(layers: list[dict], *, input: int | tuple[int, int], in_channels: int = 3,
                name: str = "layers", **model: object) -> ModelSpec:
    """A throwaway model made of ``layers`` (spec mappings, as in a spec file's ``layers``) on
    an ``in_channels``×``input`` input (N or (H, W)); ``model`` adds other spec fields
    (``width``…). Validated like a spec file named ``<name>``."""
    size = list(input) if isinstance(input, (tuple, list)) else input
    return validate_spec({"name": name, "input": size, "in_channels": in_channels,
                          "layers": layers, **model}, f"<{name}>")
