"""Reading a spec or budgets file into Python data, strictly: one pipeline for YAML and JSON.

``read(file, error)`` returns the document's data or raises ``error`` (SpecError, BudgetError…)
naming the file and, where the problem has one, the line and column. It refuses what YAML and
JSON would otherwise accept silently or crash on:

- a file that is not UTF-8 (the byte offset is named; UTF-16/32 is recognised by its BOM), not
  a regular file, unreadable, or larger than ``limits.FILE_BYTES``;
- duplicate keys (YAML and JSON would keep the last one);
- NaN and infinity, and integers longer than ``limits.INT_DIGITS`` digits;
- nesting deeper than ``limits.NESTING``, and more than ``limits.YAML_NODES`` nodes with every
  YAML alias counted at each use — measured on the composed node graph, where an alias is a
  shared node, so an alias bomb is refused in linear time and nothing is expanded (a text
  over 64 KiB is counted before it is composed or parsed, so a wide one is refused early);
- recursive aliases (``&a [*a]``).

Limit violations raise ``LimitError`` (the limit and its variable named); everything else
raises the caller's error class, so a message keeps its kind.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from costmodel import limits
from costmodel.errors import CostModelError

_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
         (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


class _Refused(Exception):
    """A value the strict loaders refuse, with where it is (raised inside yaml/json, turned
    into the caller's error class by ``read``)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 limit: limits.Limit | None = None):
        super().__init__(message)
        self.message, self.line, self.column, self.limit = message, line, column, limit

    def at(self) -> str:
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column else "")


def read(file: str | Path, error: type[CostModelError], what: str = "file") -> Any:
    """The data of a YAML or JSON file (JSON when the name ends in ``.json``); ``what`` names
    the file in "cannot read the …" messages."""
    file = Path(file)
    text = decode(read_bytes(file, error, what), file, error)
    try:
        if file.suffix.lower() == ".json":
            return _load_json(text, file, error)
        return _load_yaml(text, file, error)
    except _Refused as e:
        at = e.at()
        if e.limit is not None:
            raise e.limit.exceeded(e.message + (f" at {at}" if at else ""),
                                   file=str(file)) from None
        raise error((f"{at}: " if at else "") + e.message, file=str(file)) from None


def os_reason(e: OSError) -> str:
    """``permission denied`` for an OSError, without the path (the message names the file)."""
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, IsADirectoryError):
        return "it is a directory, not a file"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    return e.strerror.lower() if e.strerror else str(e)


def read_bytes(file: Path, error: type[CostModelError], what: str = "file") -> bytes:
    """The file's bytes, at most ``limits.FILE_BYTES``; only a regular file is opened for
    reading (a FIFO would block, a device never end)."""
    try:
        st = os.stat(file)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):
            raise error(f"cannot read the {what}: not a regular file (a FIFO, socket or device)",
                        file=str(file))
        limits.FILE_BYTES.check(st.st_size, file=str(file))
        with open(file, "rb") as f:
            data = f.read(limits.FILE_BYTES.value + 1)  # the file may have grown since stat
    except OSError as e:
        raise error(f"cannot read the {what}: {os_reason(e)}", file=str(file)) from None
    limits.FILE_BYTES.check(len(data), file=str(file))
    return data


