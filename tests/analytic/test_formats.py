"""One rendering layer: each format's content for compare, show and check.

Tables for people carry SI suffixes; CSV and JSON carry raw integers; Markdown is a pipe table
ready to paste. Expected numbers are written as the formula that gives them.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap

import pytest
from typer.testing import CliRunner

from costmodel.cli import app

runner = CliRunner()

MOBILENET_FLOPS = 568_740_352        # MobileNet V1 1.0-224 (the paper's 569M)
MOBILENET_05_FLOPS = 149_497_088     # α = 0.5 (the paper's 149M)
MOBILENET_PARAMS = 4_231_976         # torch's count, BN γ/β included
# effnet's first layer: 1×1 conv 3 → 32 on 32×32, no bias
PW_FLOPS = 32 * 32 * 3 * 32
PW_PARAMS = 3 * 32
PW_MAC = 3 * 32 * 32 + 32 * 32 * 32 + PW_PARAMS  # input + output + weights

BUDGETS = textwrap.dedent(f"""
    models:
      - model: mobilenet
        limits: {{flops: 600M, params: {MOBILENET_PARAMS - 1}}}
""")
"""One limit met (FLOPs), one exceeded by exactly 1 (params)."""


@pytest.fixture
def budgets(tmp_path):
    path = tmp_path / "budgets.yaml"
    path.write_text(BUDGETS)
    return str(path)


def invoke(args: list[str], budgets: str):
    args = [budgets if a == "{budgets}" else a for a in args]
    return runner.invoke(app, args)


COMPARE = ["compare", "mobilenet", "mobilenet-0.5"]
SHOW = ["show", "effnet"]
CHECK = ["check", "--budgets", "{budgets}"]


@pytest.mark.parametrize("args, fmt, present, absent", [
    # terminal tables: SI suffixes, never raw integers
    (COMPARE, "table", ["Model comparison", "569M", "149M", "0.263×", "4.23M",
                        "multiply-add", "memory access cost"], [str(MOBILENET_FLOPS)]),
    (SHOW, "table", ["stage1.block.pw", "98.3k", "35.9k", "total", "Conv 1×1",
                     "MobileNet Table 2"], [str(PW_FLOPS)]),
    (CHECK, "table", ["Budget check", "1 of 2 limits exceeded", "569M", "600M", "over",
                      "ok", "params", "4231975"], [str(MOBILENET_PARAMS)]),
    # Markdown: pipe tables, numeric columns right-aligned, conventions in italics
    (COMPARE, "markdown", ["**Model comparison**", "| model | input | classes | FLOPs | rel. |",
                           "|---|---|---:|---:|", "| mobilenet | 224×224 | 1,000 | 569M | 1.00× | 4.23M |",
                           "| mobilenet-0.5 | 224×224 | 1,000 | 149M | 0.263× |",
                           "_FLOPs: 1 FLOP per multiply-add"], []),
    (SHOW, "markdown", ["| layer | type | out C×H×W | FLOPs | params | MAC | activations |",
                        "| stage1.block.pw | conv | 32×32×32 | 98.3k | 96 | 35.9k |",
                        "| Conv 1×1 |", "| **total** |"], []),
    (CHECK, "markdown", ["**Budget check: ❌ 1 of 2 limits exceeded**",
                         "| model | input | metric | value | limit | rule | used | over by | status |",
                         "| mobilenet | 224×224 | flops | 569M | 600M | 600M | 94.79% | — | ok |",
                         "| mobilenet | 224×224 | params | **4.23M** ⚠ | 4.23M | 4231975 | 100.00% "
                         "| **1** ⚠ | **over** ⚠ |"], []),
])
def test_human_formats(budgets, args, fmt, present, absent):
    res = invoke([*args, "--format", fmt], budgets)
    assert res.exit_code in (0, 1), res.output
    for text in present:
        assert text in res.stdout, text
    for text in absent:
        assert text not in res.stdout, text


def read_csv(text: str) -> list[dict[str, str]]:
    """A CSV rendering's rows (one table, a header, no comment lines)."""
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("args, key, row, expected", [
    (COMPARE, "model", "mobilenet", {"flops": MOBILENET_FLOPS, "params": MOBILENET_PARAMS}),
    (COMPARE, "model", "mobilenet-0.5", {"flops": MOBILENET_05_FLOPS}),
    (SHOW, "path", "stage1.block.pw", {"flops": PW_FLOPS, "params": PW_PARAMS, "mac": PW_MAC}),
    (CHECK, "metric", "flops", {"value": MOBILENET_FLOPS, "limit": 600_000_000, "excess": 0}),
    (CHECK, "metric", "params", {"value": MOBILENET_PARAMS, "limit": MOBILENET_PARAMS - 1,
                                 "excess": 1}),
])
def test_csv_has_raw_integers(budgets, args, key, row, expected):
    res = invoke([*args, "--format", "csv"], budgets)
    assert not res.stdout.startswith("#")  # no comment lines: it loads as it is
    rows = {r[key]: r for r in read_csv(res.stdout)}
    for column, value in expected.items():
        assert rows[row][column] == str(value)


