"""Batch size: FLOPs and activations ×N, params unchanged, MAC with the weights read once and
the feature maps N times (MAC_N = N·(inputs + outputs) + weights); batch 1 is what it was."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
from typer.testing import CliRunner

from conftest import run_layers
from test_formulas import CASES

from costmodel.budgets import BudgetError, load_budgets
from costmodel.cli import app
from costmodel.errors import CostModelError
from costmodel.options import MAX_BATCH, Options

runner = CliRunner()

H = 10  # the hidden size of the recurrent rows of CASES
RECURRENT = {
    # an LSTM step also reads h_{t-1}, c_{t-1} and writes c_t: 3h more than input + output
    "lstm-step": 3 * H,
    # the step's states (4h: h_{t-1}, c_{t-1} read; h_t, c_t written), h_t read by the
    # projection, its logit written and read by the sigmoid
    "rnn-gate": 4 * H + H + 1 + 1,
}
"""Rows of CASES whose feature maps are more than their input and output."""


def _row(layer: dict, shape: tuple[int, ...], batch: int):
    layers = [layer] if len(shape) == 3 else [{"type": "flatten"}, layer]
    c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
    return run_layers(layers, input=(h, w), in_channels=c, options=Options(batch=batch)).rows[-1]


@pytest.mark.parametrize("layer,inp,out,flops,fv_flops,params,mac", CASES)
def test_every_primitive_splits_its_mac_into_feature_maps_and_weights(
        request, layer, inp, out, flops, fv_flops, params, mac):
    """mac − weight_mac is the elements of the input plus the output (0 for a view, which
    moves nothing); batch 3 multiplies exactly that part."""
    case = request.node.callspec.id
    one, three = _row(layer, inp, 1), _row(layer, inp, 3)
    assert one.mac == mac
    features = 0 if mac == 0 else math.prod(inp) + math.prod(out) + RECURRENT.get(case, 0)
    weights = mac - features
    assert 0 <= weights <= mac
    assert three.mac == 3 * features + weights
    assert (three.flops, three.params) == (3 * flops, params)
    assert three.activations == 3 * math.prod(out) == 3 * one.activations


NET = [{"type": "conv", "out": 8, "kernel": 3}, {"type": "bn"}, {"type": "relu"},
       {"type": "global_pool"}, {"type": "flatten"}, {"type": "linear", "out": 10}]
"""A small conv net on 3×6×6: conv 3→8 (3×3, same), BN, ReLU, global pool, linear 8→10."""
NET_WEIGHTS = 3 * 3 * 3 * 8 + (2 * 8 + 2 * 8) + (8 * 10 + 10)
"""conv weights; BN γ/β and running statistics; linear weights and bias."""
NET_FEATURES = ((3 * 36 + 8 * 36) + 2 * 8 * 36 + 2 * 8 * 36 + (8 * 36 + 8) + 0 + (8 + 10))
"""Each layer's input + output: conv, BN, ReLU, global pool, flatten (a view), linear."""


def test_batch_4_of_a_small_conv_net():
    one = run_layers(NET, input=(6, 6), in_channels=3)
    four = run_layers(NET, input=(6, 6), in_channels=3, options=Options(batch=4))
    assert one.totals.mac == NET_FEATURES + NET_WEIGHTS
    assert four.totals.mac == 4 * NET_FEATURES + NET_WEIGHTS
    assert four.totals.flops == 4 * one.totals.flops == 4 * (3 * 3 * 3 * 8 * 36 + 8 * 10)
    assert four.totals.params == one.totals.params
    assert four.totals.peak_activation == 4 * 8 * 36
    assert [r.activations for r in four.rows] == [4 * r.activations for r in one.rows]
    assert [r.flops for r in four.rows] == [4 * r.flops for r in one.rows]


def test_batch_repeats_replay_the_batched_totals():
    """A repeat's copies are replayed, not walked: they add the batched totals too."""
    block = {"type": "sequential", "layers": [{"type": "conv", "out": 4, "kernel": 3},
                                              {"type": "relu"}]}
    net = [block, block, block]
    one = run_layers(net, input=(5, 5), in_channels=4)
    two = run_layers(net, input=(5, 5), in_channels=4, options=Options(batch=2))
    weights = 3 * (3 * 3 * 4 * 4)
    assert two.totals.mac == 2 * (one.totals.mac - weights) + weights
    assert two.totals.flops == 2 * one.totals.flops


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "2", MAX_BATCH + 1])
def test_options_refuse_a_batch_that_is_not_a_whole_number_in_range(bad):
    with pytest.raises(CostModelError) as e:
        Options(batch=bad)
    assert e.value.field == "batch"


def test_conventions_state_the_batch_only_above_1():
    one, eight = Options().conventions(), Options(batch=8).conventions()
    assert "batch" not in one.record() and "batch" not in one.note()
    assert one.note() == Options(batch=1).describe()
    assert eight.record()["batch"] == 8
    assert eight.note() == one.note() + "; batch 8: FLOPs, activations ×8, weights read once"
    assert any("Batch size 8" in b for b in eight.bullets())


@pytest.mark.parametrize("value", ["0", "-2", "true", "1.5", "two", str(MAX_BATCH + 1)])
@pytest.mark.parametrize("command", ["compare", "show"])
def test_cli_refuses_a_bad_batch_with_exit_2(command, value):
    r = runner.invoke(app, [command, "mobilenet", "--input", "32", "--batch", value])
    assert r.exit_code == 2, r.output
    assert "--batch" in r.output


def test_cli_batch_on_compare_and_show():
    args = ["mobilenet", "--input", "32", "--format", "json"]
    one = json.loads(runner.invoke(app, ["compare", *args]).output)[0]
    two = json.loads(runner.invoke(app, ["compare", *args, "--batch", "2"]).output)[0]
    assert two["flops"] == 2 * one["flops"] and two["params"] == one["params"]
    assert one["mac"] < two["mac"] < 2 * one["mac"]  # the weights are read once
    assert two["conventions"]["batch"] == 2 and "batch" not in one["conventions"]
    shown = runner.invoke(app, ["show", *args, "--batch", "2"])
    assert shown.exit_code == 0, shown.output


def _budgets(tmp_path, options: str):
    file = tmp_path / "budgets.yaml"
    file.write_text(textwrap.dedent(f"""\
        options: {options}
        models:
          - model: mobilenet
            input: 32
            limits: {{flops: 1G}}
        """))
    return file


def test_budgets_options_batch(tmp_path):
    file = _budgets(tmp_path, "{batch: 2}")
    assert load_budgets(file).options == Options(batch=2)
    r = runner.invoke(app, ["check", "--budgets", str(file), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["conventions"]["batch"] == 2


@pytest.mark.parametrize("bad", ["true", "0", "2.0", "'2'", str(MAX_BATCH + 1)])
def test_budgets_refuse_a_bad_batch(tmp_path, bad):
    with pytest.raises(BudgetError) as e:
        load_budgets(_budgets(tmp_path, f"{{batch: {bad}}}"))
    assert "batch" in str(e.value)
    r = runner.invoke(app, ["check", "--budgets", str(tmp_path / "budgets.yaml")])
    assert r.exit_code == 2, r.output
