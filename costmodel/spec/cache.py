"""A cache of validated specs, so that a command does not parse and validate an unchanged spec
file again (building Pydantic's validators for the whole layer union costs more than
everything else a `costmodel compare` does).

Entries live in $COSTMODEL_CACHE_DIR, else $XDG_CACHE_HOME/costmodel, else ~/.cache/costmodel;
COSTMODEL_CACHE=0 turns the cache off.

What makes it safe to read:

- An entry is data, not code: tagged JSON that decoding turns back into objects only of an
  explicit whitelist — layer classes found by their ``type`` tag in a module of
  ``costmodel.layers`` (checked against the package's own module names before it is
  imported), plain models defined in those modules, ``ModelSpec``, ``Variant``, ``Rounding``,
  lists, tuples and dicts. No constructor, validator or other code of the data's choosing runs.
- The key is the SHA-256 of the file's bytes (not its size or mtime), its resolved path (a
  spec without ``name`` is named after its file), the variants and ``vars`` applied, and the
  code version (package and Pydantic versions, and a hash of the spec and layer modules). The
  entry's file name is derived from the key, and the entry holds its schema version and full
  key, both checked on load: a renamed, truncated or foreign entry is a miss, never another
  spec's numbers.
- The folder is created 0700. A folder or entry not owned by the user, or writable by group or
  others, is not used (one warning per process), and nothing is stored there.
- A store is atomic (a temporary file renamed into place, removed on any failure), and only
  happens if the spec file still holds the bytes that were hashed before it was parsed.
- Pruning keeps the newest MAX_ENTRIES entries and removes only files named like its own
  entries (``spec-<64 hex>.json``, and its own temporary files once stale): nothing else in
  the folder is touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import time
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from costmodel.spec.model import ModelSpec

_PACKAGE = Path(__file__).resolve().parent.parent
SCHEMA = 1
"""Version of the entry format; an entry of another version is a miss."""
MAX_ENTRIES = 256
"""Entries kept: every store beyond this removes the oldest (each code version makes new ones)."""
_ENTRY = re.compile(r"spec-[0-9a-f]{64}\.json")
_TEMP = re.compile(r"spec-[0-9a-f]{64}\.json\.[A-Za-z0-9_]+\.tmp")
_STALE_TEMP_S = 3600
"""A temporary file of ours this old was left by a killed process: pruning removes it."""


def enabled() -> bool:
    return os.environ.get("COSTMODEL_CACHE", "1") not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    if os.environ.get("COSTMODEL_CACHE_DIR"):
        return Path(os.environ["COSTMODEL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "costmodel"


# --- trust --------------------------------------------------------------------------------

_warned = False


def _warn(what: Path, why: str) -> None:
    """One line on stderr, once per process: the cache is an optimisation, not an error."""
    global _warned
    if not _warned:
        _warned = True
        print(f"costmodel: not using the spec cache: {what} {why} (specs are validated "
              f"without it)", file=sys.stderr)


def _untrusted(st: os.stat_result) -> str | None:
    """Why a file or folder with this status must not be used, or None: another user (or
    anyone, through group or other write permission) could plant entries in it."""
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return "is owned by another user; set COSTMODEL_CACHE_DIR to a folder of your own"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "is writable by group or others; `chmod go-w` it"
    return None


def _trusted_dir(create: bool) -> Path | None:
    """The cache folder if it may be used (created 0700, with any missing parents, if asked)."""
    folder = cache_dir()
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        if not create:
            return None
        try:
            _make_dirs(folder)
            st = os.stat(folder)
        except OSError:
            return None
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    why = _untrusted(st)
    if why:
        _warn(folder, why)
        return None
    return folder


def _make_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each 0700 whatever the umask (a folder that
    exists already is left as it is)."""
    missing = []
    p = folder.absolute()
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue  # made by a concurrent process: theirs, checked like any other
        os.chmod(d, 0o700)  # ours: the umask may have taken bits away (or left none for us)


# --- key ----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _code_version() -> str:
    """The package and Pydantic versions and a hash of the modules that define specs: any
    change to them makes new entries."""
    import pydantic

    from costmodel import __version__

    h = hashlib.sha256()
    for folder in ("spec", "layers"):
        path = os.path.join(_PACKAGE, folder)
        for name in sorted(os.listdir(path)):  # os, not pathlib: this is on every cold start
            if name.endswith(".py"):
                with open(os.path.join(path, name), "rb") as f:
                    h.update(name.encode() + b"\0" + f.read() + b"\0")
    return f"{__version__}|{pydantic.VERSION}|{h.hexdigest()}"


