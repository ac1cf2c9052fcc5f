"""Files: every write is whole or not at all, never over a non-regular or read-only file, and a
report removes only plots an earlier report recorded making (issue #12, classes 6 and 7)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costmodel.cli import app
from costmodel.errors import OutputError
from costmodel.files import AtomicFiles, check_target, write_atomic
from costmodel.report.markdown import MANIFEST

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (dot files, links and FIFOs too): kind, mode, content."""
    out = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(root) / name
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[str(path.relative_to(folder))] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                out[str(path.relative_to(folder))] = ("file", stat.S_IMODE(st.st_mode),
                                                      path.read_bytes())
            else:
                out[str(path.relative_to(folder))] = (stat.S_IFMT(st.st_mode),
                                                      stat.S_IMODE(st.st_mode))
    return out


def temporaries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*")
                  if p.name.endswith((".tmp", ".old")))


# --------------------------------------------------------------------------------------------
# costmodel.files
# --------------------------------------------------------------------------------------------

def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "fifo")
    return tmp / "fifo"


def _read_only(tmp: Path) -> Path:
    (tmp / "ro.txt").write_text("keep")
    os.chmod(tmp / "ro.txt", 0o444)  # tests run as root: the mode bits, not access(), refuse
    return tmp / "ro.txt"


def _dangling(tmp: Path) -> Path:
    (tmp / "link").symlink_to(tmp / "nowhere")
    return tmp / "link"


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: f"{tmp}/new/", "it names a folder"),      # a trailing '/' means a folder
    (lambda tmp: tmp / "missing" / "x.csv", "does not exist"),
    (_fifo, "not a regular file"),
    (_read_only, "read-only"),
    (_dangling, "dangling"),
    (lambda tmp: "", "not a file name"),
])
def test_check_target_refuses(tmp_path, make, message):
    target = make(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match=message):
        check_target(target)
    with pytest.raises(OutputError, match=message):
        write_atomic(target, "x")
    assert snapshot(tmp_path) == before


def test_check_target_refuses_a_device():
    with pytest.raises(OutputError, match="not a regular file"):
        check_target("/dev/null")


def test_write_keeps_the_mode_and_writes_through_a_link(tmp_path):
    real, link = tmp_path / "real.txt", tmp_path / "link.txt"
    real.write_text("old")
    os.chmod(real, 0o640)
    link.symlink_to(real)
    assert check_target(link) == real
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_a_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o666 & ~0o027


def test_a_failed_stage_leaves_every_target_as_it_was(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        with AtomicFiles() as out:
            out.stage(tmp_path / "a.txt", "new a")
            out.stage(tmp_path / "missing" / "b.txt", "b")
            out.commit()
    assert snapshot(tmp_path) == before


def test_the_same_target_twice_is_refused(tmp_path):
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    (tmp_path / "a.txt").write_text("a")
    with pytest.raises(OutputError, match="given twice"):
        with AtomicFiles() as out:
            out.stage(tmp_path / "a.txt", "1")
            out.stage(tmp_path / "link.txt", "2")
    assert (tmp_path / "a.txt").read_text() == "a" and temporaries(tmp_path) == []


def _failing_replace(monkeypatch, tmp_path, fail_at: int):
    """os.replace fails on the ``fail_at``-th rename of a staged file under ``tmp_path``
    (0: the first); everything else (restoring a backup, the spec cache) works."""
    real, calls = os.replace, []

    def replace(src, dst, *a, **k):
        if str(src).startswith(str(tmp_path)) and str(src).endswith(".tmp"):
            calls.append(src)
            if len(calls) - 1 == fail_at:
                raise OSError(28, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("fail_at", [0, 1, 2])
def test_a_failed_commit_puts_everything_back(tmp_path, monkeypatch, fail_at):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "c.txt").write_text("old c")
    before = snapshot(tmp_path)
    _failing_replace(monkeypatch, tmp_path, fail_at)
    with pytest.raises(OutputError, match="No space left"):
        with AtomicFiles() as out:
            for name in ("a.txt", "b.txt", "c.txt"):  # b.txt is new
                out.stage(tmp_path / name, f"new {name}")
            out.commit()
    assert snapshot(tmp_path) == before  # replaced ones restored, the new one removed
    assert temporaries(tmp_path) == []


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def replace(src, dst, *a, **k):
        raise OSError(5, "Input/output error", str(dst))

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match="Input/output error"):
        write_atomic(tmp_path / "x.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_files_module_writes_through_temporaries_in_the_same_folder(tmp_path, monkeypatch):
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d: (seen.append((s, d)), real(s, d))[1])
    write_atomic(tmp_path / "x.txt", "x")
    [(src, dst)] = seen
    assert Path(src).parent == Path(dst).parent == tmp_path and Path(src).name.startswith(".")


