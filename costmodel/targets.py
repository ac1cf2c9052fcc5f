"""A Python TARGET wherever a model name goes: ``package.module:callable`` or
``path/to/file.py:callable``, optionally called with literal arguments
(``mypkg.nets:MyNet(width=0.5, num_classes=10)``).

The callable is a class or a function that returns a ``torch.nn.Module``. Telling a target
from a zoo name or a spec path (:func:`is_target`) imports nothing and reads no file; only
:func:`build_target` and :func:`load_target` import torch and the user's code (importing it is
what the user asked for). Arguments are Python literals read with ``ast.literal_eval``:
nothing in the target string is ever executed.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costmodel.errors import CostModelError

if TYPE_CHECKING:
    from torch import nn

    from costmodel.spec.model import ModelSpec

_NAME = r"[A-Za-z_]\w*"
_CALLABLE = re.compile(rf"\s*(?P<name>{_NAME}(?:\.{_NAME})*)\s*(?P<args>\(.*\))?\s*", re.DOTALL)
_MODULE = re.compile(rf"{_NAME}(?:\.{_NAME})*")
_SPEC_SUFFIXES = (".yaml", ".yml", ".json")  # zoo.SPEC_SUFFIXES, without importing the zoo
MAX_TARGET_CHARS = 2000
"""The longest target string read (its arguments are literals: a long one is a mistake)."""


class TargetError(CostModelError):
    """A Python target that cannot be imported, called, or does not give an nn.Module."""


class Target:
    """A parsed target: where the callable lives (a module name or a ``.py`` file), its
    attribute path, and the literal arguments to call it with. (A plain class: a dataclass or
    NamedTuple costs milliseconds to create, and this module is on every command's path.)"""

    __slots__ = ("ref", "where", "is_file", "name", "args", "kwargs", "args_text")

    def __init__(self, ref: str, where: str, is_file: bool, name: str, args: tuple = (),
                 kwargs: tuple[tuple[str, Any], ...] = (), args_text: str = ""):
        self.ref, self.where, self.is_file, self.name = ref, where, is_file, name
        self.args, self.kwargs, self.args_text = args, kwargs, args_text


def _split(ref: str) -> tuple[str, str, str | None] | None:
    """(where, callable, argument text) at the leftmost ':' that leaves a module name or a
    ``.py`` path on the left and ``name`` or ``name(...)`` on the right; None if none does
    (``C:\\specs\\x.yaml``: 'C' is a name, but '\\specs\\x.yaml' is no callable)."""
    for i, ch in enumerate(ref):
        if ch != ":":
            continue
        where, rest = ref[:i].strip(), ref[i + 1:]
        m = _CALLABLE.fullmatch(rest)
        if m is None or not where:
            continue
        if where.lower().endswith(".py") or _MODULE.fullmatch(where):
            return where, m["name"], m["args"]
    return None


def is_target(ref: Any) -> bool:
    """Whether ``ref`` names a Python callable rather than a zoo model or a spec file. Cheap:
    a string test, no import, no file read. Zoo names hold no ':'; a spec path (``C:\\x.yaml``,
    ``dir/my.yaml-0.5``) has no callable after its ':' or ends as a spec file does."""
    if not isinstance(ref, str) or ":" not in ref or len(ref) > MAX_TARGET_CHARS:
        return False
    if ref.rstrip().lower().endswith(_SPEC_SUFFIXES):
        return False
    return _split(ref) is not None


def parse_target(ref: str) -> Target:
    """A target string → a Target; its arguments must be Python literals."""
    if len(ref) > MAX_TARGET_CHARS:
        raise TargetError(f"a target is at most {MAX_TARGET_CHARS:,} characters, this one is "
                          f"{len(ref):,}", field="model")
    found = _split(ref) if ":" in ref else None
    if found is None:
        raise TargetError(f"'{ref}' is not a target: write package.module:callable or "
                          "path/to/file.py:callable, optionally callable(k=v, ...)",
                          field="model")
    where, name, text = found
    args, kwargs = _arguments(ref, text) if text else ((), ())
    return Target(ref, where, where.lower().endswith(".py"), name, args, kwargs,
                  " ".join((text or "").split()))


def _arguments(ref: str, text: str) -> tuple[tuple, tuple[tuple[str, Any], ...]]:
    """``(1, k=2)`` → ((1,), (("k", 2),)), literals only (``ast.literal_eval`` per value)."""
    def bad(why: str) -> TargetError:
        return TargetError(f"{ref}: the arguments {text} {why}; they must be Python literals "
                           "(numbers, strings, True/False/None, tuples, lists, dicts)",
                           field="model")

    import ast  # here: the analytic path asks is_target only

    try:
        call = ast.parse(f"f{text}", mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise bad("do not parse") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise bad("are not one call's arguments")
    if any(isinstance(a, ast.Starred) for a in call.args) or \
            any(k.arg is None for k in call.keywords):
        raise bad("unpack (* or **)")
    try:
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = tuple((k.arg, ast.literal_eval(k.value)) for k in call.keywords)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise bad("are not all literals") from None
    return args, kwargs


def resolve_model(ref: str, input: Any = None) -> ModelSpec:
    """The one place a model reference becomes a spec: a target is built and traced at
    ``input`` (see :func:`load_target`); a zoo name or a spec path is resolved by the zoo,
    where ``input`` plays no part (the caller evaluates at it)."""
    if is_target(ref):
        return load_target(ref, input)
    from costmodel.spec.zoo import resolve  # (api and budgets import it already)

    return resolve(ref)


# --- building: imports torch and the user's code ---------------------------------------------

def _require_torch(ref: str) -> None:
    import importlib.util

    from costmodel.crosscheck import EXTRA_HINT

    try:
        missing = importlib.util.find_spec("torch") is None  # found, not imported
    except ValueError:  # None in sys.modules: its import is blocked
        missing = True
    if missing:
        raise TargetError(f"{ref}: a Python model needs torch, which is not installed: "
                          f"{EXTRA_HINT}", field="model")


def _import_module(target: Target):
    """The module a target names, imported (a file under a name of its own)."""
    if target.is_file:
        return _import_file(target)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # as `python -m` does: the user's packages in this folder
    try:
        return importlib.import_module(target.where)
    except ModuleNotFoundError as e:
        if e.name and (target.where == e.name or target.where.startswith(e.name + ".")):
            raise TargetError(f"{target.ref}: no module named '{e.name}'",
                              field="model") from None
        raise _raised(target, "importing", e) from None
    except Exception as e:  # the user's module raised while importing
        raise _raised(target, "importing", e) from None


_FILES: dict[Path, Any] = {}


def _import_file(target: Target):
    path = Path(target.where).expanduser()
    try:
        path = path.resolve(strict=True)
        if not path.is_file():
            raise FileNotFoundError
    except (OSError, RuntimeError):
        raise TargetError(f"{target.ref}: no such Python file: {target.where}",
                          field="model") from None
    if path in _FILES:
        return _FILES[path]
    # A name of its own per file (two nets.py in different folders do not collide), in
    # sys.modules while it runs (dataclasses and pickling look their module up there).
    import hashlib
    import importlib.util

    name = "costmodel_target_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{target.ref}: cannot import {target.where}", field="model")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # as `python file.py` does: its sibling modules import
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise _raised(target, "importing", e) from None
    _FILES[path] = module
    return module


def _raised(target: Target, doing: str, e: BaseException) -> TargetError:
    from costmodel.crosscheck import EXTRA_HINT

    if isinstance(e, ModuleNotFoundError) and e.name and e.name.split(".")[0] == "torch":
        return TargetError(f"{target.ref}: needs torch, which is not installed: {EXTRA_HINT}",
                           field="model")
    first = (str(e).strip().splitlines() or [""])[0]
    what = target.where if doing == "importing" else target.name
    return TargetError(f"{target.ref}: {doing} {what} raised {type(e).__name__}: {first}",
                       field="model")


def build_target(ref: str | Target) -> nn.Module:
    """Import a target's module, call its callable with its arguments, and return the
    ``nn.Module`` it gives. Every failure is a TargetError naming the target."""
    target = ref if isinstance(ref, Target) else parse_target(ref)
    _require_torch(target.ref)
    module = _import_module(target)
    obj: Any = module
    for part in target.name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"{target.ref}: {target.where} has no attribute "
                              f"'{target.name}'", field="model") from None
    if not callable(obj):
        raise TargetError(f"{target.ref}: {target.name} is a {type(obj).__name__}, not a "
                          "class or a function", field="model")
    try:
        built = obj(*target.args, **dict(target.kwargs))
    except Exception as e:  # wrong arguments (TypeError) or the user's own error
        raise _raised(target, "calling", e) from None
    from torch import nn

    if not isinstance(built, nn.Module):
        raise TargetError(f"{target.ref}: {target.name}(...) returned a "
                          f"{type(built).__name__}, not a torch.nn.Module", field="model")
    return built


