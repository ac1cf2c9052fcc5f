"""costmodel check: budgets files, limits, exit codes, the job summary (the examples: test_adoption.py)."""

from __future__ import annotations

import json
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from costmodel.api import evaluate_model
from costmodel.budgets import Limit, parse_limit
from costmodel.cli import app
from costmodel.options import Options
ROOT = Path(__file__).resolve().parents[2]
MOBILENET_FLOPS = 568_740_352  # MobileNet V1 1.0-224: the paper's 569M
MOBILENET_PARAMS = 4_231_976   # torch's count (BN γ/β included); 4,210,088 without them

runner = CliRunner()


def check(tmp_path: Path, text: str, *args: str, name: str = "budgets.yaml"):
    file = tmp_path / name
    file.write_text(textwrap.dedent(text))
    return runner.invoke(app, ["check", "--budgets", str(file), *args])


@pytest.mark.parametrize("text, absolute", [
    ("150M", 150_000_000),
    ("2.5M", 2_500_000),
    ("300k", 300_000),
    ("1.2G", 1_200_000_000),
    ("4.35M", 4_350_000),      # 4.35e6 is 4349999.999… in floating point; rounds back
    ("1e6", 1_000_000),
    (150_000_000, 150_000_000),
    (0, 0),
])
def test_absolute_limits(text, absolute):
    assert parse_limit(text) == Limit(str(text), absolute=absolute)


@pytest.mark.parametrize("text, baseline, bound", [
    ("+5%", 100, 105),
    ("+5%", 99, 103),           # 103.95 → 103: a value passes when it is at most the bound
    ("-10%", 1000, 900),
    ("+0%", MOBILENET_FLOPS, MOBILENET_FLOPS),
    ("+0.5%", 1000, 1005),
    ("-2.5%", 1000, 975),
])
def test_relative_limits(text, baseline, bound):
    limit = parse_limit(text)
    assert limit.relative and limit.bound(baseline) == bound


def test_relative_limit_keeps_the_exact_percentage():
    assert parse_limit("+0.1%").percent == Fraction(1, 10)


def test_within_budget_exits_0(tmp_path):
    res = check(tmp_path, f"""
        models:
          - model: mobilenet
            limits: {{flops: {MOBILENET_FLOPS}, params: 4.3M}}
    """)
    assert res.exit_code == 0, res.output
    assert "all 2 limits met" in res.stdout
    assert res.stderr == ""


def test_one_over_exits_1_naming_model_limit_value_and_excess(tmp_path):
    res = check(tmp_path, f"""
        models:
          - model: mobilenet
            limits: {{flops: {MOBILENET_FLOPS - 1}, params: 4.3M}}
    """)
    assert res.exit_code == 1
    assert "1 of 2 limits exceeded" in res.stdout
    line = res.stderr.strip()
    assert line.startswith("over budget: mobilenet (224×224): FLOPs 568,740,352")
    assert f"the limit {MOBILENET_FLOPS - 1:,}" in line and "by 1 (1," in line


def test_relative_limit_against_a_baseline(tmp_path):
    g8 = evaluate_model("shufflenet-g8").totals
    g3 = evaluate_model("shufflenet").totals
    res = check(tmp_path, """
        models:
          - model: shufflenet-g8
            baseline: shufflenet
            limits: {flops: +1%, params: +5%}
    """, "-f", "json")
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    flops, params = data["results"]
    assert flops["baseline_value"] == g3.flops and flops["limit"] == g3.flops * 101 // 100
    assert flops["value"] == g8.flops and flops["status"] == "ok"
    assert params["limit"] == g3.params * 105 // 100 and params["status"] == "over"
    assert params["excess"] == g8.params - g3.params * 105 // 100
    assert data["ok"] is False and data["over"] == 1 and data["checked"] == 2


def test_baseline_with_its_own_input(tmp_path):
    res = check(tmp_path, """
        models:
          - model: mobilenet
            input: 128
            baseline: {model: mobilenet, input: 224}
            limits: {flops: -60%}
    """, "-f", "json")
    (finding,) = json.loads(res.stdout)["results"]
    assert finding["baseline_value"] == MOBILENET_FLOPS
    assert finding["value"] == evaluate_model("mobilenet", input=128).totals.flops
    assert finding["limit"] == MOBILENET_FLOPS * 40 // 100 and res.exit_code == 0


def test_options_and_every_metric(tmp_path):
    o = Options(bn_params=False, dtype="float16", scope="fvcore")
    t = evaluate_model("mobilenet", input=160, options=o).totals
    res = check(tmp_path, """
        options: {bn_params: false, dtype: float16, scope: fvcore}
        models:
          - model: mobilenet
            input: 160x160
            limits: {flops: 1G, params: 1G, mac: 1G, mac_bytes: 1G, peak_activation: 1G}
    """, "-f", "json")
    values = {r["metric"]: r["value"] for r in json.loads(res.stdout)["results"]}
    assert values == {"flops": t.flops, "params": t.params, "mac": t.mac,
                      "mac_bytes": 2 * t.mac, "peak_activation": t.peak_activation}


def test_the_options_of_a_budgets_file_are_the_options_of_a_count(tmp_path):
    from costmodel.budgets import load_budgets

    file = tmp_path / "b.yaml"
    file.write_text("options: {scope: fvcore, flops_per_madd: 2, bn_params: false, "
                    "dtype: float64}\nmodels: [{model: mobilenet, limits: {flops: 1M}}]\n")
    assert load_budgets(file).options == Options("fvcore", 2, False, "float64")
    file.write_text("models: [{model: mobilenet, limits: {flops: 1M}}]\n")
    assert load_budgets(file).options == Options()


