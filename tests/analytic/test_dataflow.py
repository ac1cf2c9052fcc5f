"""Data flow (EffNet Table 1): shapes per stage, compression factors, the ≥4 marks."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from conftest import run_layers
from typer.testing import CliRunner

from costmodel.analysis.dataflow import FLAG_FACTOR, dataflow, dataflow_table, flagged, hwc
from costmodel.api import compare, evaluate_model
from costmodel.cli import app

EFFNET_FAMILY = ["effnet-baseline", "effnet-mobilenet", "effnet-shufflenet", "effnet"]


def shapes(rows):
    return [(r.stage, hwc(r.output), r.factor) for r in rows]


@pytest.mark.parametrize("model", EFFNET_FAMILY)
def test_effnet_family_stages(model):
    """Every model of EffNet's comparison keeps the baseline's stage outputs: 32×32×3 →
    16×16×64 → 8×8×128 → 4×4×256 → 10 classes."""
    rows = dataflow(evaluate_model(model))
    assert shapes(rows) == [
        ("input", "32×32×3", None),
        ("stage1", "16×16×64", Fraction(32 * 32 * 3, 16 * 16 * 64)),
        ("stage2", "8×8×128", Fraction(16 * 16 * 64, 8 * 8 * 128)),
        ("stage3", "4×4×256", Fraction(8 * 8 * 128, 4 * 4 * 256)),
        ("head", "10", Fraction(4 * 4 * 256, 10)),
    ]
    assert flagged(rows) == []  # the head's 409.6 is the classifier's job, not flagged


def test_baseline_per_block_flags_each_max_pool():
    """A 2×2 max pool compresses by exactly 4: EffNet's complaint about the baseline."""
    rows = dataflow(evaluate_model("effnet-baseline"), per_block=True)
    marked = [(r.path, r.factor) for r in flagged(rows)]
    assert marked == [("stage1.pool", Fraction(32 * 32 * 64, 16 * 16 * 64)),
                      ("stage2.pool", Fraction(16 * 16 * 128, 8 * 8 * 128)),
                      ("stage3.pool", Fraction(8 * 8 * 256, 4 * 4 * 256))]
    assert all(f == FLAG_FACTOR for _, f in marked)
    # batch norm and activations do not change the data flow and are left out
    assert [r.path for r in rows if r.stage == "stage1"] == ["stage1.conv", "stage1.pool"]


@pytest.mark.parametrize("level", ["stage", "block", "layer"])
def test_effnet_never_compresses_by_four(level):
    """Separable pooling halves one axis at a time: no step of EffNet compresses by 4."""
    rows = dataflow(evaluate_model("effnet"), level=level)
    assert flagged(rows) == []
    assert max(r.factor for r in rows if r.factor is not None and not r.head) == 2


def test_effnet_layer_level_halves_one_axis_at_a_time():
    rows = [r for r in dataflow(evaluate_model("effnet"), level="layer") if r.stage == "stage2"]
    assert [(r.path, hwc(r.input), hwc(r.output), r.factor) for r in rows] == [
        ("stage2.block.pool", "16×16×64", "8×16×64", Fraction(2)),       # 2×1 max pool
        ("stage2.block.conv", "8×16×64", "8×8×128", Fraction(1)),        # 2×1 conv, stride (1,2)
    ]


def test_shufflenet_unit_squeezes_by_four_in_its_strided_depthwise_conv():
    """ShuffleNet's stride-2 unit: 1×1 gconv to out/4 = 32 channels, then the 3×3/2 dw conv
    compresses by 4 (EffNet Table 1 marks it); the concat with the pooled shortcut gives the
    block's overall 2."""
    rows = [r for r in dataflow(evaluate_model("effnet-shufflenet"), level="layer")
            if r.stage == "stage2"]
    got = {r.path.split("stage2.block.res.")[1]: (hwc(r.output), r.factor, r.flagged)
           for r in rows}
    assert got == {
        "main.gconv1": ("16×16×32", Fraction(16 * 16 * 64, 16 * 16 * 32), False),
        "main.dw": ("8×8×32", Fraction(16 * 16 * 32, 8 * 8 * 32), True),
        "main.gconv2": ("8×8×64", Fraction(8 * 8 * 32, 8 * 8 * 64), False),
        "shortcut.pool": ("8×8×64", Fraction(16 * 16 * 64, 8 * 8 * 64), True),
        "concat": ("8×8×128", Fraction(16 * 16 * 64, 8 * 8 * 128), False),
    }


