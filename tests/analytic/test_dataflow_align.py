"""Side-by-side data flow aligned by the size of each stage's output; the ≥4 mark without
colour; shapes labelled C×H×W."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import run_layers
from typer.testing import CliRunner

from costmodel.analysis.dataflow import FLAG_FACTOR, align, dataflow, dataflow_table
from costmodel.analysis.rules import check_e1
from costmodel.api import compare, evaluate_model
from costmodel.cli import app
from costmodel.views import layers_table

HEADLINE = ["mobilenet", "shufflenet_v2_x1_0", "mobilenet_v2"]


def _hw(cell: str) -> str:
    """'conv 3×3: 64×56×56' or '64×56×56' → '56×56'; a vector → 'head'."""
    dims = cell.rsplit(": ", 1)[-1].split("×")
    return "head" if len(dims) == 1 else f"{dims[1]}×{dims[2]}"


def _cells(table, n):
    return [[row.get(f"m{j}_chw") for j in range(n)] for row in table.rows]


@pytest.mark.parametrize("models", [HEADLINE, ["effnet-baseline", "effnet", "effnet-mobilenet"],
                                    ["resnet50", "vgg16", "squeezenet1-1", "ghostnet"]])
def test_stage_lines_share_their_size_and_heads_come_last(models):
    table = dataflow_table(compare(models))
    for row, cells in zip(table.rows, _cells(table, len(models))):
        sizes = {_hw(c) for c in cells if c is not None}
        assert sizes == {row["size"]}, row  # every shape on the line is at the line's size
    assert table.rows[-1]["size"] == "head"
    assert all(c is not None for c in _cells(table, len(models))[-1])  # one line of heads
    assert [r["size"] for r in table.rows].count("head") == 1


def test_headline_lines():
    table = dataflow_table(compare(HEADLINE))
    got = [(r["size"], r.get("m0_chw"), r.get("m1_chw"), r.get("m2_chw")) for r in table.rows]
    assert got[:4] == [
        ("224×224", "3×224×224", "3×224×224", "3×224×224"),
        ("112×112", "64×112×112", "24×112×112", "32×112×112"),
        ("112×112", None, None, "16×112×112"),  # MobileNet V2's first bottleneck stays at 112
        ("56×56", "128×56×56", "24×56×56", "24×56×56"),
    ]
    assert got[-1] == ("head", "1000", "1000", "1000")  # not beside 7×7 maps
    # the 7×7 lines: one of each model's, then ShuffleNet's conv5 beside V2's stage7
    sevens = [g for g in got if g[0] == "7×7"]
    assert sevens[0][1:] == ("1024×7×7", "464×7×7", "160×7×7")
    assert sevens[1][1:] == (None, "1024×7×7", "320×7×7")


@pytest.mark.parametrize("level", ["stage", "block", "layer"])
def test_each_model_keeps_its_rows_in_order(level):
    # ESPNet grows its map again (deconvolutions); ESPNet-C does not
    models = ["espnet", "espnet-c", "mobilenet"]
    results = compare(models, input=(64, 128))
    per_model = [dataflow(r, level=level) for r in results]
    lines = align(per_model)
    for m, rows in enumerate(per_model):
        assert [cells[m] for _, _, cells in lines if cells[m] is not None] == rows
    assert all(any(c is not None for c in cells) for _, _, cells in lines)


def test_block_lines_share_their_stage_size():
    r = run_layers([{"type": "conv", "out": 8, "kernel": 3, "stride": 2},
                    {"type": "conv", "out": 16, "kernel": 3}], input=(16, 16))
    s = run_layers([{"type": "conv", "out": 4, "kernel": 3},
                    {"type": "max_pool", "kernel": 2}], input=(16, 16))
    table = dataflow_table([r, s], level="layer")
    assert [(x["size"], x["stage"], x.get("m0_chw"), x.get("m1_chw")) for x in table.rows] == [
        ("16×16", "input", "3×16×16", "3×16×16"),
        # s's first stage (no stride) ends at 16×16, r's first at 8×8
        ("16×16", "0 (1)", None, "conv 3×3: 4×16×16"),
        ("8×8", "0…1 (1) / 1 (1)", "conv 3×3/2: 8×8×8", "max_pool 2×2: 4×8×8"),
        ("8×8", "0…1 (2)", "conv 3×3: 16×8×8", None),
    ]


def test_mark_is_a_character_when_piped():
    runner = CliRunner()  # not a terminal: no colour reaches the output
    out = runner.invoke(app, ["dataflow", "effnet-baseline", "effnet", "-l", "block"]).stdout
    assert out.count("4.00× ⚠") == 3  # the three pools, 2·2 = 4
    one = runner.invoke(app, ["dataflow", "effnet-baseline", "-l", "block"]).stdout
    assert one.count("⚠") == 3 + 1  # and the note that explains the mark


def test_csv_flags_and_json_flags_agree():
    runner = CliRunner()
    text = runner.invoke(app, ["dataflow", "effnet-baseline", "-f", "csv"]).stdout
    rows = list(csv.DictReader(io.StringIO("".join(
        line for line in text.splitlines(keepends=True) if not line.startswith("#")))))
    assert [r["flagged"] for r in rows] == \
        [str(r["factor"] != "" and float(r["factor"]) >= FLAG_FACTOR and r["stage"] != "head")
         for r in rows]
    assert [r["output_chw"] for r in rows][:2] == ["3×32×32", "64×16×16"]
    side = runner.invoke(app, ["dataflow", "effnet-baseline", "effnet", "-f", "csv"]).stdout
    header = next(line for line in side.splitlines() if not line.startswith("#"))
    assert header.split(",") == ["size", "stage", "m0_chw", "m0_factor", "m0_flagged",
                                 "m1_chw", "m1_factor", "m1_flagged"]
    data = json.loads(runner.invoke(app, ["dataflow", "effnet-baseline", "-f", "json"]).stdout)
    assert [r["flagged"] for r in data[0]["rows"]] == [r["flagged"] == "True" for r in rows]
    assert data[0]["rows"][1]["output_chw"] == "64×16×16"


def test_every_shape_header_says_its_order():
    single = dataflow_table([evaluate_model("effnet")])
    side = dataflow_table(compare(["effnet", "effnet-baseline"]))
    show = layers_table(evaluate_model("effnet"))
    headers = [c.header for t in (single, side, show) for c in t.columns
               if c.key.endswith("chw") or c.key == "output"]
    assert len(headers) == 2 + 2 + 1
    assert all(h.endswith("C×H×W") for h in headers), headers


def test_rules_message_labels_its_shapes():
    findings = check_e1(evaluate_model("effnet-baseline"))
    assert findings and all("C×H×W" in f.reason for f in findings)
    assert "64×32×32 → 64×16×16 C×H×W" in findings[0].reason