def test_spec_paths_are_relative_to_the_budgets_file(tmp_path):
    from costmodel.spec.zoo import zoo_dir

    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "mine.yaml").write_text((zoo_dir() / "effnet.yaml").read_text())
    res = check(tmp_path, """
        models:
          - model: nets/mine.yaml
            limits: {flops: 10M}
    """, "-f", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["results"][0]["value"] == evaluate_model("effnet").totals.flops


@pytest.mark.parametrize("text, message", [
    ("models: [{model: mobilenet, limits: {flops: [}", "invalid YAML at line 1"),
    ("- just a list", "a budgets file is a mapping with a 'models' list"),
    ("models: []", "models: list at least one model"),
    ("models: [{model: nosuchnet, limits: {flops: 1M}}]",
     "models[0] (nosuchnet): unknown model 'nosuchnet'"),
    ("models: [{model: mobilenet, limits: {flop: 1M}}]",
     "models[0] (mobilenet): limits.flop: unknown metric"),
    ("models: [{model: mobilenet, limits: {flops: 150Q}}]",
     "models[0] (mobilenet): limits.flops: '150Q' is not a count"),
    ("models: [{model: mobilenet, limits: {flops: 5%}}]", "write a relative limit with its sign"),
    ("models: [{model: mobilenet, limits: {flops: -3}}]", "must be a non-negative number"),
    ("models: [{model: mobilenet, limits: {flops: true}}]", "got True"),
    ("models: [{model: mobilenet, limits: {}}]", "list at least one limit"),
    ("models: [{model: mobilenet, limits: {flops: +5%}}]",
     "the relative limit '+5%' needs a 'baseline' model"),
    ("models: [{model: mobilenet, name: net, inputs: 3, limits: {flops: 1M}}]",
     "models[0] (net): inputs: unknown field"),
    ("models: [{model: mobilenet, input: 3y, limits: {flops: 1M}}]",
     "models[0] (mobilenet): input: input size '3y'"),
    ("models: [{model: mobilenet, baseline: {modle: x}, limits: {flops: +1%}}]",
     "baseline.modle: unknown field"),
    ("models: [{model: mobilenet, baseline: nosuchnet, limits: {flops: +1%}}]",
     "models[0] (mobilenet): unknown model 'nosuchnet'"),
    ("models: [{model: missing.yaml, limits: {flops: 1M}}]", "no such spec file"),
    ("options: {dtype: f8}\nmodels: [{model: mobilenet, limits: {flops: 1M}}]",
     "options.dtype: Input should be 'float32', 'float16', 'bfloat16', 'int8' or 'float64'"),
    ("options: {scope: torch}\nmodels: [{model: mobilenet, limits: {flops: 1M}}]",
     "options.scope: Input should be 'paper' or 'fvcore'"),
    ("options: {flops_per_madd: 3}\nmodels: [{model: mobilenet, limits: {flops: 1M}}]",
     "options.flops_per_madd: Input should be 1 or 2"),
    ("options: {bn_param: false}\nmodels: [{model: mobilenet, limits: {flops: 1M}}]",
     "options.bn_param: unknown field"),
    ("options: [paper]\nmodels: [{model: mobilenet, limits: {flops: 1M}}]",
     "options: Input should be a mapping of scope, flops_per_madd, bn_params, dtype and batch"),
])
def test_invalid_budgets_exit_2_naming_file_and_entry(tmp_path, text, message):
    res = check(tmp_path, text)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""  # never a table, never a silent pass
    assert res.stderr.startswith(f"error: {tmp_path / 'budgets.yaml'}: ")
    assert message in res.stderr


def test_an_invalid_spec_exits_2(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: bad\nlayers: [{type: conv, out: 0}]\n")
    res = check(tmp_path, "models: [{model: bad.yaml, limits: {flops: 1M}}]")
    assert res.exit_code == 2
    assert "models[0] (bad.yaml)" in res.stderr and "bad.yaml" in res.stderr


def test_missing_budgets_file_exits_2(tmp_path):
    res = runner.invoke(app, ["check", "--budgets", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "cannot read the budgets file" in res.stderr


def test_job_summary_is_appended_after_the_check(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    res = check(tmp_path, f"""
        models:
          - model: mobilenet
            limits: {{flops: {MOBILENET_FLOPS - 1}}}
    """, "-f", "json")
    assert res.exit_code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "**Budget check: ❌ 1 of 1 limits exceeded**" in text
    assert "| mobilenet | 224×224 | flops | **569M** ⚠ |" in text
    json.loads(res.stdout)  # stdout keeps the requested format


def test_job_summary_reports_an_invalid_file(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    res = check(tmp_path, "models: [{model: nosuchnet, limits: {flops: 1M}}]")
    assert res.exit_code == 2
    assert "Budget check could not run" in summary.read_text()
    assert "unknown model 'nosuchnet'" in summary.read_text()


def test_no_summary_outside_github(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    res = check(tmp_path, "models: [{model: effnet, limits: {flops: 10M}}]")
    assert res.exit_code == 0 and not list(tmp_path.glob("*.md"))


def test_an_unwritable_summary_warns_and_keeps_the_exit_code(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no" / "such" / "dir.md"))
    res = check(tmp_path, "models: [{model: effnet, limits: {flops: 1k}}]")
    assert res.exit_code == 1
    assert "warning: cannot write the job summary" in res.stderr
    assert "over budget: effnet (32×32): FLOPs" in res.stderr
