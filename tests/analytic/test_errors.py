"""Bad input: exit code 2, a short message naming file, layer path and field; no traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from costmodel.cli import app

runner = CliRunner()

HEAD = "name: bad\ninput: 32\nlayers:\n"


def fails(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.stdout == ""  # nothing half-written
    return res.stderr


@pytest.mark.parametrize("body,expected", [
    ("  - {type: convv, out: 8}\n", ["layer '0'", "unknown layer type 'convv'", "did you mean conv"]),
    ("  - {type: conv, kernel: 3}\n", ["layer '0'", "field 'out'", "Field required"]),
    ("  - {type: conv, out: 8, kernal: 3}\n", ["layer '0'", "field 'kernal'", "unknown field"]),
    ("  - {type: conv, out: 8, kernel: 0}\n", ["field 'kernel'", "greater than 0"]),
    ("  - {name: c1, type: conv, out: -4}\n", ["layer 'c1'", "field 'out'"]),
    ("  - {out: 8}\n", ["layer '0'", "needs a 'type'"]),
    ("  - {name: g, type: conv, out: 8, groups: 2}\n",
     ["layer 'g'", "field 'groups'", "3 input channels are not divisible by groups=2"]),
    ("  - {name: s, type: stage, layers: [{type: conv, out: 8, kernel: 3, stride: 2, padding: 0}, "
     "{name: big, type: conv, out: 8, kernel: 31, padding: 0}]}\n",
     ["layer 's.big'", "shrinks below 1"]),
    ("  - {name: p, type: parallel, merge: concat, branches: [[{type: max_pool, kernel: 2}], []]}\n",
     ["layer 'p'", "field 'merge'", "concat needs equal spatial sizes"]),
    ("  - {name: r, type: residual, layers: [{type: conv, out: 8}]}\n",
     ["layer 'r'", "add needs equal shapes", "8×32×32, 3×32×32"]),
    ("  - {type: stage, name: st, layers: [{name: x, type: linear, out: 4}]}\n",
     ["layer 'st.x'", "flatten"]),
    ("  - {name: mp, type: max_pool, kernel: 3, padding: [1, 2]}\n",
     ["layer 'mp'", "field 'padding'", "padding 1×2 is more than half the 3×3 window"]),
    ("  - {name: st, type: repeat, n: 2, first: {stride: 0}, layers: [{type: conv, out: 8}]}\n",
     ["layer 'st'", "field 'stride'", "greater than 0"]),
    ("  - {name: up, type: deconv, out: 4, stride: 2, dilation: [1, 3], output_padding: 2}\n",
     ["layer 'up'", "field 'output_padding'", "smaller than the stride (2, 2) or the dilation"]),
    ("  - {type: conv, out: 8\n", ["invalid YAML", "line"]),
    ("  - {type: conv, out: 2}\n  - {name: unit, type: shufflenet_unit, out: 2, groups: 1}\n",
     ["layer 'unit.res.main.gconv1'", "field 'out'", "would have 0 output channels"]),
])
def test_bad_specs(tmp_path, body, expected):
    spec = tmp_path / "bad.yaml"
    spec.write_text(HEAD + body)
    err = fails("compare", str(spec))
    assert str(spec) in err
    for text in expected:
        assert text in err, err


def test_nested_field_error_names_the_nested_layer(tmp_path):
    spec = tmp_path / "nested.yaml"
    spec.write_text(HEAD + "  - name: stage2\n    type: stage\n    layers:\n"
                           "      - {name: unit, type: shufflenet_unit, out: 24, groups: 0}\n")
    err = fails("show", str(spec))
    assert "layer 'stage2.unit'" in err and "field 'groups'" in err


def test_unknown_model_suggests():
    err = fails("compare", "mobilnet")
    assert "unknown model 'mobilnet'" in err and "mobilenet" in err


def test_unknown_variant():
    err = fails("compare", "shufflenet-g5")
    assert "no variant 'g5'" in err and "g4" in err


def test_missing_file():
    assert "no such spec file" in fails("compare", "nope/missing.yaml")


@pytest.mark.parametrize("args,text", [
    (["compare", "mobilenet", "--input", "abc"], "input size 'abc'"),
    (["compare", "mobilenet", "--input", "0"], "positive"),
    (["compare", "mobilenet", "--width", "0"], "width multiplier must be positive"),
    (["compare", "effnet", "--input", "1"], "shrinks below 1"),
])
def test_bad_options(args, text):
    assert text in fails(*args)


def test_json_spec_and_json_errors(tmp_path):
    good = tmp_path / "ok.json"
    good.write_text('{"name": "j", "input": 8, "layers": [{"type": "conv", "out": 4}]}')
    assert runner.invoke(app, ["compare", str(good)]).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "j", "layers": [}')
    assert "invalid JSON at line 1" in fails("compare", str(bad))
