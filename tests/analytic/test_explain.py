"""explain: closed-form derivations, each value equal to the engine's own count."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from costmodel.analysis import explain as ex
from costmodel.analysis.explain import FORMULAS, explain_formula
from costmodel.analysis.explain_layer import _derivable, explain_layer
from costmodel.api import evaluate_model
from costmodel.cli import app
from costmodel.errors import CostModelError

runner = CliRunner()


def test_mobilenet_table_3():
    """MobileNet Table 3 (Dk=3, M=N=512, Df=14): 462M → 52.3M → 29.6M → 15.1M mult-adds and
    2.36M → 0.27M → 0.15M → 0.15M parameters, each equal to the engine's count."""
    d = explain_formula("mobilenet")
    assert d.ok
    flops = [d.step(q).value for q in ("standard conv FLOPs", "depthwise separable FLOPs",
                                       "α = 0.75 FLOPs", "ρ = 0.714 FLOPs")]
    assert flops == [3 * 3 * 512 * 512 * 14 * 14,
                     3 * 3 * 512 * 14 * 14 + 512 * 512 * 14 * 14,
                     3 * 3 * 384 * 14 * 14 + 384 * 384 * 14 * 14,  # αM = αN = 384
                     3 * 3 * 384 * 10 * 10 + 384 * 384 * 10 * 10]  # ρDf = round(9.996) = 10
    assert [round(f / 1e6, 1) for f in flops] == [462.4, 52.3, 29.6, 15.1]
    params = [d.step(q).value for q in ("standard conv params", "depthwise separable params",
                                        "α = 0.75 params", "ρ = 0.714 params")]
    assert [round(p / 1e6, 2) for p in params] == [2.36, 0.27, 0.15, 0.15]
    for s in d.steps:
        assert s.engine is not None and s.match, s
    assert d.step("ρ cost ratio").value == Fraction(10 * 10, 14 * 14)


@pytest.mark.parametrize("k,m,n,df", [(3, 512, 512, 14), (3, 32, 64, 112), (5, 16, 24, 7),
                                      (7, 3, 8, 5)])
def test_dwsep_ratio_is_one_over_n_plus_one_over_dk2(k, m, n, df):
    d = explain_formula("dwsep", k=k, m=m, n=n, df=df)
    assert d.ok
    ratio = d.step("separable / standard")
    assert ratio.value == ratio.engine == Fraction(1, n) + Fraction(1, k * k)
    assert d.step("depthwise separable FLOPs").engine == k * k * m * df * df + m * n * df * df


