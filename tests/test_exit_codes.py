"""Exit codes mean one thing each (costmodel.errors): 0 ok, 1 a computed verdict, 2 invalid
input, 3 an internal error (one line, a traceback only with COSTMODEL_DEBUG=1), 130 Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import costmodel.api
import costmodel.budgets
from costmodel.cli import app
from costmodel.errors import EXIT_INTERNAL, EXIT_INVALID, SpecError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _raise(exc: BaseException):
    def boom(*args, **kwargs):
        raise exc
    return boom


def test_every_command_has_the_exit_codes():
    """Also commands written without @handles_errors (check): the edge wraps them all."""
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert "check" in names and "compare" in names
    for command in app.registered_commands:
        assert getattr(command.callback, "handles_errors", False), command.name


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), RecursionError("maximum recursion "
                                 "depth exceeded"), MemoryError(), KeyError("x"),
                                 ValueError("line one\nline two")])
def test_an_internal_error_is_exit_3_in_one_line(monkeypatch, exc):
    monkeypatch.delenv("COSTMODEL_DEBUG", raising=False)
    monkeypatch.setattr(costmodel.api, "compare", _raise(exc))
    res = runner.invoke(app, ["compare", "mobilenet"])
    assert res.exit_code == EXIT_INTERNAL
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"internal error: {type(exc).__name__}: ")
    assert lines[0].endswith("(set COSTMODEL_DEBUG=1 for the traceback)")
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_cost_model_error_is_exit_2(monkeypatch):
    monkeypatch.setattr(costmodel.api, "compare", _raise(SpecError("bad", file="x.yaml")))
    res = runner.invoke(app, ["compare", "mobilenet"])
    assert res.exit_code == EXIT_INVALID
    assert res.stderr == "error: x.yaml: bad\n"


def test_usage_errors_stay_2():
    res = runner.invoke(app, ["compare", "mobilenet", "--no-such-option"])
    assert res.exit_code == 2


def test_keyboard_interrupt_is_130_quietly(monkeypatch):
    monkeypatch.setattr(costmodel.api, "compare", _raise(KeyboardInterrupt()))
    res = runner.invoke(app, ["compare", "mobilenet"])
    assert res.exit_code == 130
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr


def _budgets(tmp_path: Path) -> Path:
    file = tmp_path / "budgets.yaml"
    file.write_text("models: [{model: effnet, limits: {flops: 10M}}]\n")
    return file


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), RecursionError("too deep")])
def test_check_never_passes_or_fails_a_crash(tmp_path, monkeypatch, exc):
    """A crash inside `check` is neither a pass (0) nor over budget (1); the job summary says
    the check could not run."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setattr(costmodel.budgets, "check_budgets", _raise(exc))
    res = runner.invoke(app, ["check", "--budgets", str(_budgets(tmp_path))])
    assert res.exit_code == EXIT_INTERNAL
    assert res.stderr.startswith(f"internal error: {type(exc).__name__}:")
    text = summary.read_text()
    assert "could not run (internal error)" in text and type(exc).__name__ in text


def test_check_summary_quotes_a_message_safely(tmp_path, monkeypatch):
    """An error quoting the user's text stays inside one code span of the summary."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setattr(costmodel.budgets, "check_budgets",
                        _raise(SpecError("name ``x`` \n# heading\x1b[31m")))
    res = runner.invoke(app, ["check", "--budgets", str(_budgets(tmp_path))])
    assert res.exit_code == EXIT_INVALID
    text = summary.read_text()
    code = text.split("\n\n", 1)[1].strip()
    assert code == "``` name ``x`` # heading\\x1b[31m ```"


def test_check_within_budget_is_still_0(tmp_path):
    res = runner.invoke(app, ["check", "--budgets", str(_budgets(tmp_path))])
    assert res.exit_code == 0, res.output


def _run_main(code: str, debug: bool) -> subprocess.CompletedProcess:
    """The installed entry point's path (``main()``) in a fresh process, after ``code``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("COSTMODEL_DEBUG", None)
    if debug:
        env["COSTMODEL_DEBUG"] = "1"
    script = "\n".join(["import sys", "import costmodel.api", code,
                         "from costmodel.cli import main",
                         "sys.argv = ['costmodel', 'compare', 'mobilenet']", "main()"])
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize("debug", [False, True])
def test_main_reports_a_deep_recursion_as_exit_3(debug):
    """A real RecursionError escaping a command: one line, or with COSTMODEL_DEBUG=1 the
    traceback too."""
    proc = _run_main("def deep(*a, **k):\n    return deep()\ncostmodel.api.compare = deep",
                     debug)
    assert proc.returncode == EXIT_INTERNAL, proc.stderr[-2000:]
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("internal error: RecursionError: maximum recursion depth")
    assert ("Traceback (most recent call last)" in proc.stderr) is debug
    if not debug:
        assert len(proc.stderr.splitlines()) == 1
    assert proc.stdout == ""
