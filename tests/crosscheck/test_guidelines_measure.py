"""guidelines --measure: a tiny run produces numbers in place (structure only: no assertion
on speeds, which depend on the machine and its load)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from costmodel.analysis import guidelines as g
from costmodel.cli import app
from costmodel.errors import CostModelError
from costmodel.measure.guidelines import measure

runner = CliRunner()


def test_measure_fills_every_case_and_names_the_machine():
    cases = g.build_cases("arm", (1,), ["G4"])
    before = torch.get_num_threads()
    machine = measure(cases, threads=1, batch=2, min_time=0.0, warmup=1, rounds=3)
    assert torch.get_num_threads() == before  # restored
    assert machine["device"].startswith("cpu") and machine["batch"] == 2
    assert machine["rounds"] == 3
    assert machine["torch"] == torch.__version__ and machine["threads"] == 1
    for c in cases:
        assert c.seconds > 0 and c.spread >= 0


def test_cli_measure_json_structure():
    res = runner.invoke(app, ["guidelines", "--measure", "--min-time", "0", "--width", "1",
                              "--rounds", "1", "-g", "G1", "-g", "G3", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["measured"] is True and data["machine"]["batch"] == 1
    assert [e["guideline"] for e in data["experiments"]] == ["G1", "G3"]
    for e in data["experiments"]:
        assert e["verdict"]["holds"].split(" (")[0] in ("holds", "partly", "does not hold")
        assert set(e["verdict"]["slowdown"]) == {"x1"}
        for case in e["cases"]:
            assert case["ms"] > 0 and case["speed_here"] > 0 and case["predicted_ms"] is None
        ref = next(c for c in e["cases"] if c["structure"] == e["reference"])
        assert ref["speed_here"] == 1.0
    costs = g.violation_costs(data)  # what `rules --guidelines` would quote
    assert set(costs) == {"G1", "G3"}


def test_cuda_asked_for_where_there_is_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(CostModelError, match="no CUDA device"):
        measure(g.build_cases("arm", (1,), ["G4"]), device="cuda")
    res = runner.invoke(app, ["guidelines", "--measure", "--device", "cuda", "-g", "G4"])
    assert res.exit_code == 2 and "no CUDA device" in res.stderr
