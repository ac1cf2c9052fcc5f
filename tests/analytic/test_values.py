"""Strict values everywhere (issue #12, classes 4 and 9): no bool taken as a number, no float
truncated into a size, no NaN or infinity, every number bounded; each refusal a CostModelError
naming the field in the library, exit 2 naming the option or field on the command line."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from costmodel.api import compare, evaluate_model
from costmodel.budgets import load_budgets
from costmodel.cli import app
from costmodel.errors import CostModelError, LimitError, SpecError
from costmodel.options import Options, parse_input
from costmodel.layers.base import MAX_INT, MAX_MULTIPLIER
from costmodel.render.format import parse_si
from costmodel.spec.loader import load_spec

LAYER = "{type: conv, out: 8}"


def spec_file(tmp_path, top: str = "", layer: str = LAYER):
    f = tmp_path / "v.yaml"
    default_input = "" if top.startswith("input:") else "input: 32\n"  # a key appears once
    f.write_text(f"name: v\n{default_input}{top}\nlayers:\n  - {layer}\n")
    return f


# --- specs -----------------------------------------------------------------------------------
# (model-level lines, the layer, field named, text of the message); each is refused

SPEC_REFUSED = [
    ("width: .inf", LAYER, "width", "finite number"),
    ("width: .nan", LAYER, "width", "finite number"),
    ("depth: .inf", LAYER, "depth", "finite number"),
    ("width: 101", LAYER, "width", f"less than or equal to {MAX_MULTIPLIER}"),
    ("depth: 100.5", LAYER, "depth", f"less than or equal to {MAX_MULTIPLIER}"),
    ("width: true", LAYER, "width", "must be a number"),
    ("input: true", LAYER, "input", "whole number"),
    ("input: [12.9, 12.9]", LAYER, "input", "whole number"),
    ("input: 32.0", LAYER, "input", "whole number"),
    ("in_channels: 3.0", LAYER, "in_channels", "whole number"),
    ("num_classes: true", LAYER, "num_classes", "whole number"),
    ("rounding: {rule: divisible, divisor: 8.0}", LAYER, "rounding.divisor", "whole number"),
    ("rounding: {rule: divisible, divisor: 0}", LAYER, "rounding.divisor", "greater than 0"),
    ("rounding: {rule: divisible, min: true}", LAYER, "rounding.min", "whole number"),
    ("vars: {c: .inf}", LAYER, "vars.c", ""),
    ("variants: {big: {width: .inf}}", LAYER, "variants.big.width", "finite number"),
    ("", "{type: conv, out: true}", "out", "whole number"),
    ("", "{type: conv, out: 8, kernel: 3.0}", "kernel", "whole number"),
    ("", "{type: conv, out: 8, kernel: 2.5}", "kernel", "whole number"),
    ("", "{type: conv, out: 8, kernel: [3, true]}", "kernel", "whole number"),
    ("", "{type: conv, out: 8, stride: true}", "stride", "whole number"),
    ("", "{type: conv, out: 8, groups: 1.0}", "groups", "whole number"),
    ("", "{type: conv, out: 8, padding: 1.5}", "padding", ""),
    ("", "{type: conv, out: 8, bias: 1}", "bias", "valid boolean"),
    ("", f"{{type: conv, out: {MAX_INT + 1}}}", "out", f"less than or equal to {MAX_INT}"),
    ("", "{type: mbconv, out: 8, expansion: .inf}", "expansion", "finite number"),
    ("", "{type: mbconv, out: 8, expansion: 101}", "expansion",
     f"less than or equal to {MAX_MULTIPLIER}"),
    ("", "{type: mbconv, out: 8, expansion: 6, se: {ratio: .nan}}", "se.ratio", "finite number"),
    ("", "{type: mbconv, out: 8, expansion: 6, se: {divisor: true}}", "se.divisor",
     "whole number"),
    ("", "{type: repeat, n: true, layers: [{type: conv, out: 8}]}", "n", "whole number"),
    ("", "{type: repeat, n: 2.0, layers: [{type: conv, out: 8}]}", "n", "whole number"),
    ("", "{type: repeat, n: 2, first: {stride: 2.0}, layers: [{type: conv, out: 8}]}",
     "stride", "whole number"),
    ("", "{type: channel_shuffle, groups: true}", "groups", "whole number"),
    ("", "{type: dropout, p: .nan}", "p", "finite number"),
    ("", "{type: ghost_module, out: 16, ratio: 2.0}", "ratio", "whole number"),
    ("", "{type: esp, out: 20, branches: true}", "branches", "true/false is not a number"),
    # dilations 2^(K-1) grow without bound: 20,000 branches took seconds, then crashed
    ("", "{type: esp, out: 20000, branches: 20000}", "branches", "less than or equal to 32"),
    ("vars: {c: true}", "{type: conv, out: $c}", "out", "whole number"),
]


@pytest.mark.parametrize("top,layer,field,text", SPEC_REFUSED)
def test_spec_values_are_refused(tmp_path, top, layer, field, text):
    file = spec_file(tmp_path, top, layer)
    with pytest.raises(SpecError) as e:
        load_spec(file)
    assert e.value.file == str(file)
    if ".inf" in top + layer or ".nan" in top + layer:
        # the reader refuses NaN and infinity where they are written, before any field sees
        # them (the fields refuse them too: see test_library_spec_values_are_refused)
        assert "is not a finite number" in str(e.value) and "line " in str(e.value)
        return
    assert f"field '{field}" in str(e.value) and text in str(e.value), str(e.value)


@pytest.mark.parametrize("top,layer,field,text",
                         [r for r in SPEC_REFUSED if ".inf" in r[0] + r[1] or ".nan" in r[0] + r[1]])
def test_library_spec_values_are_refused(top, layer, field, text):
    """The same NaN and infinity given to the library as data, not as YAML text."""
    import yaml

    from costmodel.spec.loader import validate_spec

    data = {"name": "v", "input": 32, **(yaml.safe_load(top) or {}),
            "layers": [yaml.safe_load(layer)]}
    with pytest.raises(SpecError) as e:
        validate_spec(data, "<data>")
    assert f"field '{field}" in str(e.value) and text in str(e.value), str(e.value)


# (model-level lines, the layer, FLOPs on the 3×32×32 input): lax-looking values that stay valid

SPEC_ACCEPTED = [
    ("width: 1", LAYER, 8 * 32 * 32 * 3 * 3 * 3),  # an int where a float is expected
    (f"width: {MAX_MULTIPLIER}", "{type: conv, out: 8, channel_scaling: fixed}",
     8 * 32 * 32 * 3 * 3 * 3),
    ("", "{type: conv, out: 8, kernel: [1, 3]}", 8 * 32 * 32 * 3 * 1 * 3),  # a YAML list pair
    ("input: [32, 16]", LAYER, 8 * 32 * 16 * 3 * 3 * 3),
    ("rounding: {rule: divisible, divisor: 8, min: 8}\nwidth: 0.5", "{type: conv, out: 32}",
     16 * 32 * 32 * 3 * 3 * 3),  # 32·0.5 = 16, a multiple of 8
    ("vars: {b: true}", "{type: conv, out: 8, bias: $b}", 8 * 32 * 32 * 3 * 3 * 3),
]


@pytest.mark.parametrize("top,layer,flops", SPEC_ACCEPTED)
def test_spec_values_still_accepted(tmp_path, top, layer, flops):
    assert evaluate_model(load_spec(spec_file(tmp_path, top, layer))).totals.flops == flops


# --- parse_input (--input, the library's input=, budgets' input:) ----------------------------

@pytest.mark.parametrize("value,hw", [
    (32, (32, 32)), ("32", (32, 32)), (" 224x160 ", (224, 160)), ("224×160", (224, 160)),
    ("224X160", (224, 160)), ((224, 160), (224, 160)), ([7, 9], (7, 9)), ("007", (7, 7)),
])
def test_parse_input_accepts(value, hw):
    assert parse_input(value) == hw


@pytest.mark.parametrize("value,error", [
    (True, CostModelError), ([True, 3], CostModelError), ([12.9, 12.9], CostModelError),
    (224.0, CostModelError), (["a", 3], CostModelError), ([1, 2, 3], CostModelError),
    ([], CostModelError), ("1e3", CostModelError), ("0x5", CostModelError),
    ("1_000", CostModelError), ("+32", CostModelError), ("٣٢", CostModelError),
    ("32x", CostModelError), ("", CostModelError), (None, CostModelError),
    (0, CostModelError), (-3, CostModelError), (10**6 + 1, LimitError),
    ("9" * 5000, LimitError),  # refused on its digits, never converted
])
def test_parse_input_refuses(value, error):
    with pytest.raises(error) as e:
        parse_input(value)
    assert e.value.field == "input"


def test_parse_input_limit_follows_the_environment(monkeypatch):
    monkeypatch.setenv("COSTMODEL_MAX_INPUT", "64")
    assert parse_input(64) == (64, 64)
    with pytest.raises(LimitError, match="COSTMODEL_MAX_INPUT"):
        parse_input("64x65")


# --- parse_si (budgets' limits, sweep's --max-*) ---------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("150M", 150e6), ("2.5M", 2.5e6), ("300k", 3e5), ("1.2G", 1.2e9), ("1e6", 1e6),
    (" 7 ", 7.0), (".5k", 500.0), ("150000000.0", 150e6), ("-3", -3.0),
])
def test_parse_si_accepts(text, value):
    assert parse_si(text) == value


@pytest.mark.parametrize("text", ["1_0G", "nan", "inf", "-inf", "1e400", "9e999T", "", "M",
                                  "0x10", "٣M", "1.2.3", "5 M M"])
def test_parse_si_refuses(text):
    with pytest.raises(ValueError):
        parse_si(text)


# --- budgets: input and limits go through parse_input and parse_si ---------------------------

@pytest.mark.parametrize("entry,text", [
    ("{model: mobilenet, input: true, limits: {flops: 1G}}", "input"),
    ("{model: mobilenet, input: [12.9, 12.9], limits: {flops: 1G}}", "input"),
    ("{model: mobilenet, input: 2000000, limits: {flops: 1G}}", "COSTMODEL_MAX_INPUT"),
    ("{model: mobilenet, limits: {flops: 1_0G}}", "limits.flops"),
    ("{model: mobilenet, limits: {flops: .nan}}", "line 2, column 40"),  # the reader's
    ("{model: mobilenet, limits: {flops: 1e400}}", "limits.flops"),
])
def test_budget_values_are_refused(tmp_path, entry, text):
    f = tmp_path / "budgets.yaml"
    f.write_text(f"models:\n  - {entry}\n")
    with pytest.raises(CostModelError) as e:
        load_budgets(f)
    assert text in str(e.value) and str(f) in str(e.value)


# --- the library's arguments -----------------------------------------------------------------

@pytest.mark.parametrize("kwargs,field", [
    ({"num_classes": 2.5}, "num_classes"), ({"num_classes": True}, "num_classes"),
    ({"num_classes": 0}, "num_classes"), ({"num_classes": MAX_INT + 1}, "num_classes"),
    ({"input": True}, "input"), ({"input": ["a", 3]}, "input"), ({"input": [12.9, 12.9]}, "input"),
    ({"width": math.nan}, "width"), ({"width": math.inf}, "width"), ({"width": True}, "width"),
    ({"width": "1"}, "width"), ({"width": 0}, "width"), ({"depth": 1e9}, "depth"),
    ({"depth": MAX_MULTIPLIER * 1.01}, "depth"), ({"options": None}, "options"),
    ({"options": "paper"}, "options"), ({"model": 3}, "model"), ({"model": None}, "model"),
    ({"model": ["mobilenet"]}, "model"),
])
def test_library_arguments_are_refused(kwargs, field):
    kwargs = {"model": "mobilenet", **kwargs}
    with pytest.raises(CostModelError) as e:
        evaluate_model(kwargs.pop("model"), **kwargs)
    assert e.value.field == field


@pytest.mark.parametrize("models", ["mobilenet", 3, None])
def test_compare_takes_a_list(models):
    with pytest.raises(CostModelError) as e:
        compare(models)
    assert e.value.field == "models"


@pytest.mark.parametrize("kwargs,field", [
    ({"flops_per_madd": True}, "flops_per_madd"), ({"flops_per_madd": 2.0}, "flops_per_madd"),
    ({"bn_params": "no"}, "bn_params"), ({"dtype": ["x"]}, "dtype"), ({"scope": None}, "scope"),
])
def test_options_are_strict(kwargs, field):
    with pytest.raises(CostModelError) as e:
        Options(**kwargs)
    assert e.value.field == field


def test_library_keeps_int_like_values():
    numpy = pytest.importorskip("numpy")
    r = evaluate_model("mobilenet", input=numpy.int64(32), num_classes=numpy.int32(10),
                       width=MAX_MULTIPLIER / 200)
    assert (r.input, r.num_classes, r.width) == ((32, 32), 10, 0.5)
    assert type(r.num_classes) is int


# --- the command line ------------------------------------------------------------------------

runner = CliRunner()

COMMANDS = [["compare", "mobilenet"], ["show", "mobilenet"], ["dataflow", "effnet"],
            ["rules", "mobilenet"], ["report", "mobilenet"], ["scale", "mobilenet"]]
BAD_OPTIONS = [
    (["--width", "nan"], "--width"), (["--width", "inf"], "--width"),
    (["--width", "1e300"], "--width"), (["--width", "-1"], "--width"),
    (["--classes", "0"], "--classes"), (["--input", "1e3"], "--input"),
    (["--input", "0x5"], "--input"), (["--input", "1_000"], "--input"),
    (["--input", "2000000"], "COSTMODEL_MAX_INPUT"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("option,named", BAD_OPTIONS, ids=lambda o: " ".join(o) if
                         isinstance(o, list) else None)
def test_cli_options_exit_2_naming_the_option(command, option, named):
    if command[0] == "scale" and option[0] == "--classes":
        pytest.skip("scale takes no --classes")
    if command[0] == "scale" and option[0] == "--width":
        option = ["--width-factor", *option[1:], "--depth-factor", "1"]  # same checks
        named = "width"
    res = runner.invoke(app, command + option)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.stdout == ""
    assert named in res.stderr, res.stderr


@pytest.mark.parametrize("args,text", [
    (["--width", "0.25:nan:0.1"], "'nan' is not a number"),
    (["--width", "inf"], "'inf' is not a number"),
    (["--width", "0.1:1e300:1e-300"], "too many values"),
    (["--width", "1e3"], "implausibly large"),
    (["--input", "96:1e9:16"], "at most 100,000"),
    (["--input", "96:2000000:1000000"], "COSTMODEL_MAX_INPUT"),
    (["--input", "1_000"], "--input"),
    (["--width", "0.5:1:0.0001", "--depth", "0.5:1:0.0001"], "configurations (at most 100,000)"),
    (["--width", "0.5,1", "--max-flops", "1_0G"], "budget '1_0G'"),
    (["--width", "0.5,1", "--max-flops", "nan"], "budget 'nan'"),
])
def test_sweep_grids_exit_2(args, text):
    res = runner.invoke(app, ["sweep", "mobilenet_v2", *args])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.stdout == ""
    assert text in res.stderr, res.stderr


def test_sweep_grid_over_the_limit_is_a_limit_error():
    from costmodel.analysis.sweep import parse_axis

    with pytest.raises(LimitError):
        parse_axis("width", "0.001:100:0.0001")


def test_check_budgets_with_a_bad_value_exit_2(tmp_path):
    f = tmp_path / "budgets.yaml"
    f.write_text("models:\n  - {model: mobilenet, input: true, limits: {flops: 1G}}\n")
    res = runner.invoke(app, ["check", "--budgets", str(f)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "input" in res.stderr


@pytest.mark.parametrize("args,text", [
    # 1.15 ** 5079 overflows a float (found by test_fuzz): refused naming φ, never exit 3
    (["--phi", "5079", "--alpha", "1", "--beta", "1"], "field 'phi'"),
    (["--phi", "60"], "implausibly large"),  # 1.2 ** 60 ≈ 56,000: over MAX_MULTIPLIER
])
def test_compound_scaling_out_of_range_exit_2(args, text):
    res = runner.invoke(app, ["scale", "mobilenet", *args])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and text in res.stderr, res.stderr


@pytest.mark.parametrize("options,text", [
    ("{flops_per_madd: true}", "flops_per_madd must be 1 or 2, got True"),
    ("{bn_params: 'yes'}", "bn_params must be true or false, got 'yes'"),
    ("{bn_params: 1}", "bn_params must be true or false, got 1"),
])
def test_budget_options_are_strict(tmp_path, options, text):
    f = tmp_path / "budgets.yaml"
    f.write_text(f"options: {options}\nmodels:\n  - {{model: mobilenet, limits: {{flops: 1G}}}}\n")
    with pytest.raises(CostModelError) as e:
        load_budgets(f)
    assert text in str(e.value) and str(f) in str(e.value)
