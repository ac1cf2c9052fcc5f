"""Python targets (``mypkg.nets:MyNet``) where a model name goes: telling them from zoo names
and spec paths without importing anything, parsing their literal arguments, routing them
through ``api.load`` and budgets files, and the analytic path staying free of torch. Building
real modules is tested in tests/crosscheck/test_targets_build.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import costmodel.targets as targets
from costmodel import api
from costmodel.budgets import _resolve_ref, check_budgets, load_budgets
from costmodel.cli import app
from costmodel.crosscheck import EXTRA_HINT
from costmodel.errors import CostModelError
from costmodel.options import parse_input
from costmodel.spec.loader import validate_spec
from costmodel.targets import TargetError, is_target, parse_target

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize("ref", [
    "mypkg.nets:MyNet", "nets:Net", "nets.py:Net", "dir/nets.py:Net(width=4)",
    "C:\\nets\\file.py:Net", "torchvision.models:resnet18", "a.b:Outer.build",
    "nets.py:Net(4, name='a:b(c)')", "nets.py: Net", "Nets.PY:net"])
def test_targets_are_recognised(ref):
    assert is_target(ref)


@pytest.mark.parametrize("ref", [
    "mobilenet", "mobilenet-0.5", "shufflenet_v2_x1_0", "my.yaml-0.5", "specs/vgg16.yaml",
    "C:\\specs\\x.yaml", "C:\\specs\\my.yaml-0.5", "C:/specs/net.yml", "dir/x.json",
    "mypkg.nets:spec.yaml", "a:b:c.yaml", ":Net", "nets.py:", "nets.py:1Net", "x:y-z",
    "dir/net.txt:Net", "", "nets.py:Net(" + "1," * 2000 + ")"])
def test_zoo_names_and_spec_paths_are_not_targets(ref):
    assert not is_target(ref)


def test_the_leftmost_split_that_fits_is_taken():
    t = parse_target("C:\\nets\\file.py:Net(4, name='a:b(c)', sizes=[1, 2], opts={'k': None})")
    assert (t.where, t.is_file, t.name) == ("C:\\nets\\file.py", True, "Net")
    assert t.args == (4,) and dict(t.kwargs) == {"name": "a:b(c)", "sizes": [1, 2],
                                                 "opts": {"k": None}}
    assert targets.model_name(t) == "Net(4, name='a:b(c)', sizes=[1, 2], opts={'k': None})"
    m = parse_target("mypkg.nets:MyNet")
    assert (m.where, m.is_file, m.name, m.args, m.kwargs) == ("mypkg.nets", False, "MyNet", (), ())


@pytest.mark.parametrize("ref", [
    "nets.py:Net(width=__import__('os').system('true'))", "nets.py:Net(width=abs(-1))",
    "nets.py:Net(*sizes)", "nets.py:Net(**opts)", "nets.py:Net(width=)",
    "nets.py:Net(1)(2)", "nets.py:Net(x=[1, y])", "mobilenet", "C:\\specs\\x.yaml"])
def test_arguments_are_literals_or_refused(ref):
    with pytest.raises(TargetError) as e:
        parse_target(ref)
    assert ref in str(e.value) and e.value.field == "model"


def test_refused_arguments_exit_2_before_torch_is_imported():
    r = runner.invoke(app, ["import", "nets.py:Net(width=abs(-1))"])
    assert r.exit_code == 2 and "must be Python literals" in r.output
    r = runner.invoke(app, ["show", "nets.py:Net(width=abs(-1))"])
    assert r.exit_code == 2 and "nets.py:Net(width=abs(-1))" in r.output


def test_a_missing_module_or_file_exits_2_naming_the_target(tmp_path):
    for ref, says in ((f"{tmp_path}/absent.py:Net", "no such Python file"),
                      ("costmodel_no_such_pkg.nets:Net", "no module named "
                                                         "'costmodel_no_such_pkg'")):
        r = runner.invoke(app, ["show", ref])
        assert r.exit_code == 2, r.output
        assert ref in r.output and (says in r.output or EXTRA_HINT in r.output)


def test_torch_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # find_spec: its import is blocked
    with pytest.raises(TargetError) as e:
        targets.build_target("mypkg.nets:MyNet")
    assert EXTRA_HINT in str(e.value) and "mypkg.nets:MyNet" in str(e.value)
    r = runner.invoke(app, ["import", "mypkg.nets:MyNet"])
    assert r.exit_code == 2 and EXTRA_HINT in r.output


def _fake_load(calls):
    """A load_target that records its calls and returns a one-conv spec at that input."""
    def load_target(ref, input=None, in_channels=3):
        calls.append((ref, input))
        doc = {"name": "fake", "input": list(parse_input(224 if input is None else input)),
               "layers": [{"name": "conv", "type": "conv", "out": 8, "kernel": 3}]}
        return validate_spec(doc, ref)
    return load_target


def test_api_load_routes_targets_with_their_input(monkeypatch):
    calls = []
    monkeypatch.setattr(targets, "load_target", _fake_load(calls))
    r = api.evaluate_model("mypkg.nets:MyNet", input=32)
    assert calls == [("mypkg.nets:MyNet", 32)] and r.input == (32, 32)
    assert r.totals.params == 8 * 3 * 3 * 3
    assert api.load("mobilenet").name == "mobilenet" and len(calls) == 1  # zoo: not a target
    results = api.compare(["mypkg.nets:MyNet", "mobilenet"], input="64x48")
    assert calls[-1] == ("mypkg.nets:MyNet", "64x48") and results[0].input == (64, 48)


def test_cli_commands_take_targets(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(targets, "load_target", _fake_load(calls))
    for args in (["show", "mypkg.nets:MyNet", "--input", "40"],
                 ["compare", "mypkg.nets:MyNet", "mobilenet", "--input", "40"],
                 ["dataflow", "mypkg.nets:MyNet", "--input", "40"],
                 ["rules", "mypkg.nets:MyNet", "--input", "40"],
                 ["report", "mypkg.nets:MyNet@40", "-o", str(tmp_path / "r.md"), "--no-plots"]):
        calls.clear()
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
        assert calls and calls[0] == ("mypkg.nets:MyNet", "40"), (args, calls)


def test_budgets_take_targets_relative_to_the_file(monkeypatch, tmp_path):
    base = tmp_path / "ci"
    assert _resolve_ref("nets.py:Net(width=2)", base) == f"{base}/nets.py:Net(width=2)"
    assert _resolve_ref("/abs/nets.py:Net", base) == "/abs/nets.py:Net"
    assert _resolve_ref("mypkg.nets:MyNet", base) == "mypkg.nets:MyNet"
    assert _resolve_ref("mobilenet", base) == "mobilenet"
    calls = []
    monkeypatch.setattr(targets, "load_target", _fake_load(calls))
    base.mkdir()
    f = base / "budgets.yaml"
    f.write_text("models:\n  - model: nets.py:Net\n    input: 32\n    limits: {params: 100}\n")
    result = check_budgets(load_budgets(f), f)
    assert calls == [(f"{base}/nets.py:Net", (32, 32))]
    assert [(x.metric, x.value, x.over) for x in result.findings] == [("params", 216, True)]


@pytest.mark.parametrize("model", ["mypkg.nets:MyNet", "dir/nets.py:Net"])
def test_a_git_revision_baseline_needs_a_spec_file(tmp_path, model):
    f = tmp_path / "budgets.yaml"
    f.write_text(f"models:\n  - model: {model}\n    baseline: {{rev: HEAD}}\n"
                 "    limits: {params: +5%}\n")
    with pytest.raises(CostModelError) as e:
        load_budgets(f)
    assert f"'{model}' is a Python target" in str(e.value)


def test_the_analytic_path_imports_no_torch():
    code = ("import sys\nfrom costmodel.cli import main\n"
            "sys.argv = ['costmodel', 'compare', 'mobilenet', 'vgg16', '-f', 'json']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = [m for m in ('torch', 'fvcore', 'costmodel.capture', 'costmodel.crosscheck.against') "
            "if m in sys.modules]\n"
            "sys.stderr.write(repr(heavy))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().endswith("[]"), p.stderr