_LOADED: dict[tuple[str, tuple[int, int], int], ModelSpec] = {}
DEFAULT_INPUT = 224
"""The side a target is traced at when no input size is given."""


def load_target(ref: str, input: Any = None, in_channels: int = 3) -> ModelSpec:
    """Build a target, trace it at ``input`` (``DEFAULT_INPUT`` when None) with
    ``costmodel.capture.import_module`` and validate the spec it gives, the target standing
    for its file in errors. Cached in this process per (target, input, channels)."""
    from costmodel.options import parse_input

    size = parse_input(DEFAULT_INPUT if input is None else input)
    key = (ref, size, in_channels)
    if key not in _LOADED:
        _LOADED[key] = capture_target(ref, size, in_channels)[1]
    return _LOADED[key]


def capture_target(ref: str | Target, input: Any = None, in_channels: int = 3,
                   unknown: str = "error") -> tuple[dict, ModelSpec]:
    """A target's spec document as ``costmodel.capture.import_module`` writes it (traced at
    ``input``, in eval mode), and the ModelSpec it validates to; never cached (``costmodel
    import`` writes the document)."""
    from costmodel.options import parse_input

    target = ref if isinstance(ref, Target) else parse_target(ref)
    size = parse_input(DEFAULT_INPUT if input is None else input)
    module = build_target(target)
    module.eval()
    from costmodel.capture import import_module
    from costmodel.spec.loader import validate_spec

    try:
        doc = import_module(module, size, in_channels, name=model_name(target),
                            unknown=unknown)
        # the target as the user wrote it, not the synthetic module name a file is loaded under
        if isinstance(doc.get("source"), str):
            doc["source"] = doc["source"].replace(
                f"{type(module).__module__}.{type(module).__qualname__}", target.ref, 1)
        spec = validate_spec(doc, target.ref)
        spec._file = target.ref  # errors while evaluating it name the target, as a file's do
    except CostModelError as e:
        if e.file is None:
            e.file = target.ref
        raise
    return doc, spec


def model_name(target: Target) -> str:
    """The name results are reported under: the callable's, with its arguments as given."""
    return target.name + target.args_text