def test_json_compare(budgets):
    data = json.loads(invoke([*COMPARE, "-f", "json"], budgets).stdout)
    assert [(d["model"], d["flops"], d["params"]) for d in data][0] == \
        ("mobilenet", MOBILENET_FLOPS, MOBILENET_PARAMS)
    assert data[1]["flops_rel"] == MOBILENET_05_FLOPS / MOBILENET_FLOPS
    assert data[0]["conventions"]["flops"] == "multiply-adds"


def test_json_show(budgets):
    data = json.loads(invoke([*SHOW, "-f", "json"], budgets).stdout)
    first = data["layers"][0]
    assert (first["path"], first["flops"], first["params"], first["mac"]) == \
        ("stage1.block.pw", PW_FLOPS, PW_PARAMS, PW_MAC)
    assert data["totals"]["flops"] == sum(layer["flops"] for layer in data["layers"])


def test_json_check(budgets):
    res = invoke([*CHECK, "-f", "json"], budgets)
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert (data["ok"], data["checked"], data["over"]) == (False, 2, 1)
    flops, params = data["results"]
    assert flops == {"entry": 0, "name": "mobilenet", "model": "mobilenet", "input": [224, 224],
                     "metric": "flops", "value": MOBILENET_FLOPS, "limit": 600_000_000,
                     "rule": "600M", "baseline": None, "baseline_value": None,
                     "used": MOBILENET_FLOPS / 600_000_000, "excess": 0, "status": "ok"}
    assert (params["value"], params["limit"], params["excess"], params["status"]) == \
        (MOBILENET_PARAMS, MOBILENET_PARAMS - 1, 1, "over")
    assert data["conventions"]["mac"].startswith("memory access cost")


# --- the counting conventions: one structure, rendered by each format ------------------------

def test_conventions_are_one_structure_that_each_format_renders():
    from costmodel.options import Options

    c = Options("fvcore", 2, False, "float16").conventions()
    assert c.record() == {"flops": "2 per multiply-add", "flops_per_madd": 2, "scope": "fvcore",
                          "mac": "memory access cost (elements read + written)",
                          "dtype": "float16", "bn_params": False}
    assert c.note() == ("FLOPs: 2 FLOPs per multiply-add (PyTorch's convention), counting "
                      "fvcore's default ops (conv, linear, batch norm, adaptive avg pool, "
                      "upsample); params excl. BN affine; MAC: memory access cost (elements "
                      "read + written), float16")
    bullets = c.bullets()
    assert [b.split("**")[1] for b in bullets[:5]] == [
        "FLOPs are multiply-adds", "Scope", "MAC is memory access cost", "Params",
        "Peak activation"]
    assert "**float16** (2 bytes per element)" in bullets[2]
    assert "excluded (`--no-bn-params`)" in bullets[3]

    args = ["show", "mobilenet", "-i", "32", "--scope", "fvcore", "--flops-per-madd", "2",
            "--no-bn-params", "--dtype", "float16", "-f"]
    assert json.loads(runner.invoke(app, args + ["json"]).stdout)["conventions"] == c.record()
    assert c.note() not in runner.invoke(app, args + ["csv"]).stdout  # data only: JSON has them
    assert f"_{c.note()}_\n" in runner.invoke(app, args + ["markdown"]).stdout


def test_the_report_leaves_out_the_conventions_note_by_what_it_is():
    from costmodel.options import Options
    from costmodel.render import Table
    from costmodel.report.tables import without_conventions

    c = Options().conventions()
    table = Table("t", [], [], notes=[c, "rel. = relative to x", c.note()])
    assert without_conventions(table).notes == ["rel. = relative to x", c.note()]  # text stays
