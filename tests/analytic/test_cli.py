"""The CLI: formats, the JSON contracts, and clean failures on bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from costmodel.api import evaluate_model
from costmodel.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_compare_json_contract():
    res = run("compare", "effnet", "mobilenet", "shufflenet", "--input", "32", "-f", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [d["model"] for d in data] == ["effnet", "mobilenet", "shufflenet"]
    for d in data:
        assert d["input"] == [32, 32]
        for key in ("flops", "params", "mac", "peak_activation"):
            assert isinstance(d[key], int)
        expected = evaluate_model(d["model"], input=32).totals
        assert (d["flops"], d["params"], d["mac"], d["peak_activation"]) == \
            (expected.flops, expected.params, expected.mac, expected.peak_activation)
        assert d["conventions"]["flops"] == "multiply-adds"
    assert data[1]["flops_rel"] == data[1]["flops"] / data[0]["flops"]


def test_compare_table_states_conventions_and_relatives():
    res = run("compare", "mobilenet", "mobilenet-0.5")
    assert res.exit_code == 0, res.output
    assert "568.7M" in res.stdout and "149.5M" in res.stdout
    assert "multiply-add" in res.stdout and "memory access cost" in res.stdout
    assert "0.263×" in res.stdout  # 149,497,088 / 568,740,352


def test_compare_csv_has_raw_integers():
    res = run("compare", "mobilenet", "shufflenet", "-f", "csv")
    rows = list(csv.DictReader(line for line in io.StringIO(res.stdout) if not line.startswith("#")))
    assert int(rows[0]["flops"]) == 568_740_352
    assert int(rows[1]["params"]) == evaluate_model("shufflenet").totals.params
    assert res.stdout.startswith("# Model comparison")


def test_compare_markdown():
    res = run("compare", "mobilenet", "mobilenet-0.75", "-f", "markdown")
    assert "| model | input | FLOPs |" in res.stdout
    assert "| mobilenet-0.75 | 224×224 | 325.4M |" in res.stdout
    assert "_FLOPs: 1 FLOP per multiply-add" in res.stdout


def test_compare_options_change_the_numbers():
    base = json.loads(run("compare", "mobilenet", "-f", "json").stdout)[0]
    two = json.loads(run("compare", "mobilenet", "-f", "json", "--flops-per-madd", "2").stdout)[0]
    nobn = json.loads(run("compare", "mobilenet", "-f", "json", "--no-bn-params").stdout)[0]
    fv = json.loads(run("compare", "mobilenet", "-f", "json", "--scope", "fvcore").stdout)[0]
    half = json.loads(run("compare", "mobilenet", "-f", "json", "--dtype", "float16").stdout)[0]
    assert two["flops"] == 2 * base["flops"]
    assert nobn["params"] == 4_210_088 and base["params"] == 4_231_976
    assert fv["flops"] > base["flops"]  # + batch norm and the adaptive average pool
    assert half["mac_bytes"] == 2 * base["mac"] and base["mac_bytes"] == 4 * base["mac"]


def test_input_hxw():
    data = json.loads(run("compare", "mobilenet", "--input", "224x160", "-f", "json").stdout)
    assert data[0]["input"] == [224, 160]


def test_show_json_contract():
    res = run("show", "mobilenet", "-f", "json")
    data = json.loads(res.stdout)
    assert data["model"] == "mobilenet" and data["input"] == [224, 224]
    assert data["totals"]["flops"] == 568_740_352
    assert sum(layer["flops"] for layer in data["layers"]) == data["totals"]["flops"]
    first = data["layers"][0]
    assert first == {"path": "conv1", "type": "conv", "category": "conv", "stage": None,
                     "input": [[3, 224, 224]], "output": [32, 112, 112],
                     "flops": 10_838_016, "params": 864,
                     "mac": 3 * 224 * 224 + 32 * 112 * 112 + 864, "activations": 32 * 112 * 112}
    shares = {b["category"]: b["flops_share"] for b in data["breakdown"]}
    assert round(100 * shares["conv1x1"], 2) == 94.86


def test_show_table_has_layers_totals_and_breakdown():
    res = run("show", "effnet")
    assert res.exit_code == 0
    for text in ("stage1.block.dw1", "total", "Conv 1×1", "Conv DW", "Fully connected",
                 "MobileNet Table 2"):
        assert text in res.stdout


def test_show_csv_and_markdown():
    md = run("show", "effnet", "-f", "markdown").stdout
    assert "| stage1.block.pw | conv | 32×32×32 |" in md
    out = run("show", "effnet", "-f", "csv").stdout
    assert "stage1.block.pw,conv,32×32×32,98304,96," in out


def test_list():
    res = run("list")
    assert res.exit_code == 0
    for name in ("mobilenet", "shufflenet", "effnet", "effnet-baseline", "effnet-mobilenet",
                 "effnet-shufflenet"):
        assert name in res.stdout
    data = json.loads(run("list", "-f", "json").stdout)
    assert {"g8", "0.5"} <= set(next(d for d in data if d["name"] == "shufflenet")["variants"])


@pytest.mark.parametrize("name", ["MobileNet", "mobilenet-0.5", "SHUFFLENET-g8", "effnet_baseline",
                                  "Effnet-MobileNet", "shufflenet-0.5-g4"])
def test_names_are_case_insensitive_with_variants(name):
    assert run("compare", name, "-f", "json").exit_code == 0


def test_spec_path_works_where_a_name_does(tmp_path):
    from costmodel.spec.zoo import zoo_dir
    spec = tmp_path / "mine.yaml"
    spec.write_text((zoo_dir() / "mobilenet.yaml").read_text())
    data = json.loads(run("compare", str(spec), "mobilenet", "-f", "json").stdout)
    assert data[0]["flops"] == data[1]["flops"]
