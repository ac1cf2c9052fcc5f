"""rules: ShuffleNet V2's guidelines G1–G4 and EffNet's warning as measured checks."""

from __future__ import annotations

import json
import math

import pytest
from conftest import run_layers
from typer.testing import CliRunner

from costmodel.analysis.rules import (Thresholds, check_e1, check_g1, check_g2, check_g3,
                                      check_g4, check_rules, fails)
from costmodel.api import evaluate_model
from costmodel.cli import app

runner = CliRunner()


def by_path(findings):
    return {f.path: f for f in findings}


def bound(hw, c1, c2, g=1):
    """ShuffleNet V2 eq. 1 (g = 1) and its grouped form: 2·√(hw·g·B) + B/hw."""
    b = hw * c1 * c2 / g
    return 2 * math.sqrt(hw * g * b) + b / hw


# --- G1 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("c1,c2,severity", [
    (128, 128, "ok"),       # 1:1 reaches the bound
    (90, 180, "ok"),        # ShuffleNet V2 Table 1's 1:2 at 56×56
    (52, 312, "warning"),   # 1:6
    (36, 432, "warning"),   # 1:12
])
def test_g1_excess_over_the_lower_bound(c1, c2, severity):
    r = run_layers([{"type": "conv", "out": c1, "kernel": 1},
                    {"type": "conv", "out": c2, "kernel": 1}], input=(56, 56), in_channels=c1)
    second = by_path(check_g1(r))["1"]
    hw = 56 * 56
    mac = hw * (c1 + c2) + c1 * c2
    assert second.measured["mac"] == mac
    assert math.isclose(second.measured["mac_bound"], bound(hw, c1, c2))
    assert math.isclose(second.measured["excess"], mac / bound(hw, c1, c2) - 1)
    assert second.severity == severity
    if c1 == c2:
        assert abs(second.measured["excess"]) < 1e-12


def test_g1_shufflenet_v1_bottleneck():
    """ShuffleNet V1's 4:1 bottleneck (240 → 60, g = 3, 28×28) is 24.4% over the bound."""
    f = by_path(check_g1(evaluate_model("shufflenet")))["stage2.1.0.res.main.gconv1"]
    hw = 28 * 28
    mac = hw * (240 + 60) + 240 * 60 // 3
    assert f.measured["mac"] == mac == 240_000
    assert math.isclose(f.measured["mac_bound"], bound(hw, 240, 60, 3))
    assert math.isclose(f.measured["mac_bound"], 2 * hw * 120 + 4_800)  # √(c1·c2) = 120
    assert round(100 * f.measured["excess"], 1) == 24.4
    assert f.severity == "warning"


def test_g1_a_conv_reading_the_image_is_at_most_info():
    f = by_path(check_g1(evaluate_model("effnet")))["stage1.block.pw"]
    assert (f.measured["c1"], f.measured["c2"], f.measured["reads_image"]) == (3, 32, True)
    assert f.measured["excess"] > Thresholds().g1[1]
    assert f.severity == "info"


def test_g1_skips_depthwise_and_kxk_convs():
    paths = {f.path for f in check_g1(evaluate_model("mobilenet"))}
    assert paths == {f"dws{i}.pw" for i in (1, 2, 3, 4, 5, 6, 12, 13)} | \
        {f"dws7_11.{i}.pw" for i in range(5)}


# --- G2 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("g,c,severity", [(1, 128, None), (2, 180, "info"), (4, 256, "warning"),
                                          (8, 360, "warning")])
