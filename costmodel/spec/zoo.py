"""The built-in model zoo: spec files found by short, case-insensitive names.

``mobilenet-0.5`` is the spec ``mobilenet`` with its variant ``0.5`` (or, where the spec
declares none by that name, width multiplier 0.5). ``-`` and ``_`` are interchangeable. A path
to a spec file works wherever a name does, and so does a path with variant suffixes after the
extension (``path/to/my.yaml-0.5``, ``my.yaml-x0_5``), unless a file has that very name.
"""

from __future__ import annotations

import difflib
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from costmodel.errors import SpecError, UnknownModelError
from costmodel.spec.loader import load_spec, read_document
from costmodel.spec.model import ModelSpec

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def zoo_dir() -> Path:
    """The built-in specs: ``costmodel/_specs`` in an installed wheel, ``specs/`` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_specs", package.parent / "specs"):
        if candidate.is_dir():
            return candidate
    raise UnknownModelError("the built-in specs are missing from this installation")


def normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def canonical_name(file: Path, variants: list[str]) -> str:
    """The name a zoo model is reported under, as ``costmodel list`` spells it: the file's
    stem and the variant suffixes, lower-case and joined by '-' (``shufflenet_v2_x1_0`` →
    ``shufflenet-v2-x1-0``), so JSON users can match on one spelling."""
    return normalize("-".join([file.stem, *map(str, variants)]))


def is_zoo_file(file: Path) -> bool:
    """Whether ``file`` is one of the built-in specs (by name or by path)."""
    try:
        return file.resolve().parent == zoo_dir() and file.suffix in SPEC_SUFFIXES
    except (OSError, UnknownModelError):
        return False


@lru_cache(maxsize=1)
def _files() -> dict[str, Path]:
    return {normalize(p.stem): p for p in sorted(zoo_dir().iterdir())
            if p.suffix in SPEC_SUFFIXES}


@dataclass(frozen=True)
class ZooEntry:
    name: str
    file: Path
    description: str
    family: str
    input: list[int]
    aliases: list[str]
    variants: dict[str, str]


@lru_cache(maxsize=1)
def zoo() -> list[ZooEntry]:
    """Every built-in spec with its variants (reads each file's header, validates nothing)."""
    entries = []
    for key, file in _files().items():
        data = read_document(file)
        size = data.get("input", 224)
        variants = data.get("variants") or {}
        entries.append(ZooEntry(
            name=key, file=file, description=str(data.get("description", "")).strip(),
            family=str(data.get("family", "")),
            input=[size, size] if isinstance(size, int) else list(size),
            aliases=[normalize(a) for a in data.get("aliases") or []],
            variants={str(k): str((v or {}).get("description", "")) for k, v in variants.items()},
        ))
    return entries


def _split(name: str, known: dict[str, Path]) -> tuple[Path, list[str]] | None:
    pieces = normalize(name).split("-")
    for k in range(len(pieces), 0, -1):
        base = "-".join(pieces[:k])
        if base in known:
            return known[base], pieces[k:]
    return None


_VARIANT_PATH = re.compile(r"(.*\.(?:yaml|yml|json))-(.+)", re.IGNORECASE | re.DOTALL)
"""A spec file's path, then variant suffixes: ``my.yaml-0.5`` (a suffix after the extension)."""


def is_spec_path(ref: str) -> bool:
    return (ref.lower().endswith(SPEC_SUFFIXES) or "/" in ref or "\\" in ref
            or _VARIANT_PATH.fullmatch(ref) is not None)


def resolve(ref: str) -> ModelSpec:
    """A zoo name (with variant suffixes) or a spec file path → a validated ModelSpec.

    Zoo specs are kept in memory (they do not change while a process runs); a spec file is
    loaded each time — through the disk cache, keyed by the file's bytes — so that the same
    relative path in another folder, or a file edited since, is never served stale."""
    file, variants = locate(ref)
    if is_zoo_file(file):
        return _load_zoo(file, tuple(variants))
    return load_spec(file, variants)


@lru_cache(maxsize=256)
def _load_zoo(file: Path, variants: tuple[str, ...]) -> ModelSpec:
    return load_spec(file, list(variants))


def locate(ref: str) -> tuple[Path, list[str]]:
    """A zoo name or a spec file path → (the spec file, the variant suffixes to apply), for
    callers that load the file themselves (a sweep over its ``vars``)."""
    with_variants = _VARIANT_PATH.fullmatch(ref)
    if with_variants and not _exists(ref):  # a file named "my.yaml-0.5" is taken as it is
        base, suffix = with_variants.groups()
        pieces = normalize(suffix).split("-")
        if "" in pieces:
            raise UnknownModelError(f"'{ref}': an empty variant suffix after '{base}'")
        try:
            return _spec_file(base), pieces
        except UnknownModelError:
            raise UnknownModelError(f"no such spec file: {base} (from '{ref}': a spec file "
                                    f"then variant suffixes)") from None
    if is_spec_path(ref) or _is_file(ref):
        return _spec_file(ref), []
    found = _split(ref, _files())
    if found is None:
        aliases = {a: e.file for e in zoo() for a in e.aliases}
        found = _split(ref, aliases)
    if found is None:
        names = list(_files()) + [a for e in zoo() for a in e.aliases]
        close = difflib.get_close_matches(normalize(ref), names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model '{ref}'{hint} (`costmodel list` shows the zoo)")
    return found


def _is_file(ref: str) -> bool:
    """Whether a bare name is a file here; one that cannot be looked at is a zoo name."""
    try:
        return Path(ref).is_file()
    except OSError:  # pathlib raises PermissionError for a name inside an unreadable folder
        return False


def _exists(ref: str) -> bool:
    try:
        return Path(ref).exists()
    except OSError:
        return True  # cannot be looked at: taken as given, for _spec_file to explain


def _spec_file(ref: str) -> Path:
    """The path of a spec file, refused with a located error when it cannot be read as one."""
    path = Path(ref)
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise UnknownModelError(f"no such spec file: {ref}") from None
    except OSError as e:  # a folder on the way that cannot be read, a symlink loop…
        from costmodel.documents import os_reason

        raise SpecError(f"cannot read the spec file: {os_reason(e)}", file=ref) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, socket or device"
        raise SpecError(f"cannot read the spec file: it is {kind}", file=ref)
    return path
