"""What a model's totals hold apart (training-only params of aux blocks) or leave out (layers
of unknown cost from an import with --allow-unknown) is said in every output: the notes of
show and compare, and their JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from costmodel.cli import app

runner = CliRunner()

SPEC = """\
name: auxy
input: 16
layers:
  - {type: conv, out: 8, kernel: 3}
  - {type: aux, name: aux1, layers: [{type: global_pool}, {type: flatten}, {type: linear, out: 10}]}
  - {type: unknown, name: weird, op: "aten::erf", out: [8, 16, 16]}
  - {type: global_pool}
  - {type: flatten}
  - {type: linear, out: 10}
"""
AUX_PARAMS = 8 * 10 + 10  # the aux head's linear: weights and bias


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "auxy.yaml"
    f.write_text(SPEC)
    return str(f)


def test_show_says_what_the_totals_hold_apart_and_leave_out(spec):
    out = runner.invoke(app, ["show", spec], env={"COLUMNS": "200"}).output
    assert f"params include {AUX_PARAMS:,} training-only" in out
    assert "costs exclude 1 layer(s) of unknown cost: weird (aten::erf)" in out
    totals = json.loads(runner.invoke(app, ["show", spec, "-f", "json"]).output)["totals"]
    assert totals["training_only_params"] == AUX_PARAMS
    assert totals["unknown_layers"] == ["weird"]
    assert totals["params"] == 3 * 3 * 3 * 8 + AUX_PARAMS + AUX_PARAMS  # conv, aux, head


def test_compare_names_the_model(spec):
    out = runner.invoke(app, ["compare", spec, "mobilenet"], env={"COLUMNS": "200"}).output
    assert f"auxy: params include {AUX_PARAMS:,} training-only" in out
    assert "auxy: costs exclude 1 layer(s) of unknown cost" in out
    [auxy, mobilenet] = json.loads(runner.invoke(app, ["compare", spec, "mobilenet",
                                                       "-f", "json"]).output)
    assert auxy["training_only_params"] == AUX_PARAMS and auxy["unknown_layers"] == ["weird"]
    assert "training_only_params" not in mobilenet and "unknown_layers" not in mobilenet


def test_check_says_it_too(spec, tmp_path):
    """A budget met by a model with layers of unknown cost is not passed silently."""
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("models:\n  - model: auxy.yaml\n    limits: {flops: 10M}\n")
    done = runner.invoke(app, ["check", "--budgets", str(budgets)], env={"COLUMNS": "200"})
    assert done.exit_code == 0
    assert "⚠ auxy: costs exclude 1 layer(s) of unknown cost" in done.output
    payload = json.loads(runner.invoke(app, ["check", "--budgets", str(budgets),
                                             "-f", "json"]).output)
    assert any("unknown cost" in c for c in payload["caveats"])
