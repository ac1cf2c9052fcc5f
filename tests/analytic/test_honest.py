"""Honest comparisons: compare shows heads and inputs and warns when they differ; relative
factors read alike; check says nothing for a met limit; zoo models have one spelling."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from costmodel.budgets import parse_limit
from costmodel.cli import app
from costmodel.render.format import ratio, signed_pct
from costmodel.spec.zoo import resolve, zoo

runner = CliRunner()


def run(*args: str):
    res = runner.invoke(app, list(args))
    assert res.exit_code in (0, 1), res.output
    return res


def test_compare_warns_when_heads_differ():
    data = json.loads(run("compare", "effnet", "mobilenet", "--input", "32", "-f", "json").stdout)
    assert [d["num_classes"] for d in data] == [10, 1000]
    assert [d["in_channels"] for d in data] == [3, 3]
    assert data[0]["warnings"] == []
    assert len(data[1]["warnings"]) == 1 and "1000 classes" in data[1]["warnings"][0]
    text = run("compare", "effnet", "mobilenet", "--input", "32", "-f", "markdown").stdout
    assert "| classes |" in text and "**1,000** ⚠" in text
    assert "⚠ mobilenet has 1000 classes, effnet 10" in text


def test_compare_like_for_like_has_no_warning():
    data = json.loads(run("compare", "effnet", "mobilenet", "--input", "32", "--classes", "10",
                          "-f", "json").stdout)
    assert [d["warnings"] for d in data] == [[], []]
    assert "⚠" not in run("compare", "mobilenet", "mobilenet-0.5", "-f", "markdown").stdout


def test_compare_warns_when_inputs_differ():
    data = json.loads(run("compare", "effnet", "effnet-baseline", "mobilenet", "--classes", "10",
                          "-f", "json").stdout)
    assert data[1]["warnings"] == []  # both 3×32×32, 10 classes
    assert data[2]["warnings"] == ["mobilenet's input is 3×224×224, effnet's 3×32×32 "
                                   "(--input N compares like for like)"]


@pytest.mark.parametrize("v, text", [(28, "28.0×"), (12.34, "12.3×"), (1, "1.00×"),
                                     (0.5, "0.500×"), (101.2, "101×"), (999.6, "1,000×"),
                                     (1234.5, "1,234×"), (None, "")])
def test_ratio_three_significant_digits(v, text):
    assert ratio(v) == text


@pytest.mark.parametrize("v, text", [(0.05, "+5.00%"), (-2, "-200%"), (3.2319, "+323%"),
                                     (-0.26, "-26.0%")])
def test_signed_pct_has_one_sign(v, text):
    assert signed_pct(v) == text


def test_relative_limit_below_minus_100_percent_is_refused():
    assert parse_limit("-100%").bound(4_000) == 0
    with pytest.raises(ValueError, match="more than 100% below"):
        parse_limit("-200%")


def test_check_met_limit_is_not_over_by_zero(tmp_path):
    (tmp_path / "budgets.yaml").write_text(
        "models:\n  - model: mobilenet\n    limits: {flops: 600M, params: 1M}\n")
    res = runner.invoke(app, ["check", "-b", str(tmp_path / "budgets.yaml"), "-f", "markdown"])
    assert res.exit_code == 1
    assert "| 94.79% | — | ok |" in res.stdout
    # 4,231,976 − 1,000,000 = 3,231,976 over, 323% of the limit
    assert "3,231,976 (3.23M, +323%)" in res.stderr
    data = json.loads(runner.invoke(app, ["check", "-b", str(tmp_path / "budgets.yaml"),
                                          "-f", "json"]).stdout)
    assert data["results"][0]["excess"] == 0  # JSON keeps the raw 0


@pytest.mark.parametrize("typed, name", [
    ("shufflenet_v2_x1_0", "shufflenet-v2-x1-0"), ("ShuffleNet-V2", "shufflenet-v2"),
    ("espnet_c", "espnet-c"), ("efficientnet_b0", "efficientnet-b0"),
    ("skipnet_cifar_110", "skipnet-cifar-110"), ("mobilenet-0.5", "mobilenet-0.5"),
    ("squeezenet1_0", "squeezenet1-0")])
def test_zoo_model_reported_under_its_list_spelling(typed, name):
    assert resolve(typed).name == name
    assert json.loads(run("compare", typed, "-f", "json").stdout)[0]["model"] == name


def test_every_zoo_name_is_what_list_shows():
    for entry in zoo():
        assert resolve(entry.name).name == entry.name


def test_spec_file_keeps_its_own_name(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("name: My_Net\ninput: 32\nlayers:\n  - {type: conv, out: 8, kernel: 3}\n")
    assert resolve(str(spec)).name == "My_Net"