def decode(data: bytes, file: Path, error: type[CostModelError]) -> str:
    """UTF-8 (with or without a BOM) → text; anything else is refused with where it goes wrong."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            raise error(f"the file is {encoding} (it starts with a {encoding} byte-order mark); "
                        "save it as UTF-8", file=str(file))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise error(f"not UTF-8: byte 0x{data[e.start]:02X} at offset {e.start} (line {line}); "
                    "save the file as UTF-8", file=str(file)) from None
    nul = data.find(b"\0")
    if nul >= 0:  # UTF-16 without a BOM decodes as UTF-8 with a NUL in every other byte
        line = data[:nul].count(b"\n") + 1
        raise error(f"a NUL character at offset {nul} (line {line}): "
                    "the file is binary or UTF-16; save it as UTF-8 text", file=str(file))
    return text


# --- YAML ---------------------------------------------------------------------------------

_LOADER: type | None = None


def _loader() -> type:
    """The strict SafeLoader, built on first use (``import yaml`` costs start-up time).

    libyaml's CSafeLoader parses and composes in C, but its constructor is SafeConstructor's
    Python code, so the overrides below hold for both it and the pure-Python SafeLoader."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    from yaml.constructor import ConstructorError
    from yaml.nodes import MappingNode, SequenceNode

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's is ~10× faster

    class StrictLoader(base):  # type: ignore[valid-type, misc]
        max_digits = 0  # set per document by _load_yaml: a limit is read once per read

        def construct_strict_int(self, node):
            text = str(node.value)
            if len(text) <= self.max_digits and ":" not in text:  # the usual: short
                value = self.construct_yaml_int(node)
                if abs(value) < 10 ** self.max_digits:  # (0x… may have more digits)
                    return value
            digits = sum(c.isalnum() for c in text.split("0x", 1)[-1].split("0b", 1)[-1])
            shown = text[:12] + ("…" if len(text) > 12 else "")

            def big(n: int) -> _Refused:
                return _Refused(f"{shown}, {n:,} digits", *_mark(node), limit=limits.INT_DIGITS)

            # checked before int() runs: Python refuses over 4,300 digits with a bare
            # ValueError, and a YAML 1.1 base-60 integer (1:2:3…) grows 60× per group
            if digits > self.max_digits:
                raise big(digits)
            try:
                value = self.construct_yaml_int(node)
            except ValueError:
                raise big(digits) from None
            if abs(value) >= 10 ** self.max_digits:
                raise big(len(str(abs(value))))
            return value

        def construct_strict_float(self, node):
            value = self.construct_yaml_float(node)
            if not math.isfinite(value):
                raise _Refused(f"'{node.value}' is not a finite number (NaN and infinity are "
                               "refused)", *_mark(node))
            return value

        def flatten_mapping(self, node):
            """Resolve ``<<`` merge keys by YAML's rule: a mapping's own keys win, then the
            earlier of the merged mappings. (PyYAML's own drops merged pairs by the identity
            of their key's text, which loses an override made inside a merged mapping.) The
            pairs are bounded: every merged pair is a node counted by ``_check_graph``."""
            if not any(k.tag in (_MERGE, _VALUE) for k, _ in node.value):
                return  # the usual: nothing to merge
            sources, own = [], []
            for key_node, value_node in node.value:
                if key_node.tag != _MERGE:
                    if key_node.tag == _VALUE:  # "=" as a key: PyYAML reads it as the text
                        key_node.tag = _STR
                    own.append((key_node, value_node))
                    continue
                merged = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for m in merged:
                    if not isinstance(m, MappingNode):
                        raise ConstructorError("while constructing a mapping", node.start_mark,
                                               f"expected a mapping to merge, found {m.id}",
                                               m.start_mark)
                    self.flatten_mapping(m)  # a no-op once done: no merge key is left
                    sources.append(m.value)
            # the constructor keeps a key's last value: the last merged first, own keys last
            node.value = [pair for pairs in reversed(sources) for pair in pairs] + own

    StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_strict_int)
    StrictLoader.add_constructor("tag:yaml.org,2002:float", StrictLoader.construct_strict_float)
    _LOADER = StrictLoader
    return StrictLoader


def _mark(node) -> tuple[int | None, int | None]:
    mark = getattr(node, "start_mark", None)
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def _load_yaml(text: str, file: Path, error: type[CostModelError]) -> Any:
    import yaml

    loader = _loader()(text)
    loader.max_digits = limits.INT_DIGITS.value
    try:
        if len(text) > _SCAN_ABOVE:
            _prescan(text)
        try:
            node = loader.get_single_node()
        except RecursionError:  # the pure-Python composer recurses once per level
            raise _Refused("too deep for the YAML parser", limit=limits.NESTING) from None
        if node is None:
            return None
        _check_graph(node, loader)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        if "maximum nesting depth" in problem:  # libyaml stops at 1,000 levels
            where = (mark.line + 1, mark.column + 1) if mark else (None, None)
            raise _Refused("over 1,000 levels", *where, limit=limits.NESTING) from None
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"invalid YAML{where}: {problem}", file=str(file)) from None
    finally:
        loader.dispose()


_SCAN_ABOVE = 64 * 1024
"""Composing a YAML document costs some µs a node, and a node can take as little as one
character (``[a,a,…]``, ``{a,a,…}``): a longer text is first scanned as events, which is
several times cheaper, so that a file of millions of nodes is refused before it is built."""


def _prescan(text: str) -> None:
    """Count the nodes (aliases not followed: ``_check_graph`` counts them) and the depth of
    a long text from its parse events, stopping at the first limit passed."""
    from yaml.events import CollectionEndEvent, CollectionStartEvent, ScalarEvent

    max_nodes, max_depth = limits.YAML_NODES.value, limits.NESTING.value
    scan = _loader()(text)
    nodes = depth = 0
    try:
        while scan.check_event():
            event = scan.get_event()
            if isinstance(event, ScalarEvent):
                nodes += 1
            elif isinstance(event, CollectionStartEvent):
                nodes, depth = nodes + 1, depth + 1
                if depth > max_depth:
                    raise _Refused(f"{depth:,}+ levels", *_mark(event), limit=limits.NESTING)
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            if nodes > max_nodes:
                raise _Refused(f"{nodes:,}+ nodes", limit=limits.YAML_NODES)
    finally:
        scan.dispose()


