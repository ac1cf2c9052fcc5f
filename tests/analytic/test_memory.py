"""Peak memory by tensor lifetime (costmodel.analysis.memory): small networks whose peak is
worked out by hand, in elements of a 3×8×8 or 4×8×8 input (64 pixels a channel).

The replay follows the torch builder's module: the network's input is held by the caller
throughout; a Seq's input until the Seq returns; a layer's input until the layer has returned
(so a layer's input and output are alive together); a branching node's input and every
branch's output until the merge has allocated its output. tests/crosscheck/test_memory_measured.py
checks the same figures against torch's allocator."""

from __future__ import annotations

import typing

import json

import pytest
from conftest import run_layers
from typer.testing import CliRunner

from costmodel.analysis.memory import NODE_WALKS, peak_memory
from costmodel.api import evaluate_model
from costmodel.cli import app
from costmodel.engine import Node
from costmodel.errors import CostModelError
from costmodel.options import Options
from costmodel.spec.zoo import zoo

P = 64  # pixels of an 8×8 map
CHAIN = [{"type": "conv", "out": 4, "kernel": 3}, {"type": "relu"},
         {"type": "conv", "out": 1, "kernel": 3}]


def test_chain_holds_input_and_output_of_each_layer():
    """conv(3→4) → relu → conv(4→1): at the relu the input image, the conv's output and the
    relu's output are alive: 3·64 + 4·64 + 4·64 = 704 (the largest map is 4·64 = 256)."""
    m = peak_memory(run_layers(CHAIN))
    assert m.input == 3 * P
    assert m.timeline == (("input", 3 * P), ("0", 3 * P + 4 * P), ("1", 3 * P + 4 * P + 4 * P),
                          ("2", 3 * P + 4 * P + 1 * P))  # the conv's output freed after the relu
    assert (m.peak, m.peak_layer) == (3 * P + 4 * P + 4 * P, "1")
    assert (m.largest_map, m.largest_layer) == (4 * P, "0")
    assert m.weights == 4 * 3 * 9 + 1 * 4 * 9  # no bias


def test_inplace_activation_allocates_nothing():
    """With ReLU(inplace=True) the relu's output is the conv's: the peak moves to the last
    conv: 3·64 + 4·64 + 1·64."""
    m = peak_memory(run_layers(CHAIN), inplace_activations=True)
    assert (m.peak, m.peak_layer) == (3 * P + 4 * P + 1 * P, "2")
    assert [path for path, _ in m.timeline] == ["input", "0", "2"]


def test_sigmoid_is_never_in_place():
    layers = [{"type": "conv", "out": 4, "kernel": 3}, {"type": "sigmoid"}]
    m = peak_memory(run_layers(layers), inplace_activations=True)
    assert (m.peak, m.peak_layer) == (3 * P + 4 * P + 4 * P, "1")


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_batch_and_dtype_scale_elements_and_bytes(batch, dtype):
    m = peak_memory(run_layers(CHAIN, options=Options(batch=batch, dtype=dtype)))
    size = {"float32": 4, "float16": 2}[dtype]
    assert m.peak == batch * (3 + 4 + 4) * P
    assert m.peak_bytes == batch * (3 + 4 + 4) * P * size
    assert m.largest_map_bytes == batch * 4 * P * size
    assert m.weights_bytes == (4 * 3 * 9 + 1 * 4 * 9) * size  # weights do not grow with batch


RESIDUAL_MAIN = [{"type": "conv", "out": 4, "kernel": 3}, {"type": "relu"},
                 {"type": "conv", "out": 4, "kernel": 3}]


def test_residual_keeps_its_shortcut_alive():
    """conv(3→4) = y, then y + main(y): y stays alive through the main branch. At the relu:
    input 3·64, y, the main conv's output and the relu's: 3·64 + 3·(4·64) = 960; the same
    layers in a plain chain free y after the first main conv: 3·64 + 2·(4·64) = 704."""
    residual = run_layers([{"type": "conv", "out": 4, "kernel": 3},
                           {"type": "residual", "layers": RESIDUAL_MAIN}])
    m = peak_memory(residual)
    assert (m.peak, m.peak_layer) == (3 * P + 3 * 4 * P, "1.main.1")
    # the add allocates beside y and the main branch's output: the same 960, not above
    assert ("1.add", 3 * P + 3 * 4 * P) in m.timeline
    chain = peak_memory(run_layers([{"type": "conv", "out": 4, "kernel": 3}, *RESIDUAL_MAIN]))
    assert chain.peak == 3 * P + 2 * 4 * P
    assert m.peak - chain.peak == 4 * P  # the shortcut


def test_concat_keeps_every_branch_until_the_merge():
    """Three 1×1 convs of a 4×8×8 input (2, 3 and 5 channels), concatenated: at the concat
    the input, the three outputs and the 10-channel result: 4·64 + 2·(10·64)."""
    branches = [[{"type": "conv", "out": c, "kernel": 1}] for c in (2, 3, 5)]
    r = run_layers([{"type": "parallel", "merge": "concat", "branches": branches}],
                   in_channels=4)
    m = peak_memory(r)
    assert (m.peak, m.peak_layer) == (4 * P + 2 * 10 * P, "0.concat")
    assert [alive for _, alive in m.timeline] == [4 * P, 6 * P, 9 * P, 14 * P, 24 * P]
    assert m.largest_map == 10 * P


