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

ROOT = Path(__file__).resolve().parents[2]
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


# --- verify: what torch cannot build is invalid input (2), never a crash ------------------------

TINY = """\
name: tiny
input: 8
layers:
  - {type: conv, name: c, out: 4}
  - {type: global_pool}
  - {type: flatten}
  - {type: linear, out: 2}
"""


@pytest.fixture
def torch_verify():
    pytest.importorskip("torch")
    pytest.importorskip("fvcore")
    import costmodel.crosscheck.verify as v
    return v


@pytest.mark.torch
def test_verify_refuses_what_would_not_fit_in_memory(tmp_path, monkeypatch, torch_verify):
    """Refused up front (the estimate: 4 bytes × (input + every layer's output + weights)),
    before torch allocates anything."""
    from costmodel.api import evaluate_model

    result = evaluate_model("mobilenet", input=4000)
    h = w = 4000
    assert torch_verify.memory_needed(result) == 4 * (
        3 * h * w + sum(r.out.numel for r in result.rows) + result.totals.params)
    monkeypatch.setattr(torch_verify, "memory_available", lambda: 8 * 10**9)
    monkeypatch.setattr(torch_verify, "build", _raise(AssertionError("must not be built")))
    res = runner.invoke(app, ["verify", "--input", "4000", "mobilenet"])
    assert res.exit_code == EXIT_INVALID, res.output
    assert "too large to build in torch: mobilenet at 4000×4000 needs about 19.5 GB" in \
        res.stderr and "8 GB of memory is available" in res.stderr


@pytest.mark.torch
@pytest.mark.parametrize("exc", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
                 "allocate memory: you tried to allocate 1024000000 bytes. Error code 12"),
    MemoryError()])
def test_verify_allocation_failure_is_exit_2(tmp_path, monkeypatch, torch_verify, exc):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    monkeypatch.setattr(torch_verify, "example_input", _raise(exc))
    res = runner.invoke(app, ["verify", str(spec)])
    assert res.exit_code == EXIT_INVALID, res.output
    assert res.stderr.startswith(f"error: {spec}: field 'input': too large to build in torch:")


@pytest.mark.torch
@pytest.mark.parametrize("name", ["forward", "training", "eval", "to"])
def test_verify_layer_named_like_a_module_attribute(tmp_path, torch_verify, name):
    spec = tmp_path / "named.yaml"
    spec.write_text(TINY.replace("{type: conv, name: c, out: 4}",
                                 f"{{type: sequential, name: blk, layers: "
                                 f"[{{type: conv, name: {name}, out: 4}}]}}"))
    res = runner.invoke(app, ["verify", str(spec)])
    assert res.exit_code == EXIT_INVALID, res.output
    assert res.stderr.startswith(f"error: {spec}: layer 'blk.{name}': field 'name': torch "
                                 f"cannot name a submodule '{name}'")