@pytest.mark.parametrize("g", [1, 2, 4, 8])
def test_conv_and_grouped_conv(g):
    d = explain_formula("conv", k=3, m=64, n=128, df=10, g=g)
    assert d.ok
    flops = "standard conv FLOPs" if g == 1 else "grouped conv FLOPs"
    assert d.step(flops).engine == 3 * 3 * (64 // g) * 128 * 10 * 10
    if g > 1:
        assert d.step("grouped / dense").engine == Fraction(1, g)


@pytest.mark.parametrize("m,df", [(64, 16), (32, 32), (7, 10), (64, 15)])
def test_effnet_separable_pooling(m, df):
    """1.5·(3·Df²·M) against 9·Df²·M for a 3×3 dw conv: half, exactly when Df is even."""
    d = explain_formula("effnet", m=m, df=df)
    assert d.ok
    part = d.step("separable part FLOPs")
    assert part.engine == 3 * df * df * m + 3 * (df // 2) * df * m
    paper = d.step("paper's form")
    assert paper.value == Fraction(3, 2) * 3 * df * df * m
    if df % 2 == 0:
        assert paper.match is True
        assert d.step("separable / 3×3").engine == Fraction(1, 2)
    else:
        assert paper.match is None  # the pool floors: the paper's form is approximate


@pytest.mark.parametrize("c,m,g,df", [(240, 60, 3, 28), (272, 68, 4, 14), (384, 96, 8, 7),
                                      (144, 36, 1, 28)])
def test_shufflenet_unit_against_resnet_and_resnext(c, m, g, df):
    d = explain_formula("shufflenet", c=c, m=m, g=g, df=df)
    assert d.ok
    hw = df * df
    assert d.step("ShuffleNet unit FLOPs").engine == hw * (2 * c * m // g + 9 * m)
    assert d.step("ResNet bottleneck FLOPs").engine == hw * (2 * c * m + 9 * m * m)
    assert d.step("ResNeXt bottleneck FLOPs").engine == hw * (2 * c * m + 9 * m * m // g)


@pytest.mark.parametrize("c1,c2,df,g", [(128, 128, 56, 1), (90, 180, 56, 1), (52, 312, 56, 1),
                                        (240, 60, 28, 3), (256, 256, 56, 4)])
def test_shufflenet_v2_mac_and_bound(c1, c2, df, g):
    """MAC = hw(c1+c2) + c1c2/g ≥ 2·√(hw·g·B) + B/hw, with equality at c1 = c2."""
    d = explain_formula("mac", c1=c1, c2=c2, df=df, g=g)
    assert d.ok
    hw = df * df
    mac = d.step("MAC")
    assert mac.engine == hw * (c1 + c2) + c1 * c2 // g
    b = hw * c1 * c2 / g
    bound = d.step("MAC lower bound").value
    assert math.isclose(bound, 2 * math.sqrt(hw * g * b) + b / hw)
    assert mac.engine >= bound * (1 - 1e-12)
    excess = d.step("MAC over the bound").value
    assert math.isclose(excess, mac.engine / bound - 1, abs_tol=1e-12)
    if c1 == c2:
        assert abs(excess) < 1e-12
    if g > 1:  # G2: the dense conv with the same FLOPs has c2/g outputs
        assert d.step("MAC, dense conv with the same FLOPs").engine == \
            hw * (c1 + c2 // g) + c1 * c2 // g


def test_every_formula_checks_out_at_its_defaults():
    for name in FORMULAS:
        assert explain_formula(name).ok, name


def _derivable_paths(result):
    return _derivable(result.tree)


@pytest.mark.parametrize("model,input", [("mobilenet", None), ("mobilenet-0.5", 160),
                                         ("shufflenet", None), ("shufflenet-g8", None),
                                         ("effnet", None), ("effnet-shufflenet", None),
                                         ("effnet-baseline", 30),
                                         ("mobilenet-v3-small", None),  # SE: 1×1 convs, bias
                                         ("shufflenet-v2", None)])
def test_every_derivable_layer_of_the_zoo_matches_the_engine(model, input):
    """Every conv, dwconv, linear, dwsep, shufflenet_unit and effnet_block of these models:
    each formula equals the engine's rows for it (also the convs inside blocks)."""
    result = evaluate_model(model, input=input)
    paths = _derivable_paths(result)
    inner = [r.path for r in result.rows if r.type in ("conv", "dwconv", "linear")]
    assert paths
    for path in paths + inner:
        d = explain_layer(result, path)
        assert d.ok, (path, [s for s in d.steps if s.match is False])
        assert any(s.match for s in d.steps)


def test_layer_derivation_numbers():
    """MobileNet's dws7_11 blocks are Table 3's layer: 14×14×512 → 512."""
    d = explain_layer(evaluate_model("mobilenet"), "dws7_11.2")
    assert d.step("depthwise separable FLOPs").engine == 3 * 3 * 512 * 14 * 14 + \
        512 * 512 * 14 * 14
    conv1 = explain_layer(evaluate_model("mobilenet"), "conv1")
    assert conv1.step("standard conv FLOPs").engine == 3 * 3 * 3 * 32 * 112 * 112
    assert conv1.step("MAC").engine == 3 * 224 * 224 + 32 * 112 * 112 + 864
    unit = explain_layer(evaluate_model("shufflenet"), "stage2.0")  # stride 2, dense gconv1
    assert unit.step("unit FLOPs").engine == 56 * 56 * 24 * 60 + 9 * 60 * 28 * 28 + \
        28 * 28 * 60 * 216 // 3


@pytest.mark.parametrize("args,message", [
    (["explain", "foo"], "unknown formula 'foo'"),
    (["explain", "effnet", "--c", "3"], "formula 'effnet' takes --m, --df; not --c"),
    (["explain", "mobilenet", "--layer", "dws99"], "mobilenet has no layer 'dws99'"),
    (["explain", "mobilenet", "--layer", "dws7_11"], "inside it: dws7_11.0"),
    (["explain", "mobilenet", "--layer", "conv1_bn"], "no closed-form derivation for a 'bn'"),
    (["explain", "mobilenet", "--layer", "conv1", "--k", "3"], "--k apply to formulas"),
    (["explain", "dwsep", "--input", "32"], "--input and --width apply to a model's layer"),
    (["explain", "shufflenet", "--c", "240", "--m", "70"], "m = 70 must divide c = 240"),
    (["explain", "conv", "--g", "5"], "not divisible by g = 5"),
])
def test_bad_requests_exit_2(args, message):
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert message in res.stderr


def test_cli_json_and_exit_code_on_a_mismatch(monkeypatch):
    res = runner.invoke(app, ["explain", "dwsep", "--k", "3", "--m", "512", "--n", "512",
                              "--df", "14", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["ok"] is True
    step = next(s for s in data["steps"] if s["quantity"] == "depthwise separable FLOPs")
    assert step["value"] == step["engine"] == 52_283_392 and step["match"] is True
    ratio = next(s for s in data["steps"] if s["quantity"] == "separable / standard")
    assert ratio["exact"] == "521/4608"  # 1/512 + 1/9
    # a formula that disagrees with the engine fails the command
    wrong = ex.Derivation("t", "t", {}, [ex.Step("x", "x", "x", 1, 2)])
    monkeypatch.setitem(ex.FORMULAS, "conv", lambda **kw: wrong)
    res = runner.invoke(app, ["explain", "conv"])
    assert res.exit_code == 1
    assert "differs" in res.stdout


def test_formula_errors_are_cost_model_errors():
    with pytest.raises(CostModelError):
        explain_formula("mobilenet", rho=0.01, df=14)


def test_dilated_grouped_conv_layer():
    """A dilated, strided, grouped conv: the 1/g comparison uses the same conv with one group."""
    from conftest import run_layers
    r = run_layers([{"type": "conv", "name": "c", "out": 32, "kernel": 3, "stride": 2,
                     "dilation": 2, "groups": 4}], input=(17, 17), in_channels=16)
    d = explain_layer(r, "c")
    assert d.ok
    (row,) = r.rows
    assert d.steps[0].engine == 3 * 3 * (16 // 4) * 32 * row.out.h * row.out.w
    assert d.step("grouped / dense").engine == Fraction(1, 4)


def test_cli_csv_has_raw_numbers():
    import csv
    import io
    out = runner.invoke(app, ["explain", "mobilenet", "-f", "csv"]).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    by = {r["quantity"]: r for r in rows}
    assert int(by["ρ = 0.714 FLOPs"]["value"]) == int(by["ρ = 0.714 FLOPs"]["engine"]) == \
        3 * 3 * 384 * 10 * 10 + 384 * 384 * 10 * 10
    assert by["ρ cost ratio"]["exact"] == "25/49"


# --- any kernel, stride and padding: the formula's output side is the engine's ----------------

PADDINGS = [None, "same", "valid", 0, 1, 3]


def _expected_side(df: int, k: int, s: int, padding) -> int:
    """The output side as torch and TensorFlow define it, written here independently."""
    if padding == "same":
        return math.ceil(df / s)
    p = {None: (k - 1) // 2, "valid": 0}.get(padding, padding)
    return math.floor((df + 2 * p - k) / s) + 1


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", range(1, 8))
def test_conv_and_dwsep_agree_with_the_engine_for_any_kernel_and_padding(k, stride, padding):
    m, n, df = 6, 10, 9
    do = _expected_side(df, k, stride, padding)
    conv = explain_formula("conv", k=k, m=m, n=n, df=df, stride=stride, padding=padding)
    assert conv.ok, [s for s in conv.steps if s.match is False]
    assert conv.step("output side Do").value == conv.step("output side Do").engine == do
    flops = conv.steps[1]  # after the output side: 'standard conv FLOPs', '1×1 conv FLOPs'
    assert flops.quantity.endswith("conv FLOPs") and flops.engine == k * k * m * n * do * do
    assert conv.symbols["Do"] == do and conv.symbols["padding"]
    group = explain_formula("group", k=k, m=m, n=n, df=df, g=2, stride=stride, padding=padding)
    assert group.ok and group.steps[1].engine == k * k * (m // 2) * n * do * do
    dwsep = explain_formula("dwsep", k=k, m=m, n=n, df=df, stride=stride, padding=padding)
    assert dwsep.ok, [s for s in dwsep.steps if s.match is False]
    assert dwsep.step("depthwise separable FLOPs").engine == k * k * m * do * do + m * n * do * do


@pytest.mark.parametrize("padding", ["default", "same", "valid", "2"])
@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_cli_conv_even_kernels_exit_0_and_print_the_padding(k, padding):
    res = runner.invoke(app, ["explain", "conv", "--k", str(k), "--m", "8", "--n", "8",
                              "--df", "8", "--padding", padding, "--stride", "2", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["ok"] and all(s["match"] for s in data["steps"])
    assert data["symbols"]["padding"].startswith(
        {"default": "default", "same": "'same'", "valid": "'valid'", "2": "2 per side"}[padding])


def test_the_issue_case_even_kernel_default_padding():
    """`explain conv --k 2 --m 8 --n 8 --df 8` said '✗ differs': the default padding (0 for
    k = 2) makes the output 7×7, and the formula now counts 7² positions."""
    res = runner.invoke(app, ["explain", "conv", "--k", "2", "--m", "8", "--n", "8", "--df", "8"])
    assert res.exit_code == 0, res.output
    assert "differs" not in res.stdout and "Do = 7" in res.stdout
    d = explain_formula("conv", k=2, m=8, n=8, df=8)
    assert d.step("standard conv FLOPs").value == 2 * 2 * 8 * 8 * 7 * 7


@pytest.mark.parametrize("k", range(1, 8))
def test_mobilenet_chain_for_any_kernel(k):
    d = explain_formula("mobilenet", k=k)
    assert d.ok, [s for s in d.steps if s.match is False]
    do, rdo = _expected_side(14, k, 1, None), _expected_side(10, k, 1, None)
    assert d.step("ρ = 0.714 FLOPs").engine == k * k * 384 * rdo * rdo + 384 * 384 * rdo * rdo
    assert d.step("standard conv FLOPs").engine == k * k * 512 * 512 * do * do


@pytest.mark.parametrize("args,field", [
    (["mobilenet", "--alpha", "nan"], "alpha"), (["mobilenet", "--alpha", "inf"], "alpha"),
    (["mobilenet", "--alpha", "1e300"], "alpha"), (["mobilenet", "--alpha", "-inf"], "alpha"),
    (["mobilenet", "--rho", "nan"], "rho"), (["mobilenet", "--rho", "inf"], "rho"),
    (["mobilenet", "--rho", "1e300"], "rho"), (["mobilenet", "--alpha", "0"], "alpha"),
    (["conv", "--padding", "sideways"], "padding"), (["conv", "--padding", "-1"], "padding"),
    (["conv", "--stride", "0"], "stride"), (["conv", "--k", "9", "--df", "4",
                                             "--padding", "valid"], "df"),
    (["conv", "--m", "1" + "0" * 40], "m"),
])
def test_bad_numbers_exit_2_naming_the_option(args, field):
    res = runner.invoke(app, ["explain", *args])
    assert res.exit_code == 2, res.output
    assert f"field '{field}'" in res.stderr and "Traceback" not in res.output