# --------------------------------------------------------------------------------------------
# report: the manifest, a linked plot folder, all or nothing
# --------------------------------------------------------------------------------------------

def report(out: Path, *models: str):
    return run("report", *(models or ("effnet",)), "--input", "32", "-o", out)


def test_report_keeps_the_users_png_and_removes_its_own_stale_one(tmp_path):
    out, folder = tmp_path / "r.md", tmp_path / "r_files"
    res = report(out, "effnet", "mobilenet")
    assert res.exit_code == 0, res.output
    manifest = json.loads((folder / MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["flops-vs-params.png", "layers-effnet.png",
                                         "layers-mobilenet.png"]
    (folder / "mine.png").write_bytes(PNG + b"the user's")
    res = report(out, "effnet")  # one model: no FLOPs-vs-params chart any more
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in folder.iterdir()) == [
        MANIFEST, "layers-effnet.png", "mine.png"]
    assert (folder / "mine.png").read_bytes() == PNG + b"the user's"
    assert sorted(json.loads((folder / MANIFEST).read_text())["files"]) == ["layers-effnet.png"]


def test_report_keeps_a_recorded_plot_the_user_changed(tmp_path):
    out, folder = tmp_path / "r.md", tmp_path / "r_files"
    assert report(out, "effnet", "mobilenet").exit_code == 0
    (folder / "layers-mobilenet.png").write_bytes(PNG + b"edited")
    assert report(out, "effnet").exit_code == 0
    assert (folder / "layers-mobilenet.png").read_bytes() == PNG + b"edited"


@pytest.mark.parametrize("name", ["../outside.png", "sub/x.png", ".hidden.png", "notes.txt"])
def test_a_planted_manifest_cannot_delete_outside_its_plots(tmp_path, name):
    import hashlib

    out, folder = tmp_path / "r.md", tmp_path / "r_files"
    folder.mkdir()
    (folder / "sub").mkdir()
    victim = folder / name
    victim.write_bytes(b"victim")
    (folder / MANIFEST).write_text(json.dumps({
        "kind": "costmodel report plots", "report": "r.md",
        "files": {name: hashlib.sha256(b"victim").hexdigest()}}))
    assert report(out).exit_code == 0
    assert victim.read_bytes() == b"victim"


def test_report_refuses_a_linked_plot_folder(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "flops-vs-params.png").write_bytes(PNG + b"not the report's")
    (elsewhere / "layers-old.png").write_bytes(PNG)
    (elsewhere / MANIFEST).write_text(json.dumps({  # even a manifest naming them
        "kind": "costmodel report plots", "report": "r.md",
        "files": {"layers-old.png": __import__("hashlib").sha256(PNG).hexdigest()}}))
    work = tmp_path / "work"
    work.mkdir()
    (work / "r_files").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(tmp_path)
    res = report(work / "r.md")
    assert res.exit_code == 2
    assert "symbolic link" in res.output and "r_files" in res.output
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("target", ["adir", "adir/", "new/", "missing/r.md"])
def test_report_onto_a_folder_fails_before_any_plot(tmp_path, target):
    (tmp_path / "adir").mkdir()
    before = snapshot(tmp_path)
    res = report(f"{tmp_path}/{target}")
    assert res.exit_code == 2, res.output
    assert "field 'output'" in res.output
    assert snapshot(tmp_path) == before


def test_a_report_that_fails_while_drawing_writes_nothing(tmp_path, monkeypatch):
    from costmodel.report import plots

    def draw(plot):
        if plot.file.startswith("layers-"):
            raise RuntimeError("drawing failed")
        return PNG

    monkeypatch.setattr(plots, "draw", draw)
    with pytest.raises(RuntimeError):
        from costmodel.report.markdown import ReportRequest, build_report, write_report
        out = tmp_path / "r.md"
        write_report(build_report(ReportRequest(("effnet",), input="32"), out), out)
    assert list(tmp_path.iterdir()) == []


def test_a_report_that_fails_to_write_leaves_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "r.md"
    assert report(out, "effnet", "mobilenet").exit_code == 0
    before = snapshot(tmp_path)
    _failing_replace(monkeypatch, tmp_path, fail_at=2)
    res = report(out, "effnet")
    assert res.exit_code == 2 and "No space left" in res.output
    assert snapshot(tmp_path) == before  # the stale plot too: nothing removed on failure


def test_a_first_report_that_fails_to_write_leaves_no_folder(tmp_path, monkeypatch):
    _failing_replace(monkeypatch, tmp_path, fail_at=0)
    res = report(tmp_path / "r.md")
    assert res.exit_code == 2, res.output
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# sweep, scale --write, swap -o
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("plot", ["missing/p.png", "adir", "fifo.png", "ro.png", "g.csv.png"])
def test_sweep_checks_every_target_before_writing(tmp_path, plot):
    (tmp_path / "adir").mkdir()
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "ro.png").write_bytes(PNG)
    os.chmod(tmp_path / "ro.png", 0o444)
    (tmp_path / "g.csv.png").symlink_to(tmp_path / "g.csv")  # the same file as --output
    (tmp_path / "g.csv").write_text("old grid")
    before = snapshot(tmp_path)
    res = run("sweep", "effnet", "--width", "0.5,1", "-o", tmp_path / "g.csv",
              "--plot", tmp_path / plot)
    assert res.exit_code == 2, res.output
    assert snapshot(tmp_path) == before


