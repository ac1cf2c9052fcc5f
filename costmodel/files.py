"""Writing the user's files safely: whole or not at all, and never over something that is not
a regular file.

Every file costmodel writes goes through here. A write goes to a temporary file in the target's
own folder, which is renamed over the target once complete, so a reader (or a full disk, or a
crash) never sees half a file; a failed write removes its temporary file. A target that exists
and is not a regular file (a directory, a FIFO, a device, a socket) or that the user cannot
write is refused with an ``OutputError`` (exit 2), and an existing file keeps its permission
bits. A symlink to a regular file is written through: the file it points to is replaced.

Several files written as one (``AtomicFiles``) are all staged before any is renamed into place;
should a rename still fail, the targets already replaced get their old content back (kept as a
hard link while committing, where the file system has them).
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
    text = str(path)
    # Path("out/") drops the slash: look at the text, where a trailing separator says "folder"
    if text == "" or target.name in ("", ".", "..") or text.endswith(("/", os.sep)):
        raise OutputError("is not a file name (it names a folder)", file=text, field="output")
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
        _check_folder(parent, path)
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
    _check_folder(real.parent, path)
    return real


def _check_folder(folder: Path, path: str | Path) -> None:
    """The new file is made in ``folder`` and renamed there: the folder must allow both."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"the folder {folder} is not writable", file=str(path),
                          field="output")


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
        if any(os.path.realpath(t) == os.path.realpath(target) for _, t, _ in self._staged):
            raise OutputError("is given twice as an output", file=str(path), field="output")
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
        """Move every staged file into place; returns the targets. If a rename fails, the
        targets replaced so far are put back as they were and ``OutputError`` is raised."""
        umask = os.umask(0)
        os.umask(umask)
        done: list[tuple[Path, bool, str | None]] = []  # (target, existed, link to old content)
        try:
            for tmp, target, mode in self._staged:
                # an existing file keeps its mode; a new one gets what the umask gives any
                os.chmod(tmp, mode if mode is not None else 0o666 & ~umask)
                backup = _keep(target) if mode is not None else None
                try:
                    os.replace(tmp, target)
                except OSError:
                    if backup is not None:
                        _remove(backup)
                    raise
                done.append((target, mode is not None, backup))
        except OSError as e:
            self._roll_back(done)
            self.discard()
            raise OutputError(f"cannot write: {e.strerror or e}",
                              file=str(e.filename or ""), field="output") from None
        for _, _, backup in done:
            if backup is not None:
                _remove(backup)
        self._done = True
        self._staged = []
        return [target for target, _, _ in done]

    @staticmethod
    def _roll_back(done: list[tuple[Path, bool, str | None]]) -> None:
        """Undo the renames of a failed commit: old content back, new files removed (a file
        that existed but could not be linked keeps its new content: never delete it)."""
        for target, existed, backup in reversed(done):
            try:
                if backup is not None:
                    os.replace(backup, target)
                elif not existed:
                    os.unlink(target)
            except OSError:
                pass
            if backup is not None:
                _remove(backup)

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


def _keep(target: Path) -> str | None:
    """A hard link to ``target``'s current content beside it (None where links fail)."""
    try:
        fd, backup = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                      suffix=".old")
    except OSError:
        return None
    os.close(fd)
    try:
        os.unlink(backup)  # mkstemp only reserved a fresh name; the link takes it
        os.link(target, backup)
    except OSError:
        _remove(backup)
        return None
    return backup


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass
