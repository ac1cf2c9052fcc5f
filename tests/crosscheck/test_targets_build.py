"""Building the user's module from a Python target, and loading it as a spec through a fake
``costmodel.capture`` (the real importer is another module's work: this fake maps the leaf
modules of a plain sequential net, enough to see that a target is traced at the input asked
for and that every command reaches it)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml
from torch import nn
from typer.testing import CliRunner

from costmodel import api
from costmodel.cli import app
from costmodel.spec.loader import validate_spec
from costmodel.targets import TargetError, build_target, load_target
from conftest import fake_capture

runner = CliRunner()

NETS = textwrap.dedent("""
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width=8):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv(x))

    def small(width=4):
        return Net(width)

    def not_a_module():
        return 42

    def raises():
        raise ValueError("no such width")

    CONSTANT = 3
""")


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """nets.py in tmp_path, a fake capture, and a fresh target cache."""
    calls = []

    def import_module(module, input_hw, in_channels=3, *, name, unknown="error"):
        calls.append((type(module).__name__, tuple(input_hw), in_channels, name, unknown,
                      module.training))
        layers = []
        for path, m in module.named_modules():
            if isinstance(m, nn.Conv2d):
                layers.append({"name": path, "type": "conv", "out": m.out_channels,
                               "kernel": m.kernel_size[0], "bias": m.bias is not None})
            elif isinstance(m, nn.ReLU):
                layers.append({"name": path, "type": "relu"})
        return {"name": name, "input": list(input_hw), "in_channels": in_channels,
                "layers": layers}

    fake_capture(monkeypatch, tmp_path, NETS, import_module)
    return calls


def test_a_class_a_function_and_arguments(nets):
    assert build_target("nets.py:Net").conv.out_channels == 8
    assert build_target("nets.py:Net(width=5)").conv.out_channels == 5
    assert build_target("nets.py:small").conv.out_channels == 4
    assert build_target("nets.py:small(6)").conv.out_channels == 6
    assert build_target("nets:Net(width=3)").conv.out_channels == 3  # a module of this folder


@pytest.mark.parametrize("ref, says", [
    ("nets.py:Missing", "has no attribute 'Missing'"),
    ("nets.py:CONSTANT", "CONSTANT is a int, not a class or a function"),
    ("nets.py:not_a_module", "returned a int, not a torch.nn.Module"),
    ("nets.py:raises", "calling raises raised ValueError: no such width"),
    ("nets.py:Net(depth=2)", "calling Net raised TypeError"),
    ("absent.py:Net", "no such Python file: absent.py"),
    ("costmodel_absent_pkg.nets:Net", "no module named 'costmodel_absent_pkg'"),
])
def test_what_cannot_be_built_is_an_error_naming_the_target(nets, ref, says):
    with pytest.raises(TargetError) as e:
        build_target(ref)
    assert ref in str(e.value) and says in str(e.value)
    r = runner.invoke(app, ["show", ref])
    assert r.exit_code == 2 and says in r.output


def test_a_module_that_fails_to_import(nets, tmp_path):
    (tmp_path / "broken.py").write_text("import costmodel_absent_dependency\n")
    with pytest.raises(TargetError) as e:
        build_target("broken.py:Net")
    assert "importing broken.py raised ModuleNotFoundError" in str(e.value)
    assert "costmodel_absent_dependency" in str(e.value)


def test_a_target_is_traced_at_the_input_asked_for(nets):
    spec = load_target("nets.py:Net(width=5)", "64x48")
    assert nets == [("Net", (64, 48), 3, "Net(width=5)", "error", False)]  # in eval mode
    assert spec.file == "nets.py:Net(width=5)"
    r = api.evaluate_model("nets.py:Net(width=5)", input="64x48")
    assert len(nets) == 1  # cached per (target, input)
    assert r.input == (64, 48) and r.totals.params == 5 * 3 * 3 * 3
    assert r.totals.flops == 5 * 3 * 3 * 3 * 64 * 48 + 0  # conv madds; relu is not a madd
    api.evaluate_model("nets.py:Net(width=5)")
    assert nets[-1][1] == (224, 224) and len(nets) == 2


def test_commands_take_a_target(nets):
    r = runner.invoke(app, ["compare", "nets.py:Net", "mobilenet", "--input", "32", "-f", "json"])
    assert r.exit_code == 0, r.output
    assert nets[-1][1] == (32, 32)
    r = runner.invoke(app, ["show", "nets.py:Net(width=2)", "-i", "16", "-f", "csv"])
    assert r.exit_code == 0 and "conv" in r.output


def test_import_writes_a_spec_that_loads(nets, tmp_path):
    out = tmp_path / "net.yaml"
    r = runner.invoke(app, ["import", "nets.py:Net(width=6)", "--input", "40", "-o", str(out)])
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(out.read_text())
    assert doc["input"] == [40, 40] and doc["name"] == "Net(width=6)"
    assert api.evaluate_model(str(out)).totals.params == 6 * 27
    r = runner.invoke(app, ["import", "nets.py:Net", "--allow-unknown"])
    assert r.exit_code == 0 and "type: conv" in r.output
    assert nets[-1][4] == "allow" and nets[-1][1] == (224, 224)


def test_import_refuses_a_bad_target_and_writes_nothing(nets, tmp_path):
    out = tmp_path / "net.yaml"
    for ref in ("nets.py:Missing", "nets.py:Net(width=abs(1))", "mobilenet"):
        r = runner.invoke(app, ["import", ref, "-o", str(out)])
        assert r.exit_code == 2, (ref, r.output)
    assert not out.exists()


def test_an_invalid_capture_is_a_spec_error_naming_the_target(nets, monkeypatch):
    monkeypatch.setattr(sys.modules["costmodel.capture"], "import_module",
                        lambda *a, **k: {"name": "x", "layers": [{"type": "nope"}]})
    r = runner.invoke(app, ["show", "nets.py:Net"])
    assert r.exit_code == 2 and "nets.py:Net" in r.output
    with pytest.raises(Exception):
        validate_spec({"name": "x", "layers": [{"type": "nope"}]}, "f")


RESNETISH = textwrap.dedent("""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            return self.relu(x + self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))

    class Net(nn.Module):
        def __init__(self, width=8, num_classes=10):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width),
                                      nn.GELU())
            self.blocks = nn.Sequential(Block(width), Block(width))
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):
            x = self.blocks(self.stem(x))
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
""")


def test_import_then_verify_against_the_real_importer(tmp_path, monkeypatch):
    """End to end with the real importer: `import` writes a spec whose source names the
    target as written (not the synthetic module name a file is loaded under), `verify
    --against` finds it exact, and `show TARGET` counts what the written spec counts."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "resnetish.py").write_text(RESNETISH)
    target = "resnetish.py:Net(width=8)"
    done = runner.invoke(app, ["import", target, "--input", "16", "-o", "net.yaml"])
    assert done.exit_code == 0, done.output
    doc = yaml.safe_load((tmp_path / "net.yaml").read_text())
    assert doc["source"].startswith(f"imported from {target} by costmodel.capture")
    verified = runner.invoke(app, ["verify", "net.yaml", "--against", target])
    assert verified.exit_code == 0, verified.output
    from_target = runner.invoke(app, ["show", target, "--input", "16", "-f", "json"])
    from_spec = runner.invoke(app, ["show", "net.yaml", "-f", "json"])
    assert json.loads(from_target.output)["totals"] == json.loads(from_spec.output)["totals"]