def test_sweep_writes_grid_and_plot_together(tmp_path, monkeypatch):
    (tmp_path / "g.csv").write_text("old grid")
    before = snapshot(tmp_path)
    _failing_replace(monkeypatch, tmp_path, fail_at=1)  # the plot's rename fails
    res = run("sweep", "effnet", "--width", "0.5,1", "-o", tmp_path / "g.csv",
              "--plot", tmp_path / "p.png")
    assert res.exit_code == 2, res.output
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["fifo", "read-only", "directory"])
@pytest.mark.parametrize("command", [
    ["swap", "effnet-baseline", "-b", "effnet", "-o"],
    ["scale", "effnet", "--width-factor", "0.5", "--write"],
])
def test_swap_and_scale_never_replace_a_non_regular_or_read_only_file(tmp_path, kind,
                                                                      command):
    target = tmp_path / "t.yaml"  # --write wants a spec suffix
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "read-only":
        target.write_text("keep")
        os.chmod(target, 0o444)
    else:
        target.mkdir()
    before = snapshot(tmp_path)
    res = run(*command, target)
    assert res.exit_code == 2, res.output
    assert "field 'output'" in res.output
    assert snapshot(tmp_path) == before


def test_scale_write_is_atomic(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text("old")
    _failing_replace(monkeypatch, tmp_path, fail_at=0)
    res = run("scale", "effnet", "--width-factor", "0.5", "--write", tmp_path / "s.yaml")
    assert res.exit_code == 2
    assert (tmp_path / "s.yaml").read_text() == "old" and temporaries(tmp_path) == []