def test_stages_fall_at_downsampling_without_stage_nodes():
    """MobileNet's spec has no stages: a new one starts at each strided layer."""
    rows = dataflow(evaluate_model("mobilenet"))
    assert [(r.stage, hwc(r.output)) for r in rows] == [
        ("input", "224×224×3"), ("conv1…dws1", "112×112×64"), ("dws2…dws3", "56×56×128"),
        ("dws4…dws5", "28×28×256"), ("dws6…dws7_11", "14×14×512"),
        ("dws12…dws13", "7×7×1024"), ("head", "1000")]
    layer = dataflow(evaluate_model("mobilenet"), level="layer")
    assert [r.path for r in flagged(layer)] == ["dws2.dw", "dws4.dw", "dws6.dw", "dws12.dw"]
    assert {r.factor for r in flagged(layer)} == {Fraction(4)}


def test_layers_between_stages_are_cut_at_downsampling():
    """ShuffleNet: conv1 (224→112) and the max pool (112→56) before stage 2 are two stages."""
    rows = dataflow(evaluate_model("shufflenet"))
    assert [r.stage for r in rows] == ["input", "conv1…conv1_act", "maxpool", "stage2",
                                       "stage3", "stage4", "head"]
    assert [r.stage for r in flagged(rows)] == ["maxpool"]  # 112·112·24 / 56·56·24 = 4


def test_tiny_spec_without_head():
    r = run_layers([{"type": "conv", "out": 8, "kernel": 3},
                    {"type": "max_pool", "kernel": 4},
                    {"type": "conv", "out": 16, "kernel": 1}], input=(16, 16))
    rows = dataflow(r)
    assert [(r.stage, hwc(r.output), r.factor) for r in rows] == [
        ("input", "16×16×3", None),
        ("0", "16×16×8", Fraction(3, 8)),
        ("1…2", "4×4×16", Fraction(16 * 16 * 8, 4 * 4 * 16)),
    ]
    assert [r.stage for r in flagged(rows)] == ["1…2"]


def test_side_by_side_table_aligns_stages_and_marks_cells():
    results = compare(EFFNET_FAMILY)
    table = dataflow_table(results, per_block=True)
    assert [c.header for c in table.columns][2::2] == [f"{m} out C×H×W" for m in EFFNET_FAMILY]
    rows = {r["stage"]: r for r in table.rows}
    # stage 2's first block: the baseline's conv, MobileNet's dwsep, the ShuffleNet unit, EffNet
    first = rows["stage2 (1)"]
    assert first["size"] == "8×8"  # each stage 2 ends at 32/4 = 8
    assert (first["m0_chw"], first["m1_chw"], first["m2_chw"], first["m3_chw"]) == (
        "conv 3×3: 128×16×16", "dwsep: 128×16×16", "shufflenet_unit/2: 128×8×8",
        "effnet_block: 128×8×8")
    # the pools of baseline and MobileNet are marked; ShuffleNet and EffNet have none there
    second = table.rows.index(rows["stage2 (2)"])
    assert {k for i, k in table.marks if i == second} == {"m0_factor", "m1_factor"}
    assert "m2_chw" not in rows["stage2 (2)"] and "m3_chw" not in rows["stage2 (2)"]
    # every mark is a factor ≥ 4
    for i, key in table.marks:
        assert table.rows[i][key] >= FLAG_FACTOR


def test_single_model_table_marks_flagged_rows():
    result = evaluate_model("effnet-mobilenet")
    table = dataflow_table([result], level="layer")
    rows = dataflow(result, level="layer")
    assert table.marks == {(i, "factor") for i, r in enumerate(rows) if r.flagged}
    assert len(table.marks) == 3


def test_cli_json_and_markdown():
    runner = CliRunner()
    res = runner.invoke(app, ["dataflow", "effnet-baseline", "effnet", "--per-block", "-f",
                              "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [d["model"] for d in data] == ["effnet-baseline", "effnet"]
    assert [r["path"] for r in data[0]["rows"] if r["flagged"]] == \
        ["stage1.pool", "stage2.pool", "stage3.pool"]
    assert data[0]["rows"][2]["elements_in"] == 32 * 32 * 64
    md = runner.invoke(app, ["dataflow", "effnet-baseline", "--per-block", "-f", "markdown"])
    assert "| stage1 | stage1.pool | max_pool 2×2 | 64×32×32 | 64×16×16 | 16,384 | **4.00×** ⚠ |" \
        in md.stdout
    bad = runner.invoke(app, ["dataflow", "effnet", "--level", "nonsense"])
    assert bad.exit_code == 2


def test_stages_inside_a_sequential_are_found():
    r = run_layers([{"type": "sequential", "name": "body", "layers": [
        {"type": "stage", "name": "s1", "layers": [{"type": "conv", "out": 8, "kernel": 3,
                                                   "stride": 2}]},
        {"type": "stage", "name": "s2", "layers": [{"type": "conv", "out": 16, "kernel": 3,
                                                   "stride": 2}]}]}], input=(16, 16))
    assert [(r.stage, hwc(r.output)) for r in dataflow(r)] == [
        ("input", "16×16×3"), ("s1", "8×8×8"), ("s2", "4×4×16")]
