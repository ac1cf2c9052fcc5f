"""Reading spec files: YAML or JSON → variants and ``$vars`` applied → a validated ModelSpec.

Every failure becomes a SpecError naming the file, the layer path and the field.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from costmodel.errors import SpecError, UnknownModelError
from costmodel.spec import cache
from costmodel.spec.model import ModelSpec

def read_document(file: Path) -> dict[str, Any]:
    """Parse a YAML or JSON file into a mapping."""
    import yaml  # here, not at start-up: a cached spec needs no parsing

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's is ~10× faster
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(f"cannot read the file: {e.strerror or e}", file=str(file)) from None
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=loader)
    except json.JSONDecodeError as e:
        raise SpecError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                        file=str(file)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(f"invalid YAML{where}: {problem}", file=str(file)) from None
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


def apply_variants(data: dict[str, Any], pieces: list[str], file: str) -> dict[str, Any]:
    """Apply name suffixes: each is a declared variant or, if numeric, a width multiplier."""
    data = dict(data)
    declared = data.get("variants") or {}
    pieces = group_variant_names(pieces, declared)
    for piece in pieces:
        if piece in declared:
            override = dict(declared[piece] or {})
        else:
            try:
                override = {"width": float(piece)}
            except ValueError:
                hint = difflib.get_close_matches(piece, list(declared), n=3)
                known = ", ".join(declared) or "none"
                raise UnknownModelError(
                    f"'{data.get('name')}' has no variant '{piece}'"
                    + (f" (did you mean {', '.join(hint)}?)" if hint else f"; variants: {known}"),
                    file=file) from None
        override.pop("description", None)
        data["vars"] = {**(data.get("vars") or {}), **(override.pop("vars", None) or {})}
        data.update(override)
    if pieces:
        data["name"] = "-".join([str(data.get("name", "")), *pieces])
    return data


def substitute_vars(node: Any, variables: dict[str, Any], file: str, where: str = "") -> Any:
    """Replace every string ``$name`` in the layer tree by ``variables[name]``."""
    if isinstance(node, str) and node.startswith("$"):
        key = node[1:]
        if key not in variables:
            raise SpecError(f"unknown variable '{node}' (defined: {', '.join(variables) or 'none'})",
                            file=file, path=where or None)
        return variables[key]
    if isinstance(node, list):
        return [substitute_vars(v, variables, file, where) for v in node]
    if isinstance(node, dict):
        return {k: substitute_vars(v, variables, file, where) for k, v in node.items()}
    return node


_STRUCTURAL = {"layers", "branches", "shortcut"}


def _error_location(data: dict[str, Any], loc: tuple) -> tuple[str | None, str | None]:
    """Turn a Pydantic error location into (layer path, field) using the layers' names."""
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
    # drop the labels Pydantic gives union members ("constrained-int", "list[...]")
    rest = [str(k) for k in loc[i:] if not _is_type_label(k)]
    return (".".join(path) or None), (".".join(rest) or None)


def _is_type_label(key) -> bool:
    k = str(key)
    return (not isinstance(key, int)) and ("[" in k or "-" in k or k in
                                            ("int", "str", "float", "bool", "list", "dict"))


def validate_spec(data: dict[str, Any], file: str) -> ModelSpec:
    """Validate a parsed document into a ModelSpec, or raise one SpecError listing the problems."""
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as e:
        problems: list[tuple[str | None, str | None, str]] = []
        seen: set[tuple] = set()
        for err in e.errors(include_url=False):
            path, field = _error_location(data, tuple(err["loc"]))
            if (path, field) not in seen and len(problems) < 5:  # one message per field
                seen.add((path, field))
                problems.append((path, field, _message(err)))
        if len(problems) == 1:
            path, field, msg = problems[0]
            raise SpecError(msg, file=file, path=path, field=field) from None
        lines = [": ".join(([f"layer '{p}'"] if p else []) + ([f"field '{f}'"] if f else []) + [m])
                 for p, f, m in problems]
        if len(seen) > len(problems):
            lines.append(f"... and {len(seen) - len(problems)} more")
        raise SpecError("invalid spec:\n  " + "\n  ".join(lines), file=file) from None


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "union_tag_invalid":
        from costmodel.layers import type_names
        tag = err.get("ctx", {}).get("tag")
        close = difflib.get_close_matches(str(tag), list(type_names()), n=3)
        return f"unknown layer type '{tag}'" + (
            f" (did you mean {', '.join(close)}?)" if close else "")
    if err["type"] == "union_tag_not_found":
        return "each layer needs a 'type'"
    return err["msg"]


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
    variables = dict(data.get("vars") or {})
    for key in overrides:
        if key not in variables:
            raise SpecError(f"the spec declares no variable '{key}' "
                            f"(declared: {', '.join(variables) or 'none'})", file=str(file))
    variables.update(overrides)
    data["vars"] = variables
    # a variable may name another ("c1: $c1_small"), so variants can combine
    variables = {k: substitute_vars(v, variables, str(file)) for k, v in variables.items()}
    data = {k: v if k in ("vars", "variants") else substitute_vars(v, variables, str(file))
            for k, v in data.items()}
    data.setdefault("name", file.stem)
    spec = validate_spec(data, str(file))
    spec._file = str(file)
    return spec
