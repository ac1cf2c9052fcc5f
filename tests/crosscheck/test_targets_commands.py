"""A Python target in sweep, scale, swap and bench, through a fake ``costmodel.capture`` (the
real importer is another module's work; this fake maps a net of nested containers of plain
leaf modules, naming each layer as the module is named, so that the spec's layer paths are
the module's ``named_modules`` paths, as the importer keeps them)."""

from __future__ import annotations

import json
import textwrap

import pytest
from torch import nn
from typer.testing import CliRunner

import costmodel.measure.bench as bench_module
from costmodel import api
from costmodel.analysis.sweep import parse_axis, sweep
from costmodel.cli import app
from costmodel.errors import CostModelError
from costmodel.measure.bench import bench_model
from costmodel.targets import build_target
from conftest import fake_capture

runner = CliRunner()
QUICK = 0.01

NETS = textwrap.dedent("""
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width=4, classes=5):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False),
                                          nn.BatchNorm2d(width), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(width, classes)
            self.spare = nn.Identity()  # a leaf the spec has no layer for
            self.unused = nn.ReLU()  # never runs

        def forward(self, x):
            x = self.features(x)
            x = x + x  # a functional op: no module, no row
            return self.spare(self.fc(self.flatten(self.pool(x))))

    class Flat(nn.Module):
        '''conv → flatten → linear: its linear layer's size follows the input traced.'''
        def __init__(self, width=2):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(width, 3)  # the fake capture sizes it from the input

        def forward(self, x):
            return self.fc(self.flatten(self.conv(x)))
""")


def _layers(module: nn.Module) -> list[dict]:
    """The fake importer: a layer per child, named as the module names it."""
    layers = []
    for name, m in module.named_children():
        if isinstance(m, nn.Conv2d):
            layers.append({"name": name, "type": "conv", "out": m.out_channels,
                           "kernel": m.kernel_size[0], "bias": m.bias is not None})
        elif isinstance(m, nn.BatchNorm2d):
            layers.append({"name": name, "type": "bn"})
        elif isinstance(m, nn.ReLU):
            layers.append({"name": name, "type": "relu"})
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            layers.append({"name": name, "type": "global_pool"})
        elif isinstance(m, nn.Flatten):
            layers.append({"name": name, "type": "flatten"})
        elif isinstance(m, nn.Linear):
            layers.append({"name": name, "type": "linear", "out": m.out_features})
        elif isinstance(m, nn.Sequential):
            layers.append({"name": name, "type": "sequential", "layers": _layers(m)})
    return layers


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """nets.py in tmp_path, a fake capture recording (class, input) per call, a fresh cache."""
    calls = []

    def import_module(module, input_hw, in_channels=3, *, name, unknown="error"):
        calls.append((type(module).__name__, tuple(input_hw)))
        layers = _layers(module)
        if type(module).__name__ == "Net":  # `unused` never runs: a real trace drops it
            layers = [layer for layer in layers if layer["name"] != "unused"]
        return {"name": name, "input": list(input_hw), "in_channels": in_channels,
                "layers": layers}

    fake_capture(monkeypatch, tmp_path, NETS, import_module)
    return calls


def flat_flops(side: int, width: int = 2) -> int:
    """Flat's FLOPs at side×side: the 3×3 conv's madds, then the linear's C·H·W·3."""
    return width * 3 * 9 * side * side + width * side * side * 3


# --- sweep: a target traced at each input size of the grid ----------------------------------

def test_sweep_traces_a_target_at_each_input_size(nets):
    r = sweep("nets.py:Flat", [parse_axis("input", "16,24")])
    assert [p.input for p in r.points] == [(16, 16), (24, 24)]
    assert [p.totals.flops for p in r.points] == [flat_flops(16), flat_flops(24)]
    assert nets == [("Flat", (16, 16)), ("Flat", (24, 24))]  # never at the default 224


def test_sweep_a_target_at_its_default_size(nets):
    r = sweep("nets.py:Flat", [parse_axis("width", "1")])
    assert r.points[0].input == (224, 224) and nets == [("Flat", (224, 224))]


def test_sweep_resolution_scales_the_input_given_and_traces_there(nets):
    r = sweep("nets.py:Flat", [parse_axis("resolution", "1,2")], input=10)
    assert [p.input for p in r.points] == [(10, 10), (20, 20)]
    assert [p.totals.flops for p in r.points] == [flat_flops(10), flat_flops(20)]
    assert nets == [("Flat", (10, 10)), ("Flat", (20, 20))]  # never at 224


def test_sweep_width_of_a_target_at_its_traced_size(nets):
    r = sweep("nets.py:Flat", [parse_axis("width", "1")], input=12)
    assert r.points[0].totals.flops == flat_flops(12) and nets == [("Flat", (12, 12))]


