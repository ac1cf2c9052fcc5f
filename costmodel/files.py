"""Writing the user's files safely: whole or not at all, and never over something that is not
a regular file.

Every file costmodel writes goes through here. A write goes to a temporary file in the target's
own folder, which is renamed over the target once complete, so a reader (or a full disk, or a
crash) never sees half a file; a failed write removes its temporary file. A target that exists
and is not a regular file (a directory, a FIFO, a device, a socket) or that the user cannot
write is refused with an ``OutputError`` (exit 2), and an existing file keeps its permission
bits. A symlink to a regular file is written through: the file it points to is replaced.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from costmodel.errors import OutputError


def check_target(path: str | Path) -> Path:
    """The real path a write to ``path`` would replace, after refusing targets that must not
    be replaced. Call it for every output before any work is written."""
    target = Path(path)
    if str(path) == "" or target.name in ("", ".", ".."):
        raise OutputError(f"'{path}' is not a file name", file=str(path), field="output")
    try:
        st = os.stat(target)  # follows a symlink
    except FileNotFoundError:
        if target.is_symlink():
            raise OutputError("is a dangling symbolic link; not writing through it",
                              file=str(path), field="output") from None
        parent = target.parent
        if not parent.is_dir():
            raise OutputError(f"the folder {parent} does not exist", file=str(path),
                              field="output") from None
        return target
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror or e}", file=str(path),
                          field="output") from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError("is a directory; give a file name", file=str(path), field="output")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError("is not a regular file (a device, FIFO or socket); not replacing it",
                          file=str(path), field="output")
    real = Path(os.path.realpath(target))
    if not os.access(real, os.W_OK) or not (st.st_mode & stat.S_IWUSR):
        raise OutputError("is read-only; not replacing it", file=str(path), field="output")
    return real


class AtomicFiles:
    """Several files written as one: each is staged in a temporary file beside its target, and
    only ``commit`` renames them into place (all staged first, so a failure while staging
    leaves every target as it was). Leaving the ``with`` block without committing — or on an
    error — removes every temporary file.

    >>> with AtomicFiles() as out:
    ...     out.stage("report.md", text)
    ...     out.stage("report_files/a.png", png)
    ...     out.commit()
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, Path, int | None]] = []  # (temporary, target, mode)
        self._done = False

    def __enter__(self) -> "AtomicFiles":
        return self

    def __exit__(self, *exc) -> None:
        if not self._done:
            self.discard()

    def stage(self, path: str | Path, data: bytes | str) -> Path:
        target = check_target(path)
        mode = None
        if target.exists():
            mode = stat.S_IMODE(os.stat(target).st_mode)
        if isinstance(data, str):
            data = data.encode("utf-8")
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                       suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            if tmp is not None:
                _remove(tmp)
            raise OutputError(f"cannot write: {e.strerror or e}", file=str(path),
                              field="output") from None
        self._staged.append((tmp, target, mode))
        return target

    def commit(self) -> list[Path]:
        """Move every staged file into place; returns the targets."""
        done = []
        try:
            for tmp, target, mode in self._staged:
                if mode is not None:
                    os.chmod(tmp, mode)
                else:  # a new file gets the mode the umask gives any new file
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(tmp, 0o666 & ~umask)
                os.replace(tmp, target)
                done.append(target)
        except OSError as e:
            self.discard()
            raise OutputError(f"cannot write: {e.strerror or e}",
                              file=str(e.filename or ""), field="output") from None
        self._done = True
        self._staged = []
        return done

    def discard(self) -> None:
        for tmp, _, _ in self._staged:
            _remove(tmp)
        self._staged = []
        self._done = True


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write one file whole or not at all (see the module's docstring)."""
    with AtomicFiles() as out:
        out.stage(path, data)
        return out.commit()[0]


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass
