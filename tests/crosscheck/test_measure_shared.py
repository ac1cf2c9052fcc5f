"""bench and guidelines --measure share one device check, one thread check, one machine
description and one limit on --min-time (costmodel.measure, costmodel.measure.bench)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from costmodel.analysis import guidelines as g
from costmodel.cli import app
from costmodel.errors import CostModelError
from costmodel.measure import MAX_MIN_TIME, MAX_THREADS
from costmodel.measure.bench import machine
from costmodel.measure.guidelines import measure

runner = CliRunner()


def test_guidelines_names_its_machine_as_bench_does():
    described = measure(g.build_cases("arm", (1,), ["G4"]), min_time=0.0, warmup=1, rounds=1)
    assert set(machine("cpu")) <= set(described)
    assert described["device"] == machine("cpu")["device"] == "cpu"
    assert {"batch", "rounds", "min_time"} <= set(described)


@pytest.mark.parametrize("kwargs, field", [
    ({"threads": 0}, "threads"), ({"threads": MAX_THREADS + 1}, "threads"),
    ({"threads": 1.5}, "threads"), ({"device": "tpu"}, "device"),
    ({"min_time": MAX_MIN_TIME * 2}, "min_time"), ({"min_time": -1.0}, "min_time"),
])
def test_guidelines_refuses_what_bench_refuses(kwargs, field):
    with pytest.raises(CostModelError) as e:
        measure(g.build_cases("arm", (1,), ["G4"]), **kwargs)
    assert e.value.field == field


@pytest.mark.parametrize("command", [["bench", "effnet"], ["guidelines", "--measure"]])
def test_the_same_limits_on_the_command_line(command):
    for option in (["--threads", str(MAX_THREADS + 1)], ["--min-time", str(MAX_MIN_TIME * 2)],
                   ["--device", "tpu"]):
        res = runner.invoke(app, [*command, *option])
        assert res.exit_code == 2, (command, option, res.output)
