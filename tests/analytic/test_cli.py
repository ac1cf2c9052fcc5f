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
    assert "569M" in res.stdout and "149M" in res.stdout
    assert "multiply-add" in res.stdout and "memory access cost" in res.stdout
    assert "0.263×" in res.stdout  # 149,497,088 / 568,740,352


def test_compare_csv_has_raw_integers():
    res = run("compare", "mobilenet", "shufflenet", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert int(rows[0]["flops"]) == 568_740_352
    assert int(rows[1]["params"]) == evaluate_model("shufflenet").totals.params
    assert res.stdout.startswith("model,input_hw,")  # the header: no comment lines


def test_compare_markdown():
    res = run("compare", "mobilenet", "mobilenet-0.75", "-f", "markdown")
    assert "| model | input | classes | FLOPs |" in res.stdout
    assert "| mobilenet-0.75 | 224×224 | 1,000 | 325M |" in res.stdout
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
    assert "stage1.block.pw,conv,32×32×32,32,32,32,98304,96," in out


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


# --- the counting options: written once, choices from costmodel.options ----------------------

COUNTING = ["--scope", "--flops-per-madd", "--bn-params", "--dtype"]


def _params(command: str) -> dict[str, object]:
    import typer

    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}


@pytest.mark.parametrize("command", ["compare", "show", "report", "skipnet", "scale", "sweep"])
def test_counting_options_are_the_same_block_last_in_every_command(command):
    params = list(_params(command))
    assert params[-5:] == ["scope", "flops_per_madd", "bn_params", "dtype", "batch"]
    assert "options" not in params


def test_counting_choices_come_from_the_options_module():
    from typing import get_args

    from costmodel.options import DTYPE_BYTES, Scope

    params = _params("compare")
    assert list(params["dtype"].type.choices) == list(DTYPE_BYTES)  # float64 included
    assert list(params["scope"].type.choices) == list(get_args(Scope))


def test_every_dtype_counts_its_bytes():
    res = run("compare", "mobilenet", "--input", "32", "--dtype", "float64", "-f", "json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)[0]
    assert d["mac_bytes"] == 8 * d["mac"] and d["conventions"]["dtype"] == "float64"


def test_counting_options_reach_the_command_as_one_options_object():
    res = run("show", "mobilenet", "--input", "32", "--scope", "fvcore", "--flops-per-madd", "2",
              "--no-bn-params", "--dtype", "int8", "-f", "json")
    assert res.exit_code == 0, res.output
    from costmodel.options import Options

    o = Options("fvcore", 2, False, "int8")
    assert json.loads(res.stdout)["conventions"] == o.conventions().record()
    assert json.loads(res.stdout)["totals"]["flops"] == \
        evaluate_model("mobilenet", input=32, options=o).totals.flops


def test_a_command_without_an_options_parameter_is_refused():
    from costmodel.cli._options import counting_options

    def command(model: str):
        pass

    with pytest.raises(TypeError, match="options: Options"):
        counting_options(command)


# --- boundaries: the CLI over the API, the library under it ----------------------------------

def _imports(path) -> set[str]:
    """The modules a file imports, anywhere in it; ``from a import b`` counts as a and a.b."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


PACKAGE = __import__("pathlib").Path(__file__).resolve().parents[2] / "costmodel"


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_cli_does_not_reach_past_the_api(path):
    internals = ("costmodel.engine", "costmodel.layers", "costmodel.spec", "costmodel.evaluate")
    assert not [m for m in _imports(path) if m.startswith(internals)]


@pytest.mark.parametrize("module", ["budgets.py", "views.py", "options.py", "render/table.py",
                                    "analysis/explain.py", "analysis/explain_layer.py",
                                    "analysis/scale.py",
                                    "analysis/sweep.py", "engine/walk.py"])
def test_the_library_does_not_call_up_into_the_api(module):
    assert not [m for m in _imports(PACKAGE / module) if m.startswith("costmodel.api")]


def test_no_command_is_longer_than_about_40_lines():
    """A command parses, calls the library and renders. Its option declarations are data (a
    sweep has twenty options), so the body is measured: docstring to the last line."""
    import ast

    for path in sorted((PACKAGE / "cli").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and any(
                    "command" in ast.unparse(d) for d in node.decorator_list):
                body = node.end_lineno - node.body[0].lineno + 1
                assert body <= 40, f"{path.name}: {node.name} has a {body}-line body"