def test_sweep_cli_takes_a_target(nets):
    res = runner.invoke(app, ["sweep", "nets.py:Flat", "--input", "8,16", "-f", "json"])
    assert res.exit_code == 0, res.output
    flops = [p["flops"] for p in json.loads(res.output)["rows"]]
    assert flops == [flat_flops(8), flat_flops(16)]


@pytest.mark.parametrize("option", [["--variant", "g1"], ["--var", "g=1,2"], ["--groups", "2"]])
def test_sweep_variants_and_variables_of_a_target_are_refused(nets, option):
    res = runner.invoke(app, ["sweep", "nets.py:Flat", *option])
    assert res.exit_code == 2, res.output
    assert nets == []  # refused before anything is traced
    with pytest.raises(CostModelError):
        sweep("nets.py:Flat", [parse_axis("variant", "g1")])


# --- scale and swap: traced at --input, not at 224 ------------------------------------------

def test_scale_traces_a_target_at_the_input_given(nets):
    res = runner.invoke(app, ["scale", "nets.py:Flat", "--width-factor", "1", "--input", "20",
                              "-f", "json"])
    assert res.exit_code == 0, res.output
    assert nets == [("Flat", (20, 20))]
    assert str(flat_flops(20)) in res.output.replace(",", "")


def test_swap_traces_a_target_at_the_input_given(nets):
    res = runner.invoke(app, ["swap", "nets.py:Net", "--block", "mobilenet", "--replace-first",
                              "--input", "32", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert nets == [("Net", (32, 32))]
    base, new = json.loads(res.stdout)["compare"]
    assert base["params"] == 4 * 27 + 2 * 4 + 4 * 5 + 5  # conv, bn, linear with bias
    assert base["flops"] == 4 * 27 * 32 * 32 + 4 * 5  # conv and linear madds at 32×32


# --- bench: the user's own module, per leaf module --------------------------------------------

LEAVES = ["features.0", "features.1", "features.2", "pool", "flatten", "fc", "spare"]
"""Net's leaf modules in the order they run (`unused` never does)."""


def test_bench_times_the_users_module_per_leaf(nets, monkeypatch):
    monkeypatch.setattr(bench_module, "build", lambda *a: pytest.fail("the builder's module"))
    result = api.evaluate_model("nets.py:Net", input=16)
    module = build_target("nets.py:Net")
    calls = []
    module.register_forward_hook(lambda *a: calls.append(1))
    b = bench_model(result, module=module, min_time=QUICK)
    assert calls and not module.training  # the user's module ran, in eval mode
    assert list(b.layers) == LEAVES
    spec_rows = {row.path: row for row in result.rows}
    records = {r["path"]: r for r in b.record()["layers"]}
    for path in LEAVES[:-1]:  # the spec's layer of the same path gives FLOPs and MAC
        assert records[path]["flops"] == spec_rows[path].flops
        assert records[path]["mac"] == spec_rows[path].mac
        assert records[path]["type"] == spec_rows[path].type
    assert records["fc"]["flops"] == 4 * 5
    assert records["spare"]["flops"] is None and records["spare"]["type"] == "Identity"
    assert b.record()["module"] == "target" and b.record()["flops"] == result.totals.flops
    assert b.unattributed == pytest.approx(b.total.median - b.layer_sum)


def test_bench_of_a_spec_still_times_the_builders_module():
    result = api.evaluate_model("effnet", input=32)
    b = bench_model(result, min_time=QUICK)
    assert list(b.layers) == [r.path for r in result.rows]
    assert b.record()["module"] == "builder" and b.leaf_types is None


def test_bench_cli_on_a_target(nets, monkeypatch):
    monkeypatch.setattr(bench_module, "build", lambda *a: pytest.fail("the builder's module"))
    res = runner.invoke(app, ["bench", "nets.py:Net(width=6)", "--input", "12", "--min-time",
                              "0.01", "-f", "json"])
    assert res.exit_code == 0, res.output
    [record] = json.loads(res.output)
    assert [r["path"] for r in record["layers"]] == LEAVES
    assert record["layers"][0]["flops"] == 6 * 27 * 12 * 12  # 3×3 conv, 3 → 6 channels
    assert record["input"] == [12, 12] and nets == [("Net", (12, 12))]
    res = runner.invoke(app, ["bench", "nets.py:Net", "--input", "12", "--min-time", "0.01"])
    assert res.exit_code == 0 and "leaf module" in res.output


@pytest.mark.parametrize("option", [["--width", "0.5"], ["--classes", "3"]])
def test_bench_refuses_to_rescale_a_target(nets, option):
    res = runner.invoke(app, ["bench", "nets.py:Net", "--input", "12", *option])
    assert res.exit_code == 2 and "own arguments" in res.output, res.output
