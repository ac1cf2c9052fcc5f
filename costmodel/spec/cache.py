"""A cache of validated specs, so that a command does not parse and validate an unchanged spec
file again (building Pydantic's validators for the whole layer union costs more than
everything else a `costmodel compare` does).

Entries live in $COSTMODEL_CACHE_DIR, else $XDG_CACHE_HOME/costmodel, else ~/.cache/costmodel;
COSTMODEL_CACHE=0 turns the cache off. An entry is keyed by the spec file (absolute path,
size, modification time), the variants applied, and a fingerprint of the code that defines
specs (the package version and the modification times of its spec and layer modules), so any
change to either makes a new entry; only the newest MAX_ENTRIES are kept. Unreadable entries
are ignored; writes are atomic.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from costmodel.spec.model import ModelSpec

_PACKAGE = Path(__file__).resolve().parent.parent
MAX_ENTRIES = 256
"""Entries kept: every store beyond this removes the oldest (each code version makes new ones)."""


def enabled() -> bool:
    return os.environ.get("COSTMODEL_CACHE", "1") not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    if os.environ.get("COSTMODEL_CACHE_DIR"):
        return Path(os.environ["COSTMODEL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "costmodel"


@lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    from costmodel import __version__

    parts = [__version__]
    for folder in ("spec", "layers"):
        for f in sorted((_PACKAGE / folder).glob("*.py")):
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _entry(file: Path, variants: list[str]) -> Path | None:
    try:
        st = file.stat()
    except OSError:
        return None
    key = "\n".join([_code_fingerprint(), str(file.resolve()), str(st.st_size),
                     str(st.st_mtime_ns), *variants])
    return cache_dir() / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".pickle")


def load(file: Path, variants: list[str]) -> "ModelSpec | None":
    """The cached spec for this file and variants, or None."""
    if not enabled():
        return None
    entry = _entry(file, variants)
    if entry is None:
        return None
    try:
        with open(entry, "rb") as f:
            spec = pickle.load(f)
    except Exception:  # missing, truncated or from another version: validate again
        return None
    spec._file = str(file)
    return spec


def store(file: Path, variants: list[str], spec: "ModelSpec") -> None:
    """Cache a validated spec; failures to write are not the user's problem and are ignored."""
    if not enabled():
        return
    entry = _entry(file, variants)
    if entry is None:
        return
    import tempfile

    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(spec, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
        _prune(entry.parent)
    except OSError:
        pass


def _prune(folder: Path) -> None:
    """Keep the newest MAX_ENTRIES entries (by modification time)."""
    entries = list(folder.glob("*.pickle"))
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime_ns)
    for old in entries[:len(entries) - MAX_ENTRIES]:
        old.unlink(missing_ok=True)
