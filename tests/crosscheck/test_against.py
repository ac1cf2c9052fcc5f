"""``verify SPEC --against TARGET``: a hand-written spec against the user's real module, layer
by layer in order. The module is torchvision-style (a stem, a BasicBlock with a projecting
shortcut and a functional add, a functional pool in the top module's forward, a classifier);
each wrong spec must exit 1 and name the right first differing layer, the right one exit 0."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from costmodel.cli import app
from costmodel.crosscheck.against import Item, pair_items, verify_against

runner = CliRunner()

NETS = textwrap.dedent("""
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.downsample(x))

    class Net(nn.Module):
        def __init__(self, width=8, classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.mid = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.block = Block(width, 2 * width, 2)
            self.fc = nn.Linear(2 * width, classes)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.relu(self.mid(x))
            x = self.block(x)
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # MobileNetV2's way: no module
            return self.fc(x)
""")

SPEC = textwrap.dedent("""
    name: net
    input: 32
    layers:
      - {name: conv1, type: conv, out: 8, kernel: 3}
      - {name: bn1, type: bn}
      - {name: relu, type: relu}
      - {name: mid, type: conv, out: 8, kernel: 3}
      - {name: relu2, type: relu}
      - name: block
        type: residual
        layers:
          - {name: conv1, type: conv, out: 16, kernel: 3, stride: 2}
          - {name: bn1, type: bn}
          - {name: relu, type: relu}
          - {name: conv2, type: conv, out: 16, kernel: 3}
          - {name: bn2, type: bn}
        shortcut:
          - {name: down, type: conv, out: 16, kernel: 1, stride: 2}
          - {name: down_bn, type: bn}
      - {name: relu3, type: relu}
      - {name: pool, type: global_pool}
      - {name: flatten, type: flatten}
      - {name: fc, type: linear, out: 10}
""")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)

    def spec(old: str = "", new: str = "", name: str = "net.yaml") -> str:
        text = SPEC.replace(old, new) if old else SPEC
        assert old == "" or text != SPEC, old
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)
    return tmp_path, spec


def _run(spec: str, target: str):
    r = runner.invoke(app, ["verify", spec, "--against", target, "-f", "json"])
    return r.exit_code, (json.loads(r.stdout) if r.exit_code in (0, 1) else r.output)


def _first(payload) -> dict:
    return next(p for p in payload["layers"] if not p["ok"])


def test_the_right_spec_agrees(files):
    tmp, spec = files
    code, out = _run(spec(), f"{tmp}/nets.py:Net")
    assert code == 0, out
    # conv1 bn1 mid, block: conv1 bn1 conv2 bn2 down down_bn, pool (the top module's own
    # op, paired with global_pool), fc
    assert out["compared"] == 11 and out["differing"] == 0
    pool = out["layers"][9]
    assert pool["spec"]["path"] == "pool" and pool["module"]["path"] == "(model)"
    assert pool["module"]["flops"] == 16 * 16 * 16  # fvcore: one per input element
    t = out["totals"]
    assert t["flops"] == t["fvcore_flops"] and t["params"] == t["numel"]
    params = 8 * 27 + 16 + 8 * 72 + 16 * 72 + 32 + 16 * 144 + 32 + 16 * 8 + 32 + 16 * 10 + 10
    assert t["numel"] == params
    assert out["skipped_free"] == {"spec": 6, "module": 4}  # relus (+add, flatten in the spec)


def test_a_wrong_out_is_caught_at_that_conv(files):
    tmp, spec = files
    code, out = _run(spec("{name: mid, type: conv, out: 8,", "{name: mid, type: conv, out: 12,"),
                     f"{tmp}/nets.py:Net")
    assert code == 1
    first = _first(out)
    assert (first["spec"]["path"], first["module"]["path"]) == ("mid", "mid")
    assert first["differs"] == ["shape", "params", "flops"]
    assert (first["spec"]["shape"], first["module"]["shape"]) == ([12, 32, 32], [8, 32, 32])


def test_a_missing_layer_is_caught_as_missing(files):
    tmp, spec = files
    code, out = _run(spec("  - {name: mid, type: conv, out: 8, kernel: 3}\n", ""),
                     f"{tmp}/nets.py:Net")
    assert code == 1
    first = _first(out)
    assert first["spec"] is None and first["module"]["path"] == "mid"
    assert first["differs"] == ["missing from the spec"]
    assert out["differing"] == 1  # aligned: the layers after it still pair and agree


def test_a_wrong_stride_is_caught_at_that_conv(files):
    tmp, spec = files
    code, out = _run(spec("{name: mid, type: conv, out: 8, kernel: 3}",
                          "{name: mid, type: conv, out: 8, kernel: 3, stride: 2}"),
                     f"{tmp}/nets.py:Net")
    assert code == 1
    first = _first(out)
    assert (first["spec"]["path"], first["module"]["path"]) == ("mid", "mid")
    assert first["differs"] == ["shape", "flops"]  # same weights, a quarter of the positions
    assert (first["spec"]["shape"], first["module"]["shape"]) == ([8, 16, 16], [8, 32, 32])
    assert first["spec"]["flops"] * 4 == first["module"]["flops"]


def test_the_table_names_the_first_differing_layers(files):
    tmp, spec = files
    r = runner.invoke(app, ["verify", spec("out: 10}", "out: 12}"), "--against",
                            f"{tmp}/nets.py:Net"])
    assert r.exit_code == 1
    assert "❌ 1 of 11 counted layers differ" in r.stdout and "shape, params, flops" in r.stdout


def test_a_model_that_differs_in_totals_only_fails_too(files):
    tmp, spec = files
    v = verify_against(spec(), f"{tmp}/nets.py:Net(classes=10)")
    assert v.ok
    v = verify_against(spec(), f"{tmp}/nets.py:Net(width=4)")
    assert not v.ok and v.differing[0].spec.path == "conv1"


def test_bad_targets_and_several_specs_exit_2(files):
    tmp, spec = files
    s = spec()
    for args in (["verify", s, "--against", f"{tmp}/nets.py:Nope"],
                 ["verify", s, "--against", "nets.py:Net(x=abs(1))"],
                 ["verify", s, "--against", "mobilenet"],
                 ["verify", s, s, "--against", f"{tmp}/nets.py:Net"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)


def test_pairing_aligns_around_missing_and_extra_layers():
    def item(path, c):
        return Item(path, "conv", [c, 4, 4], c * 9, c * 144)
    module = [item("a", 1), item("b", 2), item("c", 3), item("d", 4)]
    spec = [item("a", 1), item("c", 3), item("x", 7), item("d", 4)]
    pairs = pair_items(spec, module)
    assert [(p.spec and p.spec.path, p.module and p.module.path, p.differs) for p in pairs] == [
        ("a", "a", []), (None, "b", ["missing from the spec"]), ("c", "c", []),
        ("x", None, ["not in the module"]), ("d", "d", [])]
    pairs = pair_items([item("a", 1), item("b", 5)], [item("a", 1), item("b", 2)])
    assert [p.differs for p in pairs] == [[], ["shape", "params", "flops"]]
