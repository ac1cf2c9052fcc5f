"""swap: EffNet's method (replace every conv stage of a baseline with a block) as a tool."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from costmodel.analysis.swap import find_conv_stages, swap_blocks
from costmodel.api import evaluate_model, load
from costmodel.cli import app
from costmodel.engine import evaluate
from costmodel.spec.loader import load_spec

runner = CliRunner()


def row_key(r):
    return (r.path, r.type, r.category, r.stage, r.inputs, r.out, r.flops, r.params, r.mac)


@pytest.mark.parametrize("block,zoo", [("effnet", "effnet"), ("mobilenet", "effnet-mobilenet"),
                                       ("shufflenet", "effnet-shufflenet")])
def test_swapping_the_baseline_gives_the_zoo_models(block, zoo, tmp_path):
    """The zoo's EffNet comparison set is exactly `swap effnet-baseline --block …`: same
    totals, same rows (paths, shapes, FLOPs, params, MAC), also after a round trip through
    the written YAML."""
    swapped = swap_blocks(load("effnet-baseline"), block)
    expected = evaluate_model(zoo)
    got = evaluate(swapped.spec)
    assert got.totals == expected.totals
    assert [row_key(r) for r in got.rows] == [row_key(r) for r in expected.rows]
    out = tmp_path / "swapped.yaml"
    out.write_text(swapped.yaml)
    reloaded = evaluate(load_spec(out))
    assert [row_key(r) for r in reloaded.rows] == [row_key(r) for r in expected.rows]


@pytest.mark.parametrize("block,first_kept", [("effnet", False), ("mobilenet", True),
                                              ("shufflenet", True)])
def test_first_conv_stage_default(block, first_kept):
    """MobileNet and ShuffleNet keep the first layer; EffNet replaces it (EffNet §3)."""
    swapped = swap_blocks(load("effnet-baseline"), block)
    assert [r.replaced for r in swapped.replacements] == [not first_kept, True, True]
    assert [r.where for r in swapped.replacements] == ["stage1", "stage2", "stage3"]


def test_replacing_the_first_stage_with_mobilenet():
    """dwsep on the 3-channel image: dw 3×3 on 32×32×3, then 1×1 to 64, then the 2×2 pool."""
    base = evaluate_model("effnet-baseline")
    swapped = evaluate(swap_blocks(load("effnet-baseline"), "mobilenet", replace_first=True).spec)
    stage1 = sum(r.flops for r in swapped.rows if r.stage == "stage1")
    assert stage1 == 3 * 3 * 3 * 32 * 32 + 3 * 64 * 32 * 32
    old_stage1 = sum(r.flops for r in base.rows if r.stage == "stage1")
    assert old_stage1 == 3 * 3 * 3 * 64 * 32 * 32
    assert swapped.totals.flops == evaluate_model("effnet-mobilenet").totals.flops \
        - old_stage1 + stage1


def test_effnet_replaces_the_first_layer_of_a_spec_without_stages():
    """MobileNet's conv1 (3×3/2, 3→32 at 224) becomes an effnet_block: 1×1 to 16 channels,
    dw 1×3 at 224×224, 2×1 pool, dw 3×1 at 112×224, 2×1 conv with stride (1, 2) to 32."""
    base = evaluate_model("mobilenet")
    swapped = swap_blocks(load("mobilenet"), "effnet")
    new = evaluate(swapped.spec)
    block = (224 * 224 * 3 * 16          # 1×1 bottleneck, 32 // 2 channels
             + 3 * 224 * 224 * 16        # dw 1×3
             + 3 * 112 * 224 * 16        # dw 3×1 after the 2×1 pool
             + 2 * 16 * 32 * 112 * 112)  # 2×1 conv, stride (1, 2)
    conv1 = 3 * 3 * 3 * 32 * 112 * 112
    assert new.totals.flops == base.totals.flops - conv1 + block
    assert new.output == base.output
    assert [r.where for r in swapped.replacements if r.replaced] == ["conv1"]


def test_conv_stage_detection():
    layers = load("effnet-baseline").layers[0].layers
    (stage,) = find_conv_stages(list(layers), "stage1")
    assert (stage.start, stage.length, stage.kernel, stage.downsampling) == (0, 4, 3, (2, 2))
    # depthwise-separable blocks, 1×1 convs and grouped convs are not standard k×k convs
    assert find_conv_stages(list(load("mobilenet").layers)) [0].conv.name == "conv1"
    assert len(find_conv_stages(list(load("mobilenet").layers))) == 1


@pytest.mark.parametrize("model,block,options,message", [
    ("shufflenet", "effnet", {}, "layer 'conv1': an effnet_block halves H and W, but this conv "
                                 "stage downsamples by 4"),
    ("effnet", "mobilenet", {}, "effnet has no standard k×k conv stage to replace"),
    ("mobilenet", "mobilenet", {}, "the only one is the first, which is kept"),
    ("effnet-baseline", "shufflenet", {"replace_first": True},
     "the swapped spec effnet-baseline-shufflenet: layer 'stage1.block.res.main.gconv1': "
     "field 'groups': 3 input channels are not divisible by groups=4"),
])
def test_swaps_that_cannot_work_fail_clearly(model, block, options, message):
    from costmodel.errors import CostModelError
    with pytest.raises(CostModelError) as e:
        swap_blocks(load(model), block, **options)
    assert message in str(e.value)


def test_cli_writes_the_spec_and_compares(tmp_path):
    out = tmp_path / "eff.yaml"
    res = runner.invoke(app, ["swap", "effnet-baseline", "--block", "effnet", "-o", str(out),
                              "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [c["model"] for c in data["compare"]] == ["effnet-baseline", "effnet-baseline-effnet"]
    assert data["compare"][1]["flops"] == evaluate_model("effnet").totals.flops
    assert data["compare"][0]["flops"] == evaluate_model("effnet-baseline").totals.flops
    stage1 = data["replacements"][0]
    assert stage1["flops_before"] == 3 * 3 * 3 * 64 * 32 * 32
    assert stage1["flops_after"] == sum(r.flops for r in evaluate_model("effnet").rows
                                        if r.stage == "stage1")
    assert evaluate(load_spec(out)).totals == evaluate_model("effnet").totals
    # '-' prints the spec on stdout (the comparison goes to stderr)
    res = runner.invoke(app, ["swap", "effnet-baseline", "-b", "shufflenet", "-o", "-"])
    assert res.exit_code == 0
    assert res.stdout.startswith("name: effnet-baseline-shufflenet\n")


def test_cli_failure_writes_nothing(tmp_path):
    out = tmp_path / "bad.yaml"
    res = runner.invoke(app, ["swap", "effnet-baseline", "-b", "shufflenet", "--replace-first",
                              "-o", str(out)])
    assert res.exit_code == 2
    assert "error:" in res.stderr and "gconv1" in res.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def _outside(rows, paths):
    return [row_key(r)[:1] + row_key(r)[4:] for r in rows
            if not any(r.path == p or r.path.startswith(p + ".") for p in paths)]


@pytest.mark.parametrize("model,block", [
    ("effnet-baseline", "effnet"), ("effnet-baseline", "mobilenet"),
    ("effnet-baseline", "shufflenet"), ("mobilenet", "effnet"),
    ("mobilenet-v2", "effnet"), ("mobilenet-v3-large", "effnet"), ("efficientnet-b0", "effnet"),
    ("fbnet-a", "effnet"),
])
def test_swap_changes_only_the_replaced_stages(model, block, tmp_path):
    """Everything outside the replaced conv stages keeps its rows (path, shapes, FLOPs,
    params, MAC); the written YAML (settings objects included) reads back to the same model."""
    swapped = swap_blocks(load(model), block)
    base, new = evaluate(load(model)), evaluate(swapped.spec)
    before = [p for r in swapped.replacements for p in r.before_paths]
    after = [p for r in swapped.replacements for p in r.after_paths]
    assert _outside(base.rows, before) == _outside(new.rows, after)
    out = tmp_path / "s.yaml"
    out.write_text(swapped.yaml)
    assert [row_key(r) for r in evaluate(load_spec(out)).rows] == [row_key(r) for r in new.rows]