def _file_digest(file: Path) -> str | None:
    """SHA-256 of a regular file's bytes, or None (unreadable, not a regular file, or too big
    to be a spec: the loader then says why)."""
    from costmodel.limits import FILE_BYTES

    try:
        # O_NONBLOCK: a FIFO must not hang us (it is refused below)
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > FILE_BYTES.value:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return hashlib.sha256(f.read()).hexdigest()
    except Exception:  # noqa: BLE001 - no digest, no caching: the loader reports the problem
        return None
    finally:
        os.close(fd)


class Entry:
    """The cache entry of one spec file with variants applied. The file's bytes are hashed
    when the entry is made: before the loader parses the file."""

    def __init__(self, file: Path, variants: list[str]) -> None:
        self.file = Path(file)
        self.variants = list(variants)
        self.digest = _file_digest(self.file) if enabled() else None

    @cached_property
    def key(self) -> str:
        material = [SCHEMA, _code_version(), os.path.realpath(self.file), self.digest,
                    self.variants]
        return hashlib.sha256(json.dumps(material).encode()).hexdigest()

    def path(self, folder: Path) -> Path:
        return folder / f"spec-{self.key}.json"

    def load(self) -> "ModelSpec | None":
        """The cached spec, or None: anything unexpected is a miss."""
        if self.digest is None:
            return None
        folder = _trusted_dir(create=False)
        if folder is None:
            return None
        entry = self.path(folder)
        try:
            fd = os.open(entry, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return None
                why = _untrusted(st)
                if why:
                    _warn(entry, why)
                    return None
                data = json.loads(f.read())
            if type(data) is not dict or data.keys() != {"schema", "key", "spec"} \
                    or type(data["schema"]) is not int or data["schema"] != SCHEMA \
                    or data["key"] != self.key:
                return None
            spec = decode(data["spec"])
        except Exception:  # noqa: BLE001 - a broken entry of any kind: validate again
            return None
        from costmodel.spec.model import ModelSpec

        if type(spec) is not ModelSpec:
            return None
        spec._file = str(self.file)
        return spec

    def store(self, spec: "ModelSpec") -> None:
        """Cache a validated spec if the file still holds the bytes hashed before it was
        parsed. Failures are not the user's problem: ignored, leaving nothing behind."""
        if self.digest is None or _file_digest(self.file) != self.digest:
            return
        folder = _trusted_dir(create=True)
        if folder is None:
            return
        import tempfile

        entry = self.path(folder)
        tmp = None
        try:
            text = json.dumps({"schema": SCHEMA, "key": self.key, "spec": encode(spec)},
                              separators=(",", ":"))
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=entry.name + ".", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                if hasattr(os, "fchmod"):  # readable by us whatever the umask; by no one else
                    os.fchmod(fd, 0o600)
                f.write(text)
            os.replace(tmp, entry)
            tmp = None
            _prune(folder)
        except Exception:  # noqa: BLE001 - e.g. a full disk, or a spec too deep to encode
            pass
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _prune(folder: Path) -> None:
    """Keep the newest MAX_ENTRIES entries (by modification time), and remove our own
    temporary files left by killed processes. Only files named like ours are touched."""
    now = time.time()
    entries = []
    for e in os.scandir(folder):
        if not (_ENTRY.fullmatch(e.name) or _TEMP.fullmatch(e.name)):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if _ENTRY.fullmatch(e.name):
            entries.append((st.st_mtime_ns, e.path))
        elif now - st.st_mtime > _STALE_TEMP_S:
            Path(e.path).unlink(missing_ok=True)
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort()
    for _, old in entries[:len(entries) - MAX_ENTRIES]:
        Path(old).unlink(missing_ok=True)


# --- format -------------------------------------------------------------------------------
#
# A value is JSON null/bool/int/float/str, a JSON list (a list), or an object with one tag:
#   {"tuple": [...]}, {"dict": {...}}, {"rounding": [rule, divisor, min]},
#   {"layer": [module, tag], "fields": {...}, "set": [...], "cached": {...}, "private": {...}}
#   {"model": [module, class], ...same...}        a plain model of costmodel.layers.<module>,
#   {"model": ["spec", "ModelSpec" | "Variant"], ...}
# "cached" holds values that a layer's cached properties computed at validation (a repeat's
# validated first copy), so that they are not validated again; {"ref": [field]} or
# {"ref": [field, i]} there stands for a field's value (or item i of it), the same object.


class _Miss(Exception):
    """The entry is not what this code writes."""


def _layers_package():
    import costmodel.layers as package

    return package


@lru_cache(maxsize=1)
def _layer_modules() -> frozenset[str]:
    folder = os.path.dirname(_layers_package().__file__)
    return frozenset(n[:-3] for n in os.listdir(folder) if n.endswith(".py") and n != "__init__.py")


@lru_cache(maxsize=None)
def _module_classes(stem: str) -> tuple[dict[str, type], dict[str, type]]:
    """(layer classes by ``type`` tag, other models by class name) defined in
    ``costmodel.layers.<stem>``: the only classes a layer module may give an entry.

    The module is imported only if it is one of the package's own (a cached spec imports just
    the modules of its own layers, which keeps a cold command fast)."""
    import importlib

    from pydantic import BaseModel

    from costmodel.layers.base import LayerSpec

    if stem not in _layer_modules():
        raise _Miss(stem)
    module = importlib.import_module(f"costmodel.layers.{stem}")
    layers: dict[str, type] = {}
    models: dict[str, type] = {}
    for obj in vars(module).values():
        if not (isinstance(obj, type) and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__):
            continue
        if issubclass(obj, LayerSpec):
            if "type" in obj.model_fields:
                layers.update({tag: obj for tag in obj.model_fields["type"].annotation.__args__})
        else:
            models[obj.__name__] = obj
    return layers, models


def _spec_classes() -> dict[str, type]:
    from costmodel.spec.model import BlockDef, ModelSpec, Variant

    return {"ModelSpec": ModelSpec, "Variant": Variant, "BlockDef": BlockDef}


@lru_cache(maxsize=None)
def _cached_names(cls: type) -> frozenset[str]:
    """The class's cached properties: the only names besides its fields an entry may set."""
    from pydantic import BaseModel

    return frozenset(n for k in cls.__mro__ if k not in BaseModel.__mro__
                     for n, v in vars(k).items() if isinstance(v, cached_property))


def encode(value: Any) -> Any:
    """A validated spec (or any value in one) as JSON-able data; TypeError for anything the
    decoder would not rebuild exactly."""
    from pydantic import BaseModel

    from costmodel.layers.base import Rounding

    t = type(value)
    if value is None or t in (bool, int, float, str):
        return value
    if t is list:
        return [encode(v) for v in value]
    if t is tuple:
        return {"tuple": [encode(v) for v in value]}
    if t is dict:
        if any(type(k) is not str for k in value):
            raise TypeError("a dict key that is not a string")
        return {"dict": {k: encode(v) for k, v in value.items()}}
    if t is Rounding:
        return {"rounding": [value.rule, value.divisor, value.min]}
    if isinstance(value, BaseModel):
        return _encode_model(value)
    raise TypeError(f"cannot cache a {t.__name__}")


def _encode_model(m: Any) -> dict[str, Any]:
    from costmodel.layers.base import LayerSpec

    cls = type(m)
    module = cls.__module__
    if issubclass(cls, LayerSpec):
        ref = ["layer", [module.rpartition(".")[2], m.type]]
    elif _spec_classes().get(cls.__name__) is cls:
        ref = ["model", ["spec", cls.__name__]]
    else:
        ref = ["model", [module.rpartition(".")[2], cls.__name__]]
    if _class_of(*ref) is not cls or m.__pydantic_extra__:
        raise TypeError(f"cannot cache a {cls.__name__}")
    fields = cls.model_fields
    out: dict[str, Any] = {ref[0]: ref[1],
                           "fields": {n: encode(m.__dict__[n]) for n in fields},
                           "set": sorted(m.model_fields_set)}
    cached = {n: v for n, v in m.__dict__.items() if n not in fields}
    if cached:
        if not cached.keys() <= _cached_names(cls):
            raise TypeError(f"{cls.__name__} holds more than its fields")
        out["cached"] = {n: _encode_cached(v, m.__dict__, fields) for n, v in cached.items()}
    if m.__pydantic_private__ is not None:
        out["private"] = {n: encode(v) for n, v in m.__pydantic_private__.items()}
    return out


def _encode_cached(value: Any, d: dict[str, Any], fields: Any) -> Any:
    """A cached value, with what it shares with the fields (the same objects) as references:
    a repeat without ``first`` is its own first copy."""
    for n in fields:
        if value is d[n]:
            return {"ref": [n]}
    if type(value) is list:
        shared = {id(v): [n, i] for n in fields if type(d[n]) is list for i, v in enumerate(d[n])}
        return [{"ref": shared[id(v)]} if id(v) in shared else encode(v) for v in value]
    return encode(value)


def _class_of(kind: str, where: Any) -> type:
    if type(where) is not list or len(where) != 2 or not all(type(w) is str for w in where):
        raise _Miss(where)
    module, name = where
    if kind == "model" and module == "spec":
        found = _spec_classes().get(name)
    else:
        layers, models = _module_classes(module)
        found = (layers if kind == "layer" else models).get(name)
    if found is None:
        raise _Miss(where)
    return found


_TAGS = {"tuple", "dict", "rounding", "layer", "model"}
_MODEL_KEYS = {"fields", "set", "cached", "private"}


def decode(data: Any) -> Any:
    """The value ``encode`` made (raises on anything else; ``load`` treats that as a miss)."""
    t = type(data)
    if data is None or t in (bool, int, float, str):
        return data
    if t is list:
        return [decode(v) for v in data]
    if t is not dict:
        raise _Miss(t)
    tag = next(iter(data), None)
    if tag not in _TAGS:
        raise _Miss(tag)
    if tag in ("layer", "model"):
        return _decode_model(tag, data)
    if len(data) != 1:
        raise _Miss(data.keys())
    body = data[tag]
    if tag == "tuple" and type(body) is list:
        return tuple(decode(v) for v in body)
    if tag == "dict" and type(body) is dict:
        return {k: decode(v) for k, v in body.items()}
    if tag == "rounding" and type(body) is list and len(body) == 3:
        from costmodel.layers.base import Rounding

        rule, divisor, minimum = body
        if rule in ("truncate", "divisible") and type(divisor) is int and type(minimum) is int:
            return Rounding(rule, divisor, minimum)
    raise _Miss(tag)


def _decode_model(tag: str, data: dict[str, Any]) -> Any:
    """A model rebuilt as ``derived`` (costmodel.layers.base) builds one: no validation, so no
    validator is built — the point of the cache — and no code of the entry's choosing runs."""
    if not (data.keys() - {tag}) <= _MODEL_KEYS or type(data.get("fields")) is not dict \
            or type(data.get("set")) is not list:
        raise _Miss(tag)
    cls = _class_of(tag, data[tag])
    names = cls.model_fields
    fields = data["fields"]
    if fields.keys() != names.keys() or not set(data["set"]) <= names.keys():
        raise _Miss(cls.__name__)
    d = {n: decode(fields[n]) for n in names}
    if tag == "layer" and d.get("type") != data[tag][1]:
        raise _Miss(cls.__name__)
    cached = data.get("cached")
    if cached is not None:
        if type(cached) is not dict or not cached.keys() <= _cached_names(cls):
            raise _Miss(cls.__name__)
        for n, v in cached.items():
            d[n] = _decode_cached(v, d, names)
    private = data.get("private")
    if private is not None:
        allowed = getattr(cls, "__private_attributes__", {})
        if type(private) is not dict or not private.keys() <= allowed.keys():
            raise _Miss(cls.__name__)
        private = {n: decode(v) for n, v in private.items()}
    m = cls.__new__(cls)
    setattr_ = object.__setattr__
    setattr_(m, "__dict__", d)
    setattr_(m, "__pydantic_fields_set__", set(data["set"]))
    setattr_(m, "__pydantic_extra__", None)
    setattr_(m, "__pydantic_private__", private)
    return m


def _decode_cached(value: Any, d: dict[str, Any], fields: Any) -> Any:
    def ref(r: Any) -> Any:
        if type(r) is list and len(r) in (1, 2) and r[0] in fields:
            target = d[r[0]]
            if len(r) == 1:
                return target
            if type(target) is list and type(r[1]) is int and 0 <= r[1] < len(target):
                return target[r[1]]
        raise _Miss(r)

    if type(value) is dict and value.keys() == {"ref"}:
        return ref(value["ref"])
    if type(value) is list:
        return [ref(v["ref"]) if type(v) is dict and v.keys() == {"ref"} else decode(v)
                for v in value]
    return decode(value)
