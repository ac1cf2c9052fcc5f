"""Every command's CSV loads with ``pandas.read_csv`` as it is and its JSON with ``json.loads``:
one table per CSV (``--table`` selects another), no comment lines, no total row, shapes as
numeric C, H, W columns."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from costmodel.api import evaluate_model
from costmodel.cli import app
from costmodel.render.table import Column, Table, render
from costmodel.shape import Shape

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MOBILENET = evaluate_model("mobilenet")

# (command line, the CSV's leading columns, its row count)
COMMANDS = [
    (["compare", "mobilenet", "shufflenet"], ["model", "input_hw", "num_classes", "flops"], 2),
    (["show", "mobilenet"], ["path", "type", "output", "out_c", "out_h", "out_w", "flops"],
     len(MOBILENET.rows)),
    (["show", "mobilenet", "--table", "breakdown"], ["label", "flops", "flops_share"],
     len(MOBILENET.by_category())),
    (["list"], ["name", "input_hw", "flops", "params"], None),
    (["dataflow", "mobilenet"], ["stage", "ops", "input_chw", "output_chw"], None),
    (["dataflow", "mobilenet", "shufflenet"], ["size", "stage"], None),  # aligned by H×W
    (["explain", "mobilenet"], ["quantity", "formula", "substituted", "value"], None),
    (["rules", "mobilenet"], ["rule", "guideline", "checked"], 5),  # G1–G4, E1
    (["rules", "mobilenet", "--table", "findings"], None, None),
    (["check", "--budgets", str(EXAMPLES / "budgets.yaml")], ["name", "input", "metric"], None),
    (["diff", "mobilenet", "mobilenet-0.5"], ["path", "status", "flops_a", "flops_b"], None),
    (["swap", "effnet-baseline", "--block", "effnet"], ["model", "input_hw"], 2),
    (["swap", "effnet-baseline", "--block", "effnet", "--table", "replacements"], None, None),
    (["scale", "mobilenet", "--phi", "1"], ["metric", "base", "scaled", "growth"], None),
    (["scale", "mobilenet", "--phi", "1", "--table", "stages"], ["stage", "layers"], None),
    (["scale", "mobilenet", "--phi", "1", "--table", "factors"], ["factor"], None),
    (["sweep", "mobilenet", "--width", "0.5,1", "--input", "128,224"],
     ["model", "depth", "width", "input_h", "input_w", "flops"], 4),
    (["skipnet", "skipnet-110", "-p", "0.5"], ["label", "flops"], None),
    (["skipnet", "skipnet-110", "-p", "0.5", "--table", "blocks"], ["path", "gate"], None),
]


def _run(args: list[str], fmt: str) -> str:
    res = runner.invoke(app, [*args, "--format", fmt])
    assert res.exit_code in (0, 1), res.output  # check may find something over: still data
    return res.stdout


@pytest.mark.parametrize("args, columns, rows", COMMANDS, ids=[" ".join(c[0][:1] + c[0][2:])
                                                              for c in COMMANDS])
def test_csv_loads_as_it_is(args, columns, rows):
    out = _run(args, "csv")
    assert not out.startswith("#") and "\n\n" not in out  # no comments, one table
    frame = pd.read_csv(io.StringIO(out))
    assert len(frame) > 0 and not any(c.startswith("Unnamed") for c in frame.columns)
    if columns is not None:
        assert list(frame.columns[:len(columns)]) == columns
    if rows is not None:
        assert len(frame) == rows
    first = frame.columns[0]
    assert "total" not in set(frame[first].astype(str))  # no total row to double a sum


@pytest.mark.parametrize("args", sorted({tuple(c[0][:c[0].index("--table")] if "--table" in c[0]
                                               else c[0]) for c in COMMANDS}))
def test_json_loads_as_it_is(args):
    json.loads(_run(list(args), "json"))


def test_skipnet_blocks_csv_has_a_row_per_gated_block():
    args = ["skipnet", "skipnet-110", "-p", "0.5"]
    frame = pd.read_csv(io.StringIO(_run([*args, "--table", "blocks"], "csv")))
    data = json.loads(_run(args, "json"))
    assert len(frame) == data["gated_blocks"] == len(data["blocks"])


def test_per_layer_csv_sums_to_the_json_totals():
    frame = pd.read_csv(io.StringIO(_run(["show", "mobilenet"], "csv")))
    totals = json.loads(_run(["show", "mobilenet"], "json"))["totals"]
    assert len(frame) == len(MOBILENET.rows)
    for metric in ("flops", "params", "mac"):
        assert frame[metric].sum() == totals[metric] == getattr(MOBILENET.totals, metric)


def test_shapes_are_numeric_columns_and_a_vector_has_no_h_w():
    frame = pd.read_csv(io.StringIO(_run(["show", "mobilenet"], "csv")))
    conv1 = frame[frame["path"] == "conv1"].iloc[0]
    assert (conv1["output"], conv1["out_c"], conv1["out_h"], conv1["out_w"]) == \
        ("32×112×112", 32, 224 // 2, 224 // 2)
    fc = frame[frame["path"] == "fc"].iloc[0]
    assert (fc["output"], fc["out_c"]) == ("1000", 1000)
    assert pd.isna(fc["out_h"]) and pd.isna(fc["out_w"])  # a flattened vector: C only
    assert (frame["out_c"] * frame["out_h"].fillna(1) * frame["out_w"].fillna(1)
            == frame["activations"]).all()


def test_show_csv_keeps_its_shapes_with_depth_and_top():
    frame = pd.read_csv(io.StringIO(_run(["show", "mobilenet", "--depth", "1", "--top", "3"],
                                         "csv")))
    assert len(frame) == 3 and frame["out_c"].notna().all()


def test_table_option_leaves_json_and_is_in_help():
    assert _run(["show", "mobilenet", "--table", "breakdown"], "json") == \
        _run(["show", "mobilenet"], "json")
    text = runner.invoke(app, ["show", "--help"], env={"COLUMNS": "200"}).stdout
    assert "--table" in text and "layers|breakdown" in text
    res = runner.invoke(app, ["show", "mobilenet", "--table", "nope"])
    assert res.exit_code == 2


def test_table_option_selects_in_the_terminal_too():
    out = _run(["show", "mobilenet", "--table", "breakdown"], "markdown")
    assert "per layer type" in out and "per layer**" not in out


def test_renderer_one_table_shapes_and_no_footer():
    t = Table("t", [Column("k", "k"), Column("output", "out")],
              [{"k": "a,#b", "output": Shape(3, 4, 5)}, {"k": "v", "output": Shape(7, 1, 1, True)}],
              footer=[{"k": "total"}], notes=["a note"])
    extra = Table("u", [Column("x", "x")], [{"x": 1}])
    assert render([t, extra], "csv") == ('k,output,out_c,out_h,out_w\n"a,#b",3×4×5,3,4,5\n'
                                         'v,7,7,,\n')
    assert render({"t": t, "u": extra}, "csv", table="u") == "x\n1\n"