def test_add_of_three_allocates_a_running_sum():
    """functools.reduce(torch.add): (a + b) is a new tensor, freed once (a + b) + c is made."""
    branches = [[{"type": "conv", "out": 4, "kernel": 1}]] * 3
    m = peak_memory(run_layers([{"type": "parallel", "merge": "add", "branches": branches}],
                               in_channels=4))
    assert [alive for _, alive in m.timeline] == [4 * P, 8 * P, 12 * P, 16 * P,
                                                  20 * P, 24 * P]  # sum 1, then sum 2
    assert m.peak == 4 * P + 3 * 4 * P + 2 * 4 * P


def test_split_parts_are_views():
    """ShuffleNet V2's unit: half the channels pass, the other half go through a 1×1 conv;
    the split allocates nothing: 4·64 (input) + 2·64 (conv) + 4·64 (concat)."""
    r = run_layers([{"type": "parallel", "split": "half", "merge": "concat",
                     "branches": [[], [{"type": "conv", "out": 2, "kernel": 1}]]}],
                   in_channels=4)
    m = peak_memory(r)
    assert [path for path, _ in m.timeline] == ["input", "0.1.0", "0.concat"]
    assert (m.peak, m.peak_layer) == (4 * P + 2 * P + 4 * P, "0.concat")


def test_flatten_is_a_view():
    """conv → flatten → linear: flatten allocates nothing; the conv's map stays alive (the
    flattened view holds it) until the linear has run: 3·64 + 4·64 + 10."""
    m = peak_memory(run_layers([{"type": "conv", "out": 4, "kernel": 3}, {"type": "flatten"},
                                {"type": "linear", "out": 10}]))
    assert [path for path, _ in m.timeline] == ["input", "0", "2"]
    assert (m.peak, m.peak_layer) == (3 * P + 4 * P + 10, "2")


def test_asymmetric_same_padding_pads_into_a_temporary():
    """A 'same' 2×2 conv on 8×8 pads 1 after (PaddedConv2d): a 3×9×9 temporary, alive with
    the output (4×8×8) and freed after."""
    m = peak_memory(run_layers([{"type": "conv", "out": 4, "kernel": 2, "padding": "same"}]))
    assert m.timeline == (("input", 3 * P), ("0 (padding)", 3 * P + 3 * 81),
                          ("0", 3 * P + 3 * 81 + 4 * P))


def test_training_estimate():
    """Gradients = trainable params; adam keeps 2× them; saved activations = the tensors
    layers read (input 3·64, the conv's output 4·64, the relu's 4·64)."""
    m = peak_memory(run_layers(CHAIN))
    params = 4 * 3 * 9 + 1 * 4 * 9
    t = m.training("adam")
    assert (t.gradients, t.optimizer_state, t.saved_activations) == (params, 2 * params,
                                                                     (3 + 4 + 4) * P)
    assert m.training("momentum").optimizer_state == params
    assert m.training("sgd").optimizer_state == 0
    assert m.training_total("adam") == params + params + 2 * params + (3 + 4 + 4) * P
    with pytest.raises(CostModelError, match="unknown optimizer"):
        m.training("lbfgs")


def test_batch_norm_weights_include_running_statistics():
    m = peak_memory(run_layers([{"type": "conv", "out": 4, "kernel": 3}, {"type": "bn"}],
                               options=Options(bn_params=False)))
    assert m.weights == 4 * 3 * 9 + 4 * 4  # γ, β, running mean and variance, counted or not
    assert m.trainable == 4 * 3 * 9 + 2 * 4


def test_every_node_kind_has_a_walk():
    """Every kind of node the evaluation tree holds (engine.Node) has its walk."""
    assert set(NODE_WALKS) == set(typing.get_args(Node))


@pytest.mark.parametrize("model", [e.name for e in zoo()])
def test_zoo_peak_is_more_than_the_largest_map(model):
    """In every zoo model the largest map is alive together with the input image and the
    map it was computed from, so the peak by lifetime is above the largest map plus the
    input (2.2× the largest map for squeezenet1-1 and googlenet, 2.7× mobilenet, 3.4×
    resnet50 at their default inputs); in place activations never raise it."""
    r = evaluate_model(model)
    m = peak_memory(r)
    assert m.peak >= m.largest_map + m.input
    assert peak_memory(r, inplace_activations=True).peak <= m.peak


def test_cli_memory_json_and_errors():
    runner = CliRunner()
    out = runner.invoke(app, ["memory", "mobilenet", "--batch", "2", "--dtype", "float16",
                              "--training", "--optimizer", "adam", "-f", "json"])
    assert out.exit_code == 0, out.output
    [rec] = json.loads(out.stdout)
    m = peak_memory(evaluate_model("mobilenet", options=Options(batch=2, dtype="float16")))
    assert (rec["peak"], rec["peak_bytes"], rec["peak_layer"]) == (m.peak, 2 * m.peak,
                                                                   m.peak_layer)
    assert rec["training_bytes"] == 2 * m.training_total("adam")
    for fmt in ("table", "markdown", "csv"):
        assert runner.invoke(app, ["memory", "mobilenet", "resnet50", "-f", fmt]).exit_code == 0
    bad = runner.invoke(app, ["memory", "mobilenet", "--optimizer", "adam"])
    assert bad.exit_code == 2 and "--training" in bad.stderr
    assert runner.invoke(app, ["memory", "no-such-model"]).exit_code == 2
    int8 = runner.invoke(app, ["memory", "mobilenet", "--measure", "--dtype", "int8"])
    assert int8.exit_code == 2 and "float32" in int8.stderr  # refused before torch loads