def test_g2_grouped_conv_against_dense_with_the_same_flops(g, c, severity):
    """ShuffleNet V2 Table 2's setting: 1×1 group convs c → c at 56×56."""
    r = run_layers([{"type": "conv", "out": c, "kernel": 1, "groups": g}], input=(56, 56),
                   in_channels=c)
    found = check_g2(r)
    if g == 1:
        assert found == []
        return
    (f,) = found
    hw = 56 * 56
    mac = hw * (c + c) + c * c // g
    dense = hw * (c + c // g) + c * c // g  # c/g outputs: the same FLOPs with one group
    assert (f.measured["mac"], f.measured["mac_dense_same_flops"]) == (mac, dense)
    assert math.isclose(f.measured["increase"], mac / dense - 1)
    assert f.severity == severity


def test_g2_shufflenet_expanding_group_conv_doubles_its_mac():
    f = by_path(check_g2(evaluate_model("shufflenet")))["stage2.1.0.res.main.gconv2"]
    hw = 28 * 28
    assert f.measured["mac"] == hw * (60 + 240) + 60 * 240 // 3
    assert f.measured["mac_dense_same_flops"] == hw * (60 + 80) + 60 * 240 // 3
    assert f.severity == "error"  # +109.5%
    assert check_g2(evaluate_model("mobilenet")) == []  # depthwise convs are not G2's


# --- G3 --------------------------------------------------------------------------------------

def test_g3_block_measures():
    effnet = by_path(check_g3(evaluate_model("effnet")))
    m = effnet["stage2.block"].measured
    # pw, dw1, pool, dw2, conv in series; dw1, pool, dw2 each < 10% of the block's FLOPs
    assert (m["operators"], m["series"], m["parallel"], m["small_run"]) == (5, 5, 1, 3)
    assert [p.rsplit(".", 1)[1] for p in m["small_run_layers"]] == ["dw1", "pool", "dw2"]
    assert effnet["stage2.block"].severity == "info"
    shuffle = by_path(check_g3(evaluate_model("effnet-shufflenet")))
    m = shuffle["stage2.block"].measured
    # gconv1 → dw → gconv2 beside a 3×3 avg pool
    assert (m["operators"], m["series"], m["parallel"]) == (4, 3, 2)
    assert shuffle["stage2.block"].severity == "ok"
    assert all(f.severity == "ok" and f.measured["operators"] == 2
               for f in check_g3(evaluate_model("mobilenet")))


def test_g3_four_parallel_fragments_warn():
    """The paper's 4-fragment-parallel structure: four 1×1 convs side by side."""
    branch = [{"type": "conv", "out": 16, "kernel": 1}]
    r = run_layers([{"type": "parallel", "merge": "concat", "branches": [branch] * 4}],
                   input=(8, 8), in_channels=64)
    (f,) = check_g3(r)
    assert (f.measured["operators"], f.measured["parallel"], f.measured["series"]) == (4, 4, 1)
    assert f.severity == "warning"


def test_g3_operators_are_the_conv_linear_and_pooling_kinds():
    """deconv and adaptive_pool are operators (a conv, a pool); upsample is data movement."""
    r = run_layers([{"type": "parallel", "merge": "concat", "branches": [
        [{"type": "deconv", "out": 4}, {"type": "max_pool"}],
        [{"type": "upsample"}, {"type": "avg_pool"}],
        [{"type": "adaptive_pool", "size": 4}, {"type": "relu"}]]}],
        input=(4, 4), in_channels=4)
    (f,) = check_g3(r)
    assert (f.measured["operators"], f.measured["parallel"], f.measured["series"]) == (4, 3, 2)
    # an LSTM step (and SkipNet's recurrent gate) is a matrix product: an operator
    r = run_layers([{"type": "residual", "layers": [{"type": "lstm", "hidden": 8}]}],
                   input=(1, 1), in_channels=8)
    assert check_g3(r)[0].measured["operators"] == 1


def test_g4_counts_the_shuffle_by_its_class_under_either_tag():
    for tag in ("channel_shuffle", "shuffle"):
        r = run_layers([{"type": tag, "groups": 2}], input=(4, 4), in_channels=4)
        assert check_g4(r)[0].measured["mac_by_kind"]["channel_shuffle"] == 2 * 4 * 16


# --- G4 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["mobilenet", "shufflenet", "effnet", "effnet-baseline"])
def test_g4_elementwise_share(model):
    r = evaluate_model(model)
    (f,) = check_g4(r)
    ew = sum(row.mac for row in r.rows
             if row.category in ("activation", "depthwise")
             or row.type in ("add", "multiply", "channel_shuffle"))
    bn = sum(row.mac for row in r.rows if row.category == "bn")
    assert f.measured["mac_elementwise"] == ew
    assert f.measured["mac_by_kind"]["bn"] == bn
    assert f.measured["share"] == ew / r.totals.mac
    assert f.severity == ("ok" if ew / r.totals.mac < 0.25 else "info")


def test_g4_shufflenet_residual_adds_and_shuffles_count():
    (f,) = check_g4(evaluate_model("shufflenet"))
    kinds = f.measured["mac_by_kind"]
    assert kinds["add"] > 0 and kinds["channel_shuffle"] > 0 and kinds["depthwise"] > 0


# --- E1 --------------------------------------------------------------------------------------

def test_e1_effnet_baseline_pools_early_in_a_narrow_network():
    found = check_e1(evaluate_model("effnet-baseline"))
    assert [(f.path, f.severity, f.measured["factor"]) for f in found] == [
        ("stage1.pool", "warning", 4.0), ("stage2.pool", "warning", 4.0),
        ("stage3.pool", "info", 4.0)]
    assert found[0].measured["widest"] == 256 and found[0].measured["narrow"]


def test_e1_effnet_has_none_and_wide_networks_get_info():
    assert check_e1(evaluate_model("effnet")) == []
    found = check_e1(evaluate_model("mobilenet"))
    assert [f.path for f in found] == ["dws2.dw", "dws4.dw", "dws6.dw", "dws12.dw"]
    assert {f.severity for f in found} == {"info"}  # 1024 channels: not narrow


def test_thresholds_are_parameters():
    strict = Thresholds(e1_narrow_channels=2048)
    assert {f.severity for f in check_e1(evaluate_model("mobilenet"), strict)} == \
        {"warning", "info"}


# --- the command -----------------------------------------------------------------------------

def test_fail_on_gates_ci():
    assert fails(check_rules(evaluate_model("effnet-baseline")), "warning")
    assert not fails(check_rules(evaluate_model("effnet-baseline")), "error")
    assert runner.invoke(app, ["rules", "effnet-baseline", "--fail-on", "warning"]).exit_code == 1
    assert runner.invoke(app, ["rules", "effnet-baseline", "--fail-on", "error"]).exit_code == 0
    assert runner.invoke(app, ["rules", "effnet-baseline"]).exit_code == 0
    assert runner.invoke(app, ["rules", "shufflenet", "--fail-on", "error"]).exit_code == 1
    assert runner.invoke(app, ["rules", "effnet", "--fail-on", "warning"]).exit_code == 0


def test_cli_json_contract_lists_every_check():
    res = runner.invoke(app, ["rules", "mobilenet", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [s["rule"] for s in data["summary"]] == ["G1", "G2", "G3", "G4", "E1"]
    g1 = [f for f in data["findings"] if f["rule"] == "G1"]
    assert len(g1) == 13 and all(f["severity"] == "ok" for f in g1)
    assert data["summary"][0]["checked"] == 13
    only = json.loads(runner.invoke(app, ["rules", "mobilenet", "-r", "g4", "-f",
                                          "json"]).stdout)
    assert [f["rule"] for f in only["findings"]] == ["G4"]
    assert [s["rule"] for s in only["summary"]] == ["G4"]


def test_cli_table_hides_passed_checks_unless_all():
    short = runner.invoke(app, ["rules", "mobilenet", "-f", "markdown"]).stdout
    full = runner.invoke(app, ["rules", "mobilenet", "-f", "markdown", "--all"]).stdout
    assert "| G1 | ok | dws1.pw |" not in short and "| G1 | ok | dws1.pw |" in full
    assert "26 checks passed (ok), not listed" in short


def test_cli_bad_rule():
    res = runner.invoke(app, ["rules", "effnet", "-r", "G9"])
    assert res.exit_code == 2 and "unknown rule G9" in res.stderr
