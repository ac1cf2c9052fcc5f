"""costmodel scale: multipliers, predicted vs actual growth, rounding by factor and by stage,
the scaled spec written and loaded back, and bad parameters (exit 2)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from costmodel.analysis.scale import (Coefficients, Multipliers, scale, scaled_input,
                                      spec_text, stage_groups)
from costmodel.api import evaluate_model, load
from costmodel.cli import app
from costmodel.errors import CostModelError
from costmodel.engine import evaluate
from costmodel.options import Options
from costmodel.spec.loader import load_spec, validate_spec

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


# A network where every channel count scales except the image's 3 and the 10 classes:
# conv 3→16 (3×3) on 8×8, a repeat of two 16→16 3×3 convs, global pool, linear to 10.
TINY = {"name": "tiny", "input": 8, "num_classes": 10, "layers": [
    {"name": "conv1", "type": "conv", "out": 16, "kernel": 3},
    {"name": "body", "type": "stage", "layers": [
        {"name": "rep", "type": "repeat", "n": 2, "layers": [{"type": "conv", "out": 16}]}]},
    {"name": "pool", "type": "global_pool"}, {"name": "flatten", "type": "flatten"},
    {"name": "fc", "type": "linear", "out": "classes", "bias": False}]}


def tiny():
    return validate_spec(TINY, "<tiny>")


def tiny_flops(c: int, h: int, repeats: int) -> int:
    return (c * h * h * 3 * 9          # conv1: C_out·H·W · C_in·k²
            + repeats * c * h * h * c * 9  # the repeated c→c 3×3 convs
            + c * 10)                  # fc


@pytest.mark.parametrize("phi", [-1, 0, 1, 2, 3.5])
def test_compound_multipliers_and_predicted_growth(phi):
    m = Multipliers.compound(phi)
    assert (m.depth, m.width, m.resolution) == (1.2 ** phi, 1.1 ** phi, 1.15 ** phi)
    p = m.predicted()
    assert p["flops"] == pytest.approx((1.2 * 1.1 ** 2 * 1.15 ** 2) ** phi)
    assert p["params"] == pytest.approx((1.2 * 1.1 ** 2) ** phi)
    assert p["peak_activation"] == pytest.approx((1.1 * 1.15 ** 2) ** phi)
    assert Coefficients().flops_base == pytest.approx(1.920270)  # ≈ 2, EfficientNet eq. 3


@pytest.mark.parametrize("hw,r,multiple,expected", [
    ((224, 224), 1.15, 1, (258, 258)),      # 257.6 rounds half up
    ((224, 224), 1.15, 32, (256, 256)),     # 8.05 multiples of 32
    ((224, 160), 0.5, 1, (112, 80)),
    ((10, 10), 0.25, 1, (3, 3)),            # 2.5 → 3, not banker's 2
    ((224, 224), 0.001, 1, (1, 1)),         # never below one multiple
    ((224, 224), 0.001, 8, (8, 8)),
])
def test_scaled_input(hw, r, multiple, expected):
    assert scaled_input(hw, r, multiple) == expected


def test_growth_without_rounding_is_the_formula():
    """w=2, d=2, r=2: every term is arithmetic; only the fixed 3 input channels and 10
    classes keep the growth below d·w²·r² = 32."""
    s = scale(tiny(), Multipliers(width=2, depth=2, resolution=2))
    base, scaled = tiny_flops(16, 8, 2), tiny_flops(32, 16, 4)  # ceil(2·2) = 4 repeats
    assert (s.base.totals.flops, s.scaled.totals.flops) == (base, scaled)
    assert s.growth("flops") == scaled / base
    assert s.predicted["flops"] == 2 * 2 ** 2 * 2 ** 2
    factors = {f.name: f for f in s.factors}
    assert factors["width"].actual["flops"] == tiny_flops(32, 8, 2) / base
    assert factors["depth"].actual["flops"] == tiny_flops(16, 8, 4) / base
    assert factors["resolution"].actual["flops"] == tiny_flops(16, 16, 2) / base
    assert factors["combined"].actual["flops"] == scaled / base
    assert factors["resolution"].actual["params"] == 1.0
    assert [g.name for g in s.stages] == ["stem", "body", "head"]
    body = s.stages[1]
    assert (body.base.layers, body.scaled.layers) == (2, 4)
    assert (body.base.flops, body.scaled.flops) == (2 * 16 * 64 * 16 * 9, 4 * 32 * 256 * 32 * 9)


def test_depth_rounds_repeats_up_per_stage():
    """ShuffleNet's stages repeat 3, 7, 3 units after the first; d = 1.2 makes them
    ceil(3.6) = 4, ceil(8.4) = 9, ceil(3.6) = 4. Each unit has 3 conv layers."""
    s = scale(load("shufflenet"), Multipliers(depth=1.2))
    stages = {g.name: g for g in s.stages}
    for name, n in (("stage2", 3), ("stage3", 7), ("stage4", 3)):
        assert stages[name].base.layers == 3 * (1 + n)
        assert stages[name].scaled.layers == 3 * (1 + math.ceil(n * 1.2))
    assert s.factors[1].applied == f"{1 + 3 * 16 + 1} → {1 + 3 * (4 + 9 + 4 + 3) + 1} layers"


def test_depth_never_removes_a_stage():
    """ceil(n·d) ≥ 1 for any d > 0: a tiny depth keeps one unit per repeat."""
    s = scale(load("shufflenet"), Multipliers(depth=0.01))
    assert [g.scaled.layers for g in s.stages] == [1, 3 * 2, 3 * 2, 3 * 2, 1]


def test_resolution_rounding_through_the_strides():
    """224·1.15 = 257.6 → 258; conv1 (3×3/2, pad 1) and the max pool (3×3/2, pad 1) and each
    stage's stride-2 unit give ceil-like sizes: the 7×7 last map becomes 9×9, not 8.05×8.05,
    so FLOPs grow more than γ² predicts."""
    s = scale(load("shufflenet"), Multipliers(resolution=1.15))

    def halve(h):  # a 3×3 window, stride 2, padding 1
        return (h + 2 - 3) // 2 + 1

    sizes = [258]
    for _ in range(5):  # conv1, maxpool, stage2, stage3, stage4
        sizes.append(halve(sizes[-1]))
    outs = {g.name: g.scaled.out.h for g in s.stages if not g.scaled.out.flat}
    assert [outs["stem"], outs["stage2"], outs["stage3"], outs["stage4"]] == sizes[2:]
    assert sizes[-1] == 9
    res = s.factors[2]
    assert res.actual["flops"] > res.predicted["flops"] == pytest.approx(1.15 ** 2)
    aligned = scale(load("shufflenet"), Multipliers(resolution=1.15), resolution_multiple=32)
    assert aligned.scaled.input == (256, 256)
    assert [g for g in aligned.stages if g.name == "stage4"][0].scaled.out.h == 256 // 32


def test_multipliers_are_relative_to_the_model_as_named():
    s = scale(load("mobilenet-0.5"), Multipliers(width=2))
    assert s.scaled.width == 1.0
    assert s.scaled.totals == evaluate_model("mobilenet").totals


def test_scaled_network_shows_its_own_alpha_and_depth():
    """Factors multiply the named model's α and d; every output says what they become:
    mobilenet-0.5 by width factor 1.5 is α = 0.75, which compare mobilenet --width 0.75
    evaluates."""
    res = run("scale", "mobilenet-0.5", "--width-factor", "1.5", "--depth-factor", "2", "-f",
              "json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["multipliers"]["width"] == 1.5
    assert (d["base"]["width"], d["scaled"]["width"]) == (0.5, 0.5 * 1.5)
    assert (d["base"]["depth"], d["scaled"]["depth"]) == (1.0, 2.0)
    assert d["totals"]["flops"]["scaled"] == \
        evaluate_model("mobilenet", width=0.75, depth=2.0).totals.flops
    alone = json.loads(run("scale", "mobilenet-0.5", "--width-factor", "1.5", "-f", "json").stdout)
    compared = json.loads(run("compare", "mobilenet", "--width", "0.75", "-f", "json").stdout)
    assert alone["totals"]["flops"]["scaled"] == compared[0]["flops"]
    table = run("scale", "mobilenet-0.5", "--width-factor", "1.5", "--depth-factor", "2", "-f",
                "markdown")
    assert "(α 0.5 → 0.75, depth 1 → 2, 224×224 → 224×224)" in table.stdout


@pytest.mark.parametrize("given,expected", [
    ({"width": 2}, Multipliers(2.0, 1.0, 1.0)),
    ({"depth": 1.5, "resolution": 0.5}, Multipliers(1.0, 1.5, 0.5)),
    ({"phi": 1}, Multipliers.compound(1)),
    ({"phi": 2, "beta": 1.2}, Multipliers.compound(2, Coefficients(beta=1.2))),
])
def test_multipliers_as_given(given, expected):
    assert Multipliers.given(**given) == expected


def test_depth_without_repeats_is_noted():
    s = scale(load("effnet"), Multipliers(depth=2))
    assert s.growth("flops") == 1.0
    assert any("no `repeat`" in n for n in s.notes)


@pytest.mark.parametrize("model", ["mobilenet", "shufflenet-g4-0.5", "effnet",
                                   "effnet-baseline"])
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_written_spec_loads_back_to_the_scaled_model(tmp_path, model, fmt):
    s = scale(load(model), Multipliers.compound(1))
    path = tmp_path / f"scaled.{fmt}"
    path.write_text(spec_text(s.spec, fmt))
    again = load_spec(path)
    assert again.name == s.spec.name
    assert evaluate(again).totals == s.scaled.totals
    for opts in (Options(scope="fvcore"), Options(bn_params=False)):
        assert evaluate(again, options=opts).totals == evaluate(s.spec, options=opts).totals


# Every structural feature a spec can have, to check that a written spec keeps them all.
FEATURES = {"name": "features", "input": [32, 24], "num_classes": 7,
            "rounding": {"rule": "divisible", "divisor": 8, "min": 8}, "layers": [
    {"name": "stem", "type": "conv", "out": 16, "kernel": [1, 3], "stride": [1, 2]},
    {"name": "st", "type": "stage", "layers": [
        {"name": "rep", "type": "repeat", "n": 2, "first": {"stride": 2},
         "layers": [{"type": "dwsep", "out": 16, "activation": "relu6"}]}]},
    {"name": "res", "type": "residual", "layers": [{"type": "conv", "out": 16, "kernel": 1}],
     "shortcut": [{"type": "identity"}]},
    {"name": "par", "type": "parallel", "merge": "concat", "split": "half",
     "branch_names": ["a", "b"], "branches": [[{"type": "conv", "out": 8, "kernel": 1}], []]},
    {"name": "se", "type": "se", "ratio": 0.25},
    {"name": "head", "type": "conv", "out": 64, "kernel": 1, "channel_scaling": "no_shrink"},
    {"type": "global_pool"}, {"type": "flatten"}, {"type": "linear", "out": "classes"}]}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_written_spec_keeps_every_structure(tmp_path, fmt):
    s = scale(validate_spec(FEATURES, "<features>"), Multipliers(width=2, depth=1.5,
                                                                 resolution=1.5))
    path = tmp_path / f"features.{fmt}"
    path.write_text(spec_text(s.spec, fmt))
    again = load_spec(path)
    assert again.model_dump() == s.spec.model_dump()
    assert again.input == [48, 36]
    assert evaluate(again).totals == s.scaled.totals


def test_stage_groups_without_stages_follow_top_level_layers():
    groups = stage_groups(evaluate_model("mobilenet"))
    assert list(groups) == ["conv1", "dws1", "dws2", "dws3", "dws4", "dws5", "dws6", "dws7_11",
                            "dws12", "dws13", "fc"]
    assert [r.path for r in groups["conv1"]] == ["conv1", "conv1_bn", "conv1_act"]
    assert [r.path for r in groups["dws13"]][-2:] == ["pool", "flatten"]


@pytest.mark.parametrize("kwargs,message", [
    ({"width": 0}, "width multiplier must be positive"),
    ({"depth": -1}, "depth multiplier must be positive"),
    ({"resolution": 0}, "resolution multiplier must be positive"),
    ({"width": float("nan")}, "must be a finite number"),
    ({"depth": 1e6}, "implausibly large"),
    ({"depth": 0}, "depth multiplier must be positive"),
])
def test_bad_multipliers(kwargs, message):
    with pytest.raises(CostModelError, match=message):
        Multipliers(**kwargs)


# ---- the command ----------------------------------------------------------------------------

def test_scale_json_contract():
    res = run("scale", "shufflenet", "--phi", "1", "-f", "json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["model"] == "shufflenet" and d["scaled_model"] == "shufflenet-phi1"
    assert d["multipliers"]["phi"] == 1 and d["multipliers"]["flops_per_phi"] == \
        pytest.approx(1.2 * 1.1 ** 2 * 1.15 ** 2)
    assert d["scaled"]["input"] == [258, 258] and d["scaled"]["depth"] == 1.2
    expected = evaluate(load("shufflenet"), input=258, width=1.1, depth=1.2).totals
    flops = d["totals"]["flops"]
    assert flops["scaled"] == expected.flops and isinstance(flops["scaled"], int)
    assert flops["base"] == evaluate_model("shufflenet").totals.flops
    assert flops["growth"] == flops["scaled"] / flops["base"]
    assert flops["predicted"] == pytest.approx(1.2 * 1.1 ** 2 * 1.15 ** 2)
    assert d["totals"]["mac"]["predicted"] is None
    assert [f["factor"] for f in d["factors"]] == ["width", "depth", "resolution", "combined"]
    assert [g["stage"] for g in d["stages"]] == ["stem", "stage2", "stage3", "stage4", "head"]
    assert d["conventions"]["flops"] == "multiply-adds"


def test_scale_table_shows_prediction_and_rounding():
    res = run("scale", "mobilenet", "--phi", "1")
    assert res.exit_code == 0, res.output
    for text in ("predicted", "deviation", "(α·β²·γ²)^φ", "≈ 2^φ", "Growth by factor",
                 "By stage", "224×224 → 258×258", "multiply-add"):
        assert text in res.stdout, text


def test_scale_writes_the_spec(tmp_path):
    out = tmp_path / "b1.yaml"
    res = run("scale", "mobilenet", "--width-factor", "0.75", "-r", "0.857", "--write", str(out),
              "--name", "mobilenet-b", "-f", "json")
    assert res.exit_code == 0, res.output
    spec = load_spec(out)
    assert (spec.name, spec.width, spec.input) == ("mobilenet-b", 0.75, 192)  # 224·0.857=191.97
    assert evaluate(spec).totals == evaluate_model("mobilenet-0.75", input=192).totals
    assert json.loads(res.stdout)["totals"]["flops"]["scaled"] == evaluate(spec).totals.flops


def fails(*args: str) -> str:
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.stdout == ""
    return res.stderr


@pytest.mark.parametrize("args,message", [
    (["--width-factor", "0"], "width multiplier must be positive, got 0"),
    (["--depth-factor", "0"], "depth multiplier must be positive"),
    (["--depth-factor", "-2"], "depth multiplier must be positive"),
    (["--resolution-factor", "0"], "resolution multiplier must be positive"),
    (["-r", "0"], "resolution multiplier must be positive"),
    (["--width-factor", "nan"], "finite number"),
    (["--phi", "inf"], "finite"),
    (["--phi", "1", "--width-factor", "2"], "either --phi or --width-factor"),
    (["--phi", "1", "-r", "2", "--depth-factor", "2"],
     "either --phi or --depth-factor, --resolution-factor"),
    (["--width", "2"], "No such option: --width"),      # a factor, not α: --width-factor
    (["-w", "2"], "No such option: -w"),
    (["--alpha", "1.3"], "add --phi"),
    (["--phi", "1", "--alpha", "0"], "alpha multiplier must be positive"),
    ([], "give a multiplier"),
    (["--phi", "1", "--write", "out.txt"], "use a .yaml, .yml, .json file name"),
    (["--phi", "1", "--input", "0"], "positive integers"),
])
def test_bad_parameters_exit_2(args, message):
    assert message in fails("scale", "mobilenet", *args)


def test_width_that_breaks_group_divisibility_names_the_layer():
    """effnet-shufflenet truncates scaled widths (no divisible rounding): at w = 1.1 its first
    stage makes int(64·1.1) = 70 channels, which the next unit's 4 groups do not divide."""
    err = fails("scale", "effnet-shufflenet", "--width-factor", "1.1")
    assert "layer 'stage2.block.res.main.gconv1'" in err
    assert "70 input channels are not divisible by groups=4" in err


def test_collapsed_feature_map_names_the_layer_and_writes_nothing(tmp_path):
    out = tmp_path / "never.yaml"
    err = fails("scale", "effnet", "--resolution-factor", "0.05", "--write", str(out))
    assert "layer 'stage2.block.pool'" in err and "shrinks below 1" in err
    assert "input 2×2" in err  # 32·0.05 = 1.6 → 2
    assert not out.exists()
