"""The DAG of a traced module → nested spec layers (no torch here).

A chain of ops is a list of layers. Where a value forks, the paths re-join at its immediate
post-dominator (the first op every path from it passes through, found in one walk in
execution order: the op after which it is the only value still waiting for users). If the
paths between are disjoint and each a chain of its own (recursively), the fork is a
``residual`` (an add of two paths) or a ``parallel`` (concat, add or multiply of any number;
a channel split feeding them becomes ``split``). If not — a path reads a value of another,
as in DenseNet's concatenation of all earlier outputs — the region from the fork to the join
is a ``graph`` node, each op a node naming its inputs.

Names come from the module hierarchy: the layers of one list that run in the same child
module are grouped into a ``sequential`` named after it, so ``features.0.conv`` is the layer
``conv`` in ``0`` in ``features``. A sequential of equal copies named 0…n−1 is a ``repeat``.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass

from costmodel.capture.graph import Dag, Op


@dataclass
class Leaf:
    op: Op

    @property
    def scope(self) -> str:
        return self.op.scope


@dataclass
class Fork:
    """Branches joined by a merge (``join``); ``split``: the channel sizes feeding them."""

    join: Op
    branches: list[list]
    split: list[int] | None = None

    @property
    def scope(self) -> str:
        return self.join.scope


@dataclass
class Graph:
    """A region that is no nest of branches: ``ops`` in order, from ``entry`` to the last."""

    entry: int
    ops: list[Op]
    scope: str


class NotNested(Exception):
    pass


class Structure:
    def __init__(self, dag: Dag):
        self.dag = dag
        self.ops = dag.ops

    # --- regions ------------------------------------------------------------------------

    def ancestors(self, end: int) -> set[int]:
        return self.dag.ancestors(end)

    def descendants(self, start: int, within: set[int]) -> set[int]:
        found, todo = set(), list(self.ops[start].users)
        while todo:
            i = todo.pop()
            if i in within and i not in found:
                found.add(i)
                todo.extend(self.ops[i].users)
        return found

    def region(self, start: int, end: int, within: set[int]) -> set[int]:
        """The ops after ``start`` up to ``end`` (inclusive) on paths from one to the other."""
        if start == end:
            return set()
        return self.descendants(start, within) & self.ancestors(end)

    def join(self, v: int, region: set[int]) -> int:
        """The immediate post-dominator of ``v`` within ``region``."""
        waiting = {v: len([u for u in self.ops[v].users if u in region])}
        live = {v}
        for i in sorted(region):
            if i <= v:
                continue
            op = self.ops[i]
            ins = [j for j in dict.fromkeys(op.inputs) if j in waiting]
            if not ins:
                continue
            for j in ins:
                waiting[j] -= 1
                if waiting[j] == 0:
                    live.discard(j)
            waiting[i] = len([u for u in op.users if u in region])
            if waiting[i]:
                live.add(i)
            if not live or live == {i}:
                return i
        raise NotNested  # pragma: no cover - the region ends in one op

    # --- chains and forks --------------------------------------------------------------

    def chain(self, v: int, end: int, region: set[int]) -> list:
        items: list = []
        while v != end:
            users = [u for u in self.ops[v].users if u in region]
            first = self.ops[users[0]]
            if len(users) == 1 and first.kind == "layer":
                items.append(Leaf(first))
                v = first.id
                continue
            fork_at = first.id if len(users) == 1 and first.kind == "split" else v
            j = self.join(fork_at, region)
            try:
                items.append(self.fork(fork_at, j, region))
            except NotNested:
                items.append(self.graph(v, j, region))
            v = j
        return items

    def fork(self, v: int, j: int, region: set[int]) -> Fork:
        join = self.ops[j]
        if join.kind != "merge":
            raise NotNested
        split = self.ops[v] if self.ops[v].kind == "split" else None
        if split is not None:  # branch i starts at part i of the split
            parts = sorted((self.ops[u] for u in split.users), key=lambda p: p.index)
            if [p.index for p in parts] != list(range(len(split.sizes))) or \
                    len(parts) != len(join.inputs):
                raise NotNested
            starts = [p.id for p in parts]
        else:
            starts = [v] * len(join.inputs)
        branches, seen = [], set()
        inside = self.region(v, j, region) - {j}
        for start, end in zip(starts, join.inputs):
            if start != end and start not in self.ancestors(end):
                raise NotNested
            sub = self.region(start, end, region)
            if sub & seen:
                raise NotNested
            seen |= sub | ({start} if start != v else set())
            for i in sub:
                op = self.ops[i]
                if not set(op.inputs) <= sub | {start} or \
                        not set(op.users) <= sub | ({j} if i == end else set()):
                    raise NotNested
            branches.append(self.chain(start, end, sub))
        if seen != inside:
            raise NotNested
        return Fork(join, branches, split.sizes if split is not None else None)

    def graph(self, v: int, j: int, region: set[int]) -> Graph:
        ops = [self.ops[i] for i in sorted(self.region(v, j, region))]
        return Graph(v, ops, self.ops[j].scope)

    def items(self, out: int) -> list:
        everything = self.ancestors(out)
        return self.chain(0, out, everything - {0})


# --- naming: items → spec mappings ------------------------------------------------------

_BAD = re.compile(r"[^A-Za-z0-9_\-]")


def clean(name: str) -> str:
    return _BAD.sub("_", name) or "_"


def _child(scope: str, prefix: str) -> str | None:
    """The child of ``prefix`` that ``scope`` lies in (None: ``scope`` is ``prefix``, or not
    inside it)."""
    if scope == prefix:
        return None
    head = prefix + "." if prefix else ""
    if not scope.startswith(head):
        return None
    return scope[len(head):].split(".", 1)[0]


def _relative(path: str, prefix: str) -> str:
    head = prefix + "." if prefix else ""
    return path[len(head):] if path.startswith(head) else path


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_FX_SUFFIX = re.compile(r"_\d+$")


class Namer:
    """Items → spec layers, named by module; ``paths`` maps each spec row's path to the torch
    module fvcore charges it to (a leaf module's path, or the module a function runs in)."""

    def __init__(self, dag: Dag):
        self.dag = dag
        self.paths: dict[str, str] = {}

    def layers(self, items: list, prefix: str, spath: str = "") -> list[dict]:
        out: list[dict] = []
        for key, group in itertools.groupby(items, key=lambda it: _child(it.scope, prefix)):
            group = list(group)
            if key is None:
                for it in group:
                    name = self.name_of(it, prefix)
                    while any(o["name"] == name for o in out):
                        name += "_"
                    out.append(self.item(it, prefix, _join(spath, name), name))
                continue
            sub = _join(prefix, key)
            name = clean(key)
            while any(o["name"] == name for o in out):
                name += "_"
            if len(group) == 1 and not isinstance(group[0], Leaf) and group[0].scope == sub:
                out.append(self.item(group[0], sub, _join(spath, name), name))
            else:
                inner = self.layers(group, sub, _join(spath, name))
                out.append(fold({"name": name, "type": "sequential", "layers": inner}))
        return out

    def name_of(self, it, prefix: str) -> str:
        """A module's attribute name; a function's fx name without its _1, _2 suffix (names
        within a list are made unique after)."""
        op = it.op if isinstance(it, Leaf) else it.join if isinstance(it, Fork) else it.ops[-1]
        if op.scope != prefix:
            return clean(_relative(op.where, prefix))
        if isinstance(it, Leaf) and op.module:
            return clean(op.name)
        return clean(_FX_SUFFIX.sub("", op.name)) + ("_graph" if isinstance(it, Graph) else "")

    def item(self, it, prefix: str, spath: str, name: str) -> dict:
        if isinstance(it, Leaf):
            self.paths[spath] = it.op.where if it.op.module else it.op.scope
            for row, module in (it.op.sub_paths or {}).items():  # an aux layer's rows
                self.paths[_join(spath, row)] = _join(it.op.where, module)
            return {"name": name, **it.op.layer}
        if isinstance(it, Fork):
            return self.fork(it, spath, name)
        return self.graph(it, spath, name)

    def fork(self, it: Fork, spath: str, name: str) -> dict:
        scope = it.join.scope
        merge = it.join.merge
        self.paths[_join(spath, merge)] = scope
        if it.split is not None:
            self.paths[_join(spath, "split")] = scope
        residual = merge == "add" and len(it.branches) == 2 and it.split is None \
            and any(it.branches)
        if residual:
            # the longer path is the main one (RegNet writes proj(x) + f(x), shortcut first)
            shortcut, main = sorted(it.branches, key=_size)
            return {"name": name, "type": "residual",
                    "layers": self.layers(main, scope, _join(spath, "main")),
                    **({"shortcut": self.layers(shortcut, scope, _join(spath, "shortcut"))}
                       if shortcut else {})}
        doc: dict = {"name": name, "type": "parallel", "merge": merge}
        if it.split is not None:
            sizes = it.split
            doc["split"] = "half" if len(sizes) == 2 and sizes[0] == sizes[1] else sizes
        # a branch that is one child module is named after it
        keys = [_child(b[0].scope, scope) if b and all(_child(x.scope, scope) ==
                                                       _child(b[0].scope, scope) for x in b)
                else None for b in it.branches]
        if all(keys) and len(set(keys)) == len(keys):
            doc["branch_names"] = [clean(k) for k in keys]
            doc["branches"] = [self.layers(b, _join(scope, k), _join(spath, clean(k)))
                               for b, k in zip(it.branches, keys)]
        else:
            doc["branches"] = [self.layers(b, scope, _join(spath, str(i)))
                               for i, b in enumerate(it.branches)]
        return doc

    def graph(self, it: Graph, spath: str, gname: str) -> dict:
        """Each op a node; a chain of single-input ops, each the only user of the one before,
        shares one node. Its rows are ``<graph>.<node>.<layer>`` and ``<graph>.<node>.<merge>``."""
        scope = it.scope
        names: dict[int, str] = {it.entry: "input"}
        nodes: list[dict] = []
        taken = {"input"}
        for op in it.ops:
            prev = op.inputs[0] if len(op.inputs) == 1 else None
            if op.kind == "layer" and nodes and prev is not None \
                    and names.get(prev) == nodes[-1]["name"] and \
                    self.dag.ops[prev].users == [op.id]:
                nodes[-1].setdefault("layers", []).append(self.layer_of(op, scope))
                self.charge(op, _join(spath, nodes[-1]["name"]), nodes[-1]["layers"][-1])
                names[op.id] = nodes[-1]["name"]
                continue
            if op.kind == "split":
                names[op.id] = names[op.inputs[0]]  # its parts slice its input
                continue
            # a node is named after the module its first op is in (or the op's own name)
            where = op.scope if op.module and op.scope != scope else op.where or op.name
            name = clean(_relative(where, scope).replace(".", "_"))
            while name in taken:
                name += "_"
            taken.add(name)
            node: dict = {"name": name}
            if op.kind == "part":  # part i of a split: a channel slice of the split's input
                split = self.dag.ops[op.inputs[0]]
                start = sum(split.sizes[:op.index])
                node["inputs"] = [names[split.inputs[0]]]
                node["layers"] = [{"name": "slice", "type": "slice", "start": start,
                                   "stop": start + split.sizes[op.index]}]
                self.paths[_join(_join(spath, name), "slice")] = op.scope
            else:
                node["inputs"] = [names[i] for i in op.inputs]
                if op.kind == "merge":
                    node["merge"] = op.merge
                    self.paths[_join(_join(spath, name), op.merge)] = op.scope
                else:
                    node["layers"] = [self.layer_of(op, scope)]
                    self.charge(op, _join(spath, name), node["layers"][-1])
            names[op.id] = name
            nodes.append(node)
        return {"name": gname, "type": "graph", "nodes": nodes,
                "output": names[it.ops[-1].id]}

    def charge(self, op: Op, node_path: str, layer: dict) -> None:
        self.paths[_join(node_path, layer["name"])] = op.where if op.module else op.scope

    def layer_of(self, op: Op, scope: str) -> dict:
        return {"name": clean(op.name if op.module else _FX_SUFFIX.sub("", op.name)),
                **op.layer}


def _size(items: list) -> int:
    """The ops of a branch (its leaves, and the branches and graphs inside)."""
    return sum(1 if isinstance(it, Leaf) else len(it.ops) if isinstance(it, Graph)
               else 1 + sum(_size(b) for b in it.branches) for it in items)


def _without_name(layer: dict) -> dict:
    return {k: v for k, v in layer.items() if k != "name"}


def fold(seq: dict) -> dict:
    """A sequential whose layers are n ≥ 2 copies named 0…n−1 → ``repeat: n``: where all are
    equal, or where copies 1…n−1 are equal and copy 0 differs from them only in fields a
    ``first:`` override can set (the first block of a stage: a stride, a shortcut)."""
    layers = seq["layers"]
    if len(layers) < 2 or [x["name"] for x in layers] != [str(i) for i in range(len(layers))]:
        return seq
    head, rest = _without_name(layers[0]), _without_name(layers[1])
    if any(_without_name(x) != rest for x in layers[2:]):
        return seq
    body = _body(rest)
    first = {} if head == rest else _first(_body(head), body)
    if first is None:
        return seq
    return {"name": seq["name"], "type": "repeat", "n": len(layers),
            **({"first": first} if first else {}), "layers": body}


def _body(copy: dict) -> list[dict]:
    """The layers one copy of a repeat holds."""
    return copy["layers"] if copy.get("type") == "sequential" and len(copy["layers"]) > 1 \
        else [copy]


def _first(head: list[dict], body: list[dict]) -> dict | None:
    """The ``first:`` overrides that make ``body`` into ``head`` (dotted paths as the repeat
    reads them: through a residual's main/shortcut, a parallel's branch, a sequential's
    layer, the last part a field), or None where none do. Checked by applying them."""
    names = [x.get("name") for x in body]
    if [x.get("name") for x in head] != names or (len(body) > 1 and not all(names)):
        return None
    found: dict = {}
    for a, b in zip(head, body):
        prefix = [a["name"]] if len(body) > 1 else []
        if not _diff(a, b, prefix, found):
            return None
    applied = [json.loads(json.dumps(x)) for x in body]
    for key, value in found.items():
        parts = key.split(".")
        target = applied[0] if len(body) == 1 else applied[names.index(parts.pop(0))]
        _apply(target, parts, value)
    return found if applied == head else None


def _diff(a: dict, b: dict, prefix: list[str], found: dict) -> bool:
    """Adds to ``found`` the overrides that turn layer ``b`` into ``a``; False where a field
    of ``b`` is missing from ``a`` (its default cannot be written), the types differ, or a
    main path or branch would be replaced whole (another structure: clearer written out)."""
    if a.get("type") != b.get("type") or a.get("name") != b.get("name") or set(b) - set(a):
        return False
    for key in a:
        if key == "name" or a[key] == b.get(key):
            continue
        parts = _parts(a, key)
        if parts is not None and isinstance(b.get(key), list) and len(a[key]) == len(b[key]) \
                and all(isinstance(x, dict) for x in a[key] + b[key]) \
                and [x.get("name") for x in a[key]] == [x.get("name") for x in b[key]] \
                and all(x.get("name") for x in a[key]):
            if all(_diff(x, y, prefix + parts + [x["name"]], found)
                   for x, y in zip(a[key], b[key])):
                continue
            return False
        if key in ("layers", "branches"):  # another structure: clearer written out
            return False
        found[".".join(prefix + [key])] = a[key]
    return True


def _parts(layer: dict, key: str) -> list[str] | None:
    """The path parts naming the list ``key`` of ``layer`` (before a layer's name in it)."""
    if layer.get("type") == "residual":
        return {"layers": ["main"], "shortcut": ["shortcut"]}.get(key)
    if key == "layers" and layer.get("type") in ("sequential", "stage"):
        return []
    return None


def _apply(node: dict, parts: list[str], value) -> None:
    """Sets the field at ``parts`` inside ``node`` (as ``Repeat.first`` does)."""
    for part in parts[:-1]:
        if node.get("type") == "residual" and part in ("main", "shortcut"):
            node = {"layers": node.setdefault("layers" if part == "main" else "shortcut", [])}
        else:
            node = next(x for x in node["layers"] if x.get("name") == part)
    node[parts[-1]] = value