def _check_graph(root, loader) -> None:
    """Bound the document before anything is built from it: its size with every alias
    expanded, its depth, no recursive alias, no duplicate key.

    An alias is the anchored node itself, shared, so the sizes are memoized per node and a
    bomb of nested aliases costs one visit per distinct node. Iterative: the depth is not yet
    known to be small. Scalars (most nodes) are never pushed: one node, one level each."""
    from yaml.nodes import MappingNode, ScalarNode

    if isinstance(root, ScalarNode):
        return
    max_nodes = limits.YAML_NODES.value
    done: dict[int, tuple[int, int]] = {}  # id(node) → (nodes when expanded, height)
    open_: set[int] = set()  # the nodes on the current path: meeting one again is a cycle
    stack: list[Any] = [root]  # a node to open, or (node, its children) to finish
    while stack:
        item = stack.pop()
        if item.__class__ is tuple:
            node, kids = item
            size, below = 1, 0
            for k in kids:
                if k.__class__ is ScalarNode:
                    size, below = size + 1, below or 1
                else:
                    n, h = done[id(k)]
                    size, below = size + n, max(below, h)
            if size > max_nodes:
                raise _Refused(f"{size:,}+ nodes", limit=limits.YAML_NODES)
            done[id(node)] = (size, below + 1)
            open_.discard(id(node))
            continue
        key = id(item)
        if key in done:
            continue
        if key in open_:
            raise _Refused("a recursive alias: an anchored node contains an alias of itself",
                           *_mark(item))
        open_.add(key)
        if isinstance(item, MappingNode):
            _check_keys(item, loader)
            kids = [n for pair in item.value for n in pair]
        else:
            kids = item.value
        stack.append((item, kids))
        stack.extend(k for k in kids if k.__class__ is not ScalarNode and id(k) not in done)
    height = done[id(root)][1]
    if height > limits.NESTING.value:
        node = root
        for _ in range(limits.NESTING.value):  # down the deepest path, to say where
            kids = [n for pair in node.value for n in pair] \
                if isinstance(node, MappingNode) else node.value
            node = max(kids, key=lambda k: done.get(id(k), (1, 1))[1])
        raise _Refused(f"{height:,} levels", *_mark(node), limit=limits.NESTING)


_STR, _MERGE, _VALUE = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:merge",
                        "tag:yaml.org,2002:value")


def _check_keys(node, loader) -> None:
    """A mapping's own keys (not those a ``<<`` merge brings, which it may override) are
    distinct. Checked on the composed node, before a merge rewrites it."""
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        tag = key_node.tag
        if tag == _STR:  # most keys: the text is the key
            key = key_node.value
        elif tag == _MERGE or not isinstance(key_node.value, str):  # a merge, or not a scalar
            continue
        else:
            key = loader.construct_object(key_node)
        try:
            first = seen.setdefault(key, key_node)
        except TypeError:  # unhashable: the constructor says so
            continue
        if first is not key_node:
            line, column = _mark(first)
            raise _Refused(f"duplicate key '{key}' (first at line {line}, column {column}); "
                           "a key may appear once in a mapping", *_mark(key_node))


# --- JSON ---------------------------------------------------------------------------------

def _load_json(text: str, file: Path, error: type[CostModelError]) -> Any:
    import json

    max_digits = limits.INT_DIGITS.value

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for k, v in items:
            if k in obj:
                raise _Refused(f"duplicate key '{k}' in an object with keys "
                               f"{', '.join(dict.fromkeys(k for k, _ in items))}; a key may "
                               "appear once in an object")
            obj[k] = v
        return obj

    def integer(s: str) -> int:
        if len(s.lstrip("-")) > max_digits:
            raise _Refused(f"{s[:12]}…, {len(s.lstrip('-')):,} digits", limit=limits.INT_DIGITS)
        return int(s)

    def number(s: str) -> float:
        value = float(s)
        if not math.isfinite(value):
            raise _Refused(f"{s[:20]} is not a finite number (it overflows a float)")
        return value

    def constant(s: str):
        raise _Refused(f"{s} is not a number JSON allows (NaN and infinity are refused)")

    if len(text) > _SCAN_ABOVE:  # bound the work before json builds it all (no early stop)
        bare = _JSON_STRING.sub('""', text)
        most = 1 + sum(bare.count(c) for c in ",:[{")  # a node follows each, or is the root
        if most > limits.YAML_NODES.value:
            raise _Refused(f"up to {most:,} nodes", limit=limits.YAML_NODES)
    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_int=integer, parse_float=number,
                          parse_constant=constant)
    except json.JSONDecodeError as e:
        raise error(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                    file=str(file)) from None
    except RecursionError:  # json's scanner recurses once per level (~1,000 levels)
        raise _Refused("too deep for the JSON parser", limit=limits.NESTING) from None
    _check_tree(data)
    return data


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a string may hold "," or "["


def _check_tree(data: Any) -> None:
    """Depth and node count of parsed JSON (no aliases: every node is its own)."""
    max_depth, max_nodes = limits.NESTING.value, limits.YAML_NODES.value
    stack, count = [(data, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > max_nodes:
            raise _Refused(f"{count:,}+ nodes", limit=limits.YAML_NODES)
        if depth > max_depth:
            raise _Refused(f"{depth:,}+ levels", limit=limits.NESTING)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            count += len(node)  # the keys
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
