"""costmodel bench: the structure of a measurement — every row of `show` timed, totals,
the machine, the formats, the options — never its speed (timings vary by machine and load)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_layers
from typer.testing import CliRunner

import costmodel.measure.bench as bench_module
from costmodel.api import evaluate_model
from costmodel.cli import app
from costmodel.errors import CostModelError
from costmodel.measure import DEFAULT_THREADS
from costmodel.measure.bench import bench_model, machine
from costmodel.options import Options

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
QUICK = 0.01
"""Seconds of runs per measurement in these tests: the minimum of 5 runs decides."""

BRANCHY = [  # residual (add), SE (multiply, an empty branch), split + concat, nested
    {"name": "stem", "type": "conv", "out": 8, "kernel": 3, "stride": 2},
    {"name": "res", "type": "residual", "layers": [{"type": "conv", "out": 8}, {"type": "bn"}],
     "shortcut": [{"name": "proj", "type": "conv", "out": 8, "kernel": 1}]},
    {"name": "se", "type": "se", "ratio": 0.25},
    {"name": "split", "type": "parallel", "split": "half", "merge": "concat",
     "branches": [[], [{"type": "dwconv"}, {"type": "hswish"},
                       {"name": "inner", "type": "parallel", "merge": "add",
                        "branches": [[{"type": "conv", "out": 4, "kernel": 1}], []]}]]},
    {"name": "head", "type": "sequential",
     "layers": [{"type": "global_pool"}, {"type": "flatten"}, {"type": "linear", "out": 5}]},
]


def _check_timing(t) -> None:
    assert t.runs >= 5
    assert 0 < t.p10 <= t.median <= t.p90


@pytest.mark.parametrize("result", [
    pytest.param(lambda: run_layers(BRANCHY, input=(16, 16)), id="branches"),
    pytest.param(lambda: evaluate_model("skipnet-cifar-38"), id="skipnet-rnn-gates"),
])
def test_every_row_has_a_timing_in_execution_order(result):
    result = result()
    assert any(r.layer is None for r in result.rows)  # split / merge rows: functional ops
    b = bench_model(result, min_time=QUICK)
    assert list(b.layers) == [r.path for r in result.rows]
    for t in [b.total, b.hooked, *b.layers.values()]:
        _check_timing(t)
    assert b.layer_sum == pytest.approx(sum(t.median for t in b.layers.values()))
    assert b.unattributed == pytest.approx(b.total.median - b.layer_sum)


def test_without_layers_only_the_total():
    b = bench_model(evaluate_model("effnet"), min_time=QUICK, layers=False)
    _check_timing(b.total)
    assert b.layers == {} and b.hooked is None and b.layer_sum is None
    assert b.record()["layers"] == [] and b.record()["unattributed"] is None


def test_threads_are_set_for_the_run_and_restored():
    before = torch.get_num_threads()
    b = bench_model(run_layers(BRANCHY), threads=2, min_time=QUICK, layers=False)
    assert b.machine["threads"] == 2 and b.threads == 2
    assert torch.get_num_threads() == before


def test_batch_is_the_input_batch(monkeypatch):
    shapes = []
    real = bench_module.example_input

    def recording(result, batch=1):
        x = real(result, batch)
        shapes.append(tuple(x.shape))
        return x

    monkeypatch.setattr(bench_module, "example_input", recording)
    one, three = (evaluate_model("effnet", options=Options(batch=n)) for n in (1, 3))
    b = bench_model(three, min_time=QUICK, layers=False)
    assert shapes == [(3, 3, 32, 32)]
    assert b.batch == 3 and b.record()["flops"] == 3 * one.totals.flops
    with pytest.raises(CostModelError, match="batch 3"):
        bench_model(three, batch=1)


@pytest.mark.parametrize("kwargs, field", [({"threads": 0}, "threads"),
                                           ({"min_time": 0}, "min_time"),
                                           ({"min_time": 61}, "min_time"),
                                           ({"device": "tpu"}, "device")])
def test_bad_arguments_are_refused(kwargs, field):
    with pytest.raises(CostModelError) as e:
        bench_model(evaluate_model("effnet"), **kwargs)
    assert e.value.field == field


def test_a_model_too_large_for_memory_is_refused_before_it_runs(monkeypatch):
    import costmodel.crosscheck.verify as verify

    result = evaluate_model("effnet", options=Options(batch=2))
    needed = bench_module.memory_needed(result, 2)
    h, w = result.input
    assert needed == 4 * (result.totals.params +
                          2 * (3 * h * w + sum(r.out.numel for r in result.rows)))
    monkeypatch.setattr(verify, "memory_available", lambda: needed)  # 75 % of it is too little
    monkeypatch.setattr(bench_module, "build", lambda r: pytest.fail("built"))
    with pytest.raises(CostModelError, match="too large to bench") as e:
        bench_model(result)
    assert e.value.field == "input"


def test_machine_names_what_it_ran_on():
    m = machine("cpu")
    assert m["cpu"] and m["cores"] >= 1 and m["torch"] == torch.__version__
    assert m["threads"] == torch.get_num_threads() and m["device"] == "cpu"
    json.dumps(m)  # plain values


def test_json_rows_are_shows_rows_with_raw_seconds():
    res = runner.invoke(app, ["bench", "effnet", "--min-time", str(QUICK), "-f", "json"])
    assert res.exit_code == 0, res.output
    (record,) = json.loads(res.stdout)
    show = json.loads(runner.invoke(app, ["show", "effnet", "-f", "json"]).stdout)
    assert [r["path"] for r in record["layers"]] == [r["path"] for r in show["layers"]]
    assert [r["flops"] for r in record["layers"]] == [r["flops"] for r in show["layers"]]
    assert record["flops"] == show["totals"]["flops"]
    for row in record["layers"]:
        assert 0 < row["p10"] <= row["median"] <= row["p90"] < 60  # seconds, not ms
        assert row["flops_per_s"] == pytest.approx(row["flops"] / row["median"])
    total = record["total"]
    assert 0 < total["median"] and total["runs"] >= 5
    assert record["unattributed"] == pytest.approx(total["median"] - record["layer_sum"])
    assert record["threads"] == DEFAULT_THREADS == record["machine"]["threads"]
    assert {"cpu", "cores", "torch", "torch_build", "device"} <= set(record["machine"])
    assert record["device"] == "cpu" and record["batch"] == 1 and record["input"] == [32, 32]


def test_every_format_renders():
    args = ["bench", "effnet", "effnet-shufflenet", "--min-time", str(QUICK)]
    table = runner.invoke(app, [*args, "--threads", "1"])
    assert table.exit_code == 0, table.output
    assert "unattributed" in table.stdout and "(the default; --threads N)" in table.stdout
    md = runner.invoke(app, [*args, "-f", "markdown"])
    assert md.exit_code == 0 and "| stage1.block.pw |" in md.stdout
    import pandas as pd

    csv = runner.invoke(app, [*args, "-f", "csv"])
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(io.StringIO(csv.stdout))  # one table: every model's layer rows
    assert list(frame["model"].unique()) == ["effnet", "effnet-shufflenet"]
    assert (frame["median"] > 0).all()
    summary = runner.invoke(app, [*args, "-f", "csv", "--no-layers"])
    assert list(pd.read_csv(io.StringIO(summary.stdout))["model"]) == \
        ["effnet", "effnet-shufflenet"]


def test_cuda_without_a_gpu_exits_2(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = runner.invoke(app, ["bench", "effnet", "--device", "cuda"])
    assert res.exit_code == 2
    assert "no CUDA device" in res.stderr and "--device cpu" in res.stderr
    assert runner.invoke(app, ["bench", "effnet", "--device", "tpu"]).exit_code == 2


def test_bench_without_torch_says_what_to_install():
    code = ("import sys\nsys.modules['torch'] = None\n"
            "sys.argv = ['costmodel', 'bench', 'effnet']\nfrom costmodel.cli import main\nmain()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 2, res.stderr
    assert 'needs torch' in res.stderr and 'pip install "cnn-costmodel[torch]"' in res.stderr
    assert "Traceback" not in res.stderr
