"""guidelines: ShuffleNet V2's G1–G4 experiments as specs — the paper's channel arithmetic,
FLOPs fixed within each experiment, MAC ordered as its formulas predict, and the verdicts."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costmodel.analysis import guidelines as g
from costmodel.analysis.rules import Finding
from costmodel.cli import app
from costmodel.errors import CostModelError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
HW = 56 * 56


@pytest.fixture(scope="module", params=["gpu", "arm"])
def cases(request):
    return g.build_cases(request.param)


def by(cases, guideline, width):
    return {c.structure.label: c for c in cases if c.guideline == guideline and c.width == width}


# --- the paper's channel counts ---------------------------------------------------------------

def test_g1_channels_are_table_1s():
    assert [g.g1_channels(128, r) for r in (1, 2, 6, 12)] == [
        (128, 128), (90, 180), (52, 312), (36, 432)]
    assert [g.g1_channels(32, r) for r in (1, 2, 6, 12)] == [
        (32, 32), (22, 44), (13, 78), (9, 108)]


def test_g2_channels_are_table_2s_except_one_not_divisible():
    assert [g.g2_channels(128, k) for k in (1, 2, 4, 8)] == [128, 180, 256, 360]
    # The paper's ARM column prints 180 for g = 8, which 8 groups cannot split: 176.
    assert [g.g2_channels(64, k) for k in (1, 2, 4, 8)] == [64, 90, 128, 176]


# --- FLOPs: fixed within each experiment, exactly as the arithmetic says ------------------------

def test_g1_flops_exact_and_fixed(cases):
    for w in g.WIDTHS:
        got = by(cases, "G1", w)
        for label, case in got.items():
            c1, c2 = g.g1_channels(g.BY_GUIDELINE["G1"].base[_set(cases)] * w,
                                   case.structure.param)
            assert case.result.totals.flops == g.STACK * 2 * HW * c1 * c2
        ref = got["1:1"].result.totals.flops
        assert ref == g.STACK * 2 * HW * (g.BY_GUIDELINE["G1"].base[_set(cases)] * w) ** 2
        # ⌊·⌋ of the channel counts: at most 5.5% below 1:1 (the paper's ARM pair 22·44)
        assert all(22 * 44 / 32**2 <= c.result.totals.flops / ref <= 1 for c in got.values())


def test_g2_flops_exact_and_fixed(cases):
    for w in g.WIDTHS:
        got = by(cases, "G2", w)
        for case in got.values():
            k = case.structure.param
            c = g.g2_channels(g.BY_GUIDELINE["G2"].base[_set(cases)] * w, k)
            assert case.result.totals.flops == g.STACK * HW * c * c // k
        ref = got["g=1"].result.totals.flops
        assert all(0.94 <= c.result.totals.flops / ref <= 1 for c in got.values())
        assert got["g=4"].result.totals.flops == ref  # c = 2·c₁ exactly: c²/4 = c₁²


def test_g3_flops_exact_and_fixed(cases):
    for w in g.WIDTHS:
        c = g.BY_GUIDELINE["G3"].base[_set(cases)] * w
        got = by(cases, "G3", w)
        one = g.STACK * HW * c * c
        assert got["1-fragment"].result.totals.flops == one
        assert got["4-fragment-series"].result.totals.flops == one  # 4·(c/2)²
        assert got["2-fragment-parallel"].result.totals.flops == one  # 2·c·(c/2)
        assert got["4-fragment-parallel"].result.totals.flops == one  # 4·c·(c/4)
        c2 = math.isqrt(c * c // 2)
        assert got["2-fragment-series"].result.totals.flops == g.STACK * HW * 2 * c2 * c2
        assert 0.98 <= got["2-fragment-series"].result.totals.flops / one <= 1


def test_g4_flops_identical_with_and_without_relu_and_shortcut(cases):
    for w in g.WIDTHS:
        c = 32 * w
        m = c // 4
        got = by(cases, "G4", w)
        expected = g.STACK * HW * (c * m + 9 * m * m + m * c)
        assert {case.result.totals.flops for case in got.values()} == {expected}


# --- MAC: the paper's formulas ---------------------------------------------------------------

def test_g1_every_conv_meets_eq_1_with_equality_at_1_to_1(cases):
    for case in (c for c in cases if c.guideline == "G1"):
        for row in case.result.rows:
            c1, c2 = row.inputs[0].c, row.out.c
            assert row.mac == HW * (c1 + c2) + c1 * c2  # MAC = hw(c1 + c2) + c1c2
            bound = g.mac_lower_bound(56, 56, row.flops)
            if c1 == c2:
                assert row.mac == pytest.approx(bound, rel=1e-12)
            else:
                assert row.mac > bound


def test_g1_mac_grows_with_the_ratio(cases):
    for w in g.WIDTHS:
        macs = [by(cases, "G1", w)[s].result.totals.mac for s in ("1:1", "1:2", "1:6", "1:12")]
        assert macs == sorted(macs) and len(set(macs)) == 4


def test_g2_mac_is_eq_2_and_grows_with_groups(cases):
    for w in g.WIDTHS:
        got = by(cases, "G2", w)
        for case in got.values():
            k, c = case.structure.param, case.result.in_channels
            assert case.result.totals.mac == g.STACK * (HW * 2 * c + c * c // k)
        macs = [got[f"g={k}"].result.totals.mac for k in (1, 2, 4, 8)]
        assert macs == sorted(macs) and len(set(macs)) == 4


def test_g4_mac_falls_as_element_wise_operations_go(cases):
    for w in g.WIDTHS:
        got = {s: c.result.totals.mac for s, c in by(cases, "G4", w).items()}
        c = 32 * w
        relu = g.STACK * 2 * HW * (2 * c // 4 + c)  # two ReLUs inside (c/4), one after (c)
        add = g.STACK * 3 * HW * c  # read two, write one
        assert got["ReLU + shortcut"] - got["shortcut only"] == relu
        assert got["ReLU + shortcut"] - got["ReLU only"] == add
        assert got["neither"] == got["ReLU + shortcut"] - relu - add


# --- verdicts ------------------------------------------------------------------------------------

def _times(e, speeds):
    return {(s.label, w): 1 / speeds[s.label][i] for s in e.structures
            for i, w in enumerate(g.WIDTHS)}


def test_every_guideline_holds_on_the_papers_own_numbers():
    for e in g.EXPERIMENTS:
        for platform in ("gpu", "arm"):
            v = g.paper_verdict(e, platform)
            assert v.holds == "holds", (e.guideline, platform, v.text)
    v = g.paper_verdict(g.BY_GUIDELINE["G2"], "gpu")
    assert v.slowdown[1] == pytest.approx(2451 / 634 - 1)  # "more than two times slower"


def test_verdict_partly_and_does_not_hold():
    e = g.BY_GUIDELINE["G1"]
    speeds = {s.label: list(s.arm) for s in e.structures}
    speeds["1:2"][0] = speeds["1:1"][0] * 1.10  # 1:2 10% faster at ×1
    v = g.verdict(e, _times(e, speeds))
    assert v.holds == "partly" and v.fastest[1] == "1:2" and v.fastest[2] == "1:1"
    speeds["1:2"] = [x * 1.5 for x in speeds["1:1"]]
    assert g.verdict(e, _times(e, speeds)).holds == "does not hold"
    speeds["1:2"] = [x * 1.02 for x in speeds["1:1"]]  # within the noise tolerance
    assert g.verdict(e, _times(e, speeds)).holds == "holds"
    assert g.verdict(e, {}).holds == "not measured"
    times = _times(e, speeds)
    noisy = g.verdict(e, times, {k: 0.3 if k == ("1:6", 2) else 0.1 for k in times})
    assert noisy.holds == "holds (noisy)" and "spread up to 30%" in noisy.text


# --- the rules hook --------------------------------------------------------------------------

def _measured_payload():
    cases = g.build_cases("arm", (1,), ["G1"])
    for c, t in zip(cases, (1.0, 1.1, 1.2, 1.5)):
        c.seconds, c.spread = t / 1000, 0.01
    machine = {"device": "cpu (test)", "threads": 1, "batch": 1, "torch": "x", "python": "3"}
    return g.payload(g.Report(cases, "arm", True, machine))


def test_violation_costs_quote_the_measured_slowdown():
    data = json.loads(json.dumps(_measured_payload()))  # as read back from a file
    costs = g.violation_costs(data)
    assert list(costs) == ["G1"]
    assert "cpu (test)" in costs["G1"] and "+50% (×1)" in costs["G1"]
    findings = [Finding("G1", "warning", "a", {}, "1:12"), Finding("G1", "ok", "b", {}, "1:1"),
                Finding("G3", "info", "c", {}, "frag")]
    quoted = g.quote_costs(findings, costs)
    assert quoted[0].reason == f"1:12 [{costs['G1']}]"
    assert quoted[1:] == findings[1:]


def test_violation_costs_refuse_an_unmeasured_or_foreign_document():
    unmeasured = g.payload(g.Report(g.build_cases("arm", (1,), ["G4"]), "arm", False))
    with pytest.raises(CostModelError, match="no measurement"):
        g.violation_costs(unmeasured)
    with pytest.raises(CostModelError, match="not a `costmodel guidelines"):
        g.violation_costs({"model": "x"})


def test_predicted_seconds_without_a_profile_is_none():
    # with one: tests/analytic/test_latency_model.py (the latency model's own total)
    case = g.build_cases("arm", (1,), ["G4"])[0]
    assert g.predicted_seconds(case.result, None) is None


# --- the command ------------------------------------------------------------------------------

def test_cli_analytic_json():
    res = runner.invoke(app, ["guidelines", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["measured"] is False and data["machine"] is None and data["channels"] == "arm"
    assert [e["guideline"] for e in data["experiments"]] == ["G1", "G2", "G3", "G4"]
    g1 = data["experiments"][0]
    assert len(g1["cases"]) == 12 and g1["verdict"]["holds"] == "not measured"
    first = g1["cases"][0]
    assert (first["structure"], first["width"], first["channels"]) == ("1:1", "×1", "32,32")
    assert first["ms"] is None and first["predicted_ms"] is None
    assert first["paper_gpu"] == 1.0 and g1["cases"][3]["paper_arm"] == pytest.approx(57.6 / 76.2)


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_cli_formats(fmt):
    res = runner.invoke(app, ["guidelines", "-g", "g2", "--width", "1", "--channels", "gpu",
                              "--format", fmt])
    assert res.exit_code == 0, res.output
    assert "g=8" in res.stdout or fmt == "csv"  # CSV holds the verdicts table
    assert "G2" in res.stdout


@pytest.mark.parametrize("args,message", [
    (["--width", "3"], "widths are ×1, ×2 and ×4"),
    (["-g", "G9"], "unknown guideline G9"),
    (["--profile", "/nonexistent/p.yaml"], "--profile: no such file"),
    (["--batch", "65"], "--batch"),
])
def test_cli_bad_input_exits_2(args, message):
    res = runner.invoke(app, ["guidelines", *args])
    assert res.exit_code == 2
    assert message in res.stderr


def test_analytic_path_imports_no_torch():
    code = ("import sys; from typer.testing import CliRunner; from costmodel.cli import app; "
            "r = CliRunner().invoke(app, ['guidelines', '-f', 'json']); "
            "assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('matplotlib', 'torch', 'fvcore') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def _set(cases) -> str:
    """The channel set the cases were built with (the G1 1:1 width at ×1)."""
    c1 = next(c for c in cases if c.key == "G1/1:1/x1").result.in_channels
    return "gpu" if c1 == 128 else "arm"


def test_rules_quotes_a_guidelines_file(tmp_path):
    file = tmp_path / "guidelines.json"
    file.write_text(json.dumps(_measured_payload()))
    res = runner.invoke(app, ["rules", "shufflenet", "--guidelines", str(file), "-f", "json"])
    assert res.exit_code == 0, res.output
    findings = json.loads(res.stdout)["findings"]
    g1 = [f for f in findings if f["rule"] == "G1" and f["severity"] != "ok"]
    assert g1 and all(f["reason"].endswith("+50% (×1), guideline holds]") for f in g1)
    assert not any("measured on" in f["reason"] for f in findings if f["rule"] != "G1")
    file.write_text(json.dumps({"kind": "costmodel-guidelines", "measured": False}))
    res = runner.invoke(app, ["rules", "shufflenet", "--guidelines", str(file)])
    assert res.exit_code == 2 and str(file) in res.stderr and "no measurement" in res.stderr
