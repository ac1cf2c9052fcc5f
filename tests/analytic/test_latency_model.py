"""The latency model (costmodel.latency): the prediction's arithmetic on a hand-made profile,
profile validation, latency_ms budgets, the --profile columns, and no torch on that path."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from costmodel.cli import app
from costmodel.latency import latency_ms, load_profile, op_class
from costmodel.latency.profile import ProfileError, validate_profile
from costmodel.options import Options
from conftest import run_layers

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# One rate per class, round numbers: 1 G multiply-adds/s, 1 GB/s (µs = thousands of each)
PROFILE = {
    "version": 2, "machine": {"host": "test"}, "torch": "none", "device": "cpu",
    "threads": 1, "dtype": "float32", "batch": 1, "combine": "max",
    "classes": {
        "conv": {"overhead_us": 10.0, "gmadds_per_s": 1.0, "gbytes_per_s": 1.0},
        "conv1x1": {"overhead_us": 5.0, "gmadds_per_s": 2.0, "gbytes_per_s": 4.0},
        "depthwise": {"overhead_us": 3.0, "gmadds_per_s": 0.5, "gbytes_per_s": 1.0},
        "bn": {"overhead_us": 2.0, "gbytes_per_s": 2.0},
        "relu": {"overhead_us": 1.0, "gbytes_per_s": 8.0},
        "merge": {"overhead_us": 4.0, "gbytes_per_s": 1.0},
        "view": {"overhead_us": 0.5},
    },
}


def profile(**changes):
    return validate_profile({**PROFILE, **changes})


def test_prediction_is_overhead_plus_the_slower_of_compute_and_memory():
    # conv 3×3, 3→8 on 8×8, no bias: madds = 8·8·8·3·9 = 13,824; MAC = 3·64 + 8·64 + 216
    r = run_layers([{"type": "conv", "out": 8}, {"type": "bn"}, {"type": "relu"}])
    conv, bn, relu = r.rows
    assert conv.flops == 13_824 and conv.mac == 3 * 64 + 8 * 64 + 216
    per_row, total = latency_ms(r, profile())
    compute = 13_824 / 1e9                  # s at 1 G madds/s
    memory = conv.mac * 4 / 1e9             # float32 bytes at 1 GB/s
    assert per_row[0] == pytest.approx((10e-6 + max(compute, memory)) * 1e3)
    assert per_row[1] == pytest.approx((2e-6 + bn.mac * 4 / 2e9) * 1e3)   # no madds: memory
    assert per_row[2] == pytest.approx((1e-6 + relu.mac * 4 / 8e9) * 1e3)
    assert total == pytest.approx(sum(per_row))


def test_sum_form_adds_compute_and_memory():
    r = run_layers([{"type": "conv", "out": 8, "kernel": 1}])
    row = r.rows[0]
    ms = latency_ms(r, profile(combine="sum"))[1]
    assert ms == pytest.approx((5e-6 + row.flops / 2e9 + row.mac * 4 / 4e9) * 1e3)


def test_madds_do_not_depend_on_how_flops_are_counted():
    layers = [{"type": "conv", "out": 8}, {"type": "bn"}]
    one = latency_ms(run_layers(layers), profile())[1]
    for options in (Options(flops_per_madd=2), Options(scope="fvcore")):
        assert latency_ms(run_layers(layers, options=options), profile())[1] == \
            pytest.approx(one)


def test_classes():
    r = run_layers([{"type": "conv", "out": 8}, {"type": "conv", "out": 8, "kernel": 1},
                    {"type": "conv", "out": 8, "groups": 2}, {"type": "dwconv"},
                    {"type": "bn"}, {"type": "relu6"}, {"type": "hswish"},
                    {"type": "max_pool", "kernel": 2, "stride": 2}, {"type": "global_pool"},
                    {"type": "residual", "layers": [{"type": "relu"}]},
                    {"type": "flatten"}, {"type": "linear", "out": 4}],
                   in_channels=8)
    assert [op_class(row) for row in r.rows] == [
        "conv", "conv1x1", "grouped_conv", "depthwise", "bn", "relu", "relu", "pool",
        "global_pool", "relu", "merge", "view", "linear"]


@pytest.mark.parametrize("layer, cls", [
    # clamps and a multiply: "relu"; exp, division or a reduction per element: "activation"
    ({"type": "relu"}, "relu"), ({"type": "relu6"}, "relu"), ({"type": "leaky_relu"}, "relu"),
    ({"type": "hswish"}, "relu"), ({"type": "hsigmoid"}, "relu"), ({"type": "prelu"}, "relu"),
    ({"type": "activation", "fn": "hswish"}, "relu"), ({"type": "layer_scale"}, "relu"),
    ({"type": "swish"}, "activation"), ({"type": "silu"}, "activation"),
    ({"type": "sigmoid"}, "activation"), ({"type": "tanh"}, "activation"),
    ({"type": "gelu"}, "activation"),
    # statistics per position or group: "norm"; batch norm's affine at inference: "bn"
    ({"type": "layer_norm"}, "norm"), ({"type": "group_norm", "groups": 2}, "norm"),
    ({"type": "bn"}, "bn"),
    # a transposed conv: a GEMM and a col2im scatter, not a conv's kernel
    ({"type": "deconv", "out": 8}, "deconv"),
    # reductions over the map: "global_pool"; windows: "pool"
    ({"type": "global_pool"}, "global_pool"), ({"type": "adaptive_pool", "size": 2},
                                               "global_pool"),
    ({"type": "mean"}, "global_pool"), ({"type": "avg_pool", "kernel": 2}, "pool"),
])
def test_a_layer_declares_the_class_it_is_timed_as(layer, cls):
    r = run_layers([layer], in_channels=8)
    assert op_class(r.rows[0]) == cls


def test_windowed_pooling_works_per_window_element():
    """A pool's work is the elements its windows read, outputs × kh·kw: a 3×3 stride-1 max pool
    reads 9 per output (GoogLeNet's branch pools, 2.6× the time its bytes alone predict)."""
    from costmodel.latency.roofline import features

    r = run_layers([{"type": "max_pool", "kernel": 3, "stride": 1, "padding": 1},
                    {"type": "avg_pool", "kernel": [2, 1]}], in_channels=8)
    three, two_by_one = (features(row) for row in r.rows)
    assert three.madds == 8 * 8 * 8 * 3 * 3
    assert two_by_one.madds == 8 * 4 * 8 * 2 * 1
    pooled = profile(classes={"pool": {"overhead_us": 1.0, "gmadds_per_s": 1.0}})
    assert latency_ms(r, pooled)[0][0] == pytest.approx((1e-6 + 8 * 8 * 8 * 9 / 1e9) * 1e3)


def test_large_tensors_pay_the_large_tensor_term():
    """An output or input of at least large_tensor_bytes costs its bytes again at the class's
    large_gbytes_per_s (an output's pages faulted in fresh, an input read from memory); a
    smaller one does not, nor anything of a view (it moves nothing)."""
    r = run_layers([{"type": "relu"}, {"type": "max_pool", "kernel": 2},
                    {"type": "flatten"}], in_channels=16, input=32)
    relu, pool, flat = r.rows
    big = 16 * 32 * 32 * 4                 # the relu's float32 input and output: 65,536 bytes
    classes = {"relu": {"overhead_us": 1.0, "gbytes_per_s": 8.0, "large_gbytes_per_s": 2.0},
               "pool": {"overhead_us": 1.0, "gbytes_per_s": 8.0, "large_gbytes_per_s": 2.0},
               "view": {"overhead_us": 0.5, "large_gbytes_per_s": 2.0}}
    p = profile(classes=classes, large_tensor_bytes=big)
    per_row = latency_ms(r, p)[0]
    assert per_row[0] == pytest.approx((1e-6 + relu.mac * 4 / 8e9 + 2 * big / 2e9) * 1e3)
    # the pool's input is large, its 16 KiB output is not
    assert per_row[1] == pytest.approx((1e-6 + pool.mac * 4 / 8e9 + big / 2e9) * 1e3)
    assert per_row[2] == pytest.approx(0.5e-3)                             # a view
    without = latency_ms(r, profile(classes=classes))[0]
    assert without[0] == pytest.approx((1e-6 + relu.mac * 4 / 8e9) * 1e3)


def test_a_linear_at_every_position_is_timed_as_a_1x1_conv():
    """A channels-last linear (ConvNeXt, every transformer's per-token layers) is the GEMM of
    a 1×1 conv over H·W positions, not a classifier's product on one vector: measured on the
    quiet machine, ViT-B/16 was predicted 91% low with the classifier's rate, 22% with this."""
    r = run_layers([{"type": "permute"}, {"type": "linear", "out": 16, "channels_last": True},
                    {"type": "permute", "to": "channels_first"}, {"type": "global_pool"},
                    {"type": "flatten"}, {"type": "linear", "out": 4}], in_channels=8)
    assert [op_class(row) for row in r.rows] == [
        "view", "conv1x1", "view", "global_pool", "view", "linear"]


def test_a_class_the_profile_lacks_costs_nothing():
    r = run_layers([{"type": "swish"}])  # "activation": not in the test profile
    assert latency_ms(r, profile())[1] == 0.0


@pytest.mark.parametrize("change, where", [
    ({"version": 1}, "version"),             # version 1's classes differ: calibrate again
    ({"threads": 0}, "threads"),
    ({"threads": "1"}, "threads"),           # strict: no coercion
    ({"device": "tpu"}, "device"),
    ({"combine": "min"}, "combine"),
    ({"classes": {"warp": {"overhead_us": 1.0}}}, "classes.warp"),
    ({"classes": {"conv": {"overhead_us": -1.0}}}, "classes.conv.overhead_us"),
    ({"classes": {"conv": {"overhead_us": 1.0, "gmadds_per_s": 0}}}, "classes.conv.gmadds"),
    ({"classes": {"conv": {"overhead_us": 1.0, "speed": 3}}}, "classes.conv.speed"),
    ({"classes": {}}, "classes"),
    ({"extra": 1}, "extra"),
])
def test_invalid_profiles_name_the_file_and_field(tmp_path, change, where):
    file = tmp_path / "p.yaml"
    file.write_text(yaml.safe_dump({**PROFILE, **change}))
    with pytest.raises(ProfileError) as e:
        load_profile(file)
    assert str(file) in str(e.value) and where in str(e.value)


def test_missing_field_and_cli_exit_2(tmp_path):
    data = dict(PROFILE)
    del data["torch"]
    file = tmp_path / "p.yaml"
    file.write_text(yaml.safe_dump(data))
    res = runner.invoke(app, ["show", "mobilenet", "--profile", str(file)])
    assert res.exit_code == 2
    assert "torch: missing" in res.stderr and str(file) in res.stderr


def test_profile_round_trips(tmp_path):
    from costmodel.latency.profile import dump_profile

    file = tmp_path / "p.yaml"
    file.write_text(dump_profile(profile()))
    assert load_profile(file) == profile()


def _write(tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text(yaml.safe_dump(PROFILE))
    return file


def test_show_and_compare_columns(tmp_path):
    file = _write(tmp_path)
    res = runner.invoke(app, ["show", "mobilenet", "--profile", str(file), "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    layers = data["layers"]
    assert all("latency_ms" in rec for rec in layers)
    assert data["totals"]["latency_ms"] == pytest.approx(sum(r["latency_ms"] for r in layers))
    res = runner.invoke(app, ["compare", "mobilenet", "shufflenet-v2", "-f", "json"],
                        env={"COSTMODEL_PROFILE": str(file)})
    recs = json.loads(res.stdout)
    assert recs[0]["latency_ms_rel"] == 1.0
    assert recs[1]["latency_ms_rel"] == pytest.approx(recs[1]["latency_ms"] /
                                                      recs[0]["latency_ms"])
    plain = json.loads(runner.invoke(app, ["compare", "mobilenet", "-f", "json"],
                                     env={"COSTMODEL_PROFILE": ""}).stdout)
    assert "latency_ms" not in plain[0]


def test_sort_by_latency_needs_a_profile():
    res = runner.invoke(app, ["show", "mobilenet", "--sort", "latency_ms"],
                        env={"COSTMODEL_PROFILE": ""})
    assert res.exit_code == 2 and "profile" in res.stderr


def budgets(tmp_path, text):
    file = tmp_path / "budgets.yaml"
    file.write_text(textwrap.dedent(text))
    return runner.invoke(app, ["check", "--budgets", str(file), "-f", "json"],
                         env={"COSTMODEL_PROFILE": ""})


def test_budget_latency_verdicts(tmp_path):
    _write(tmp_path)
    r = run_layers([{"type": "conv", "out": 8}])
    assert r.rows  # the same arithmetic as above, through a budgets file
    from costmodel.api import evaluate_model

    ms = latency_ms(evaluate_model("mobilenet"), profile())[1]
    res = budgets(tmp_path, f"""
        profile: p.yaml
        models:
          - model: mobilenet
            limits: {{latency_ms: {ms * 1.01}}}
          - model: mobilenet
            name: tight
            limits: {{latency_ms: {ms * 0.99}}}
          - model: mobilenet-0.5
            baseline: mobilenet
            limits: {{latency_ms: -10%}}
        """)
    assert res.exit_code == 1, res.output
    found = json.loads(res.stdout)["results"]
    assert [f["status"] for f in found] == ["ok", "over", "ok"]
    assert found[0]["value"] == pytest.approx(ms)
    assert found[2]["limit"] == pytest.approx(ms * 0.9)  # not rounded to a whole ms


def test_budget_latency_without_profile_is_exit_2(tmp_path):
    res = budgets(tmp_path, """
        models:
          - model: mobilenet
            limits: {latency_ms: 20}
        """)
    assert res.exit_code == 2 and "profile" in res.stderr


def test_no_torch_on_the_profile_path(tmp_path):
    file = _write(tmp_path)
    code = ("import sys; from costmodel.cli import main; "
            f"sys.argv = ['costmodel', 'show', 'mobilenet', '--profile', {str(file)!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = [m for m in ('torch', 'numpy', 'fvcore', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


def test_latency_package_not_loaded_without_a_profile():
    code = ("import sys; from costmodel.cli import main; "
            "sys.argv = ['costmodel', 'compare', 'mobilenet']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code\n"
            "assert 'costmodel.latency' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True,
                   env={**__import__("os").environ, "COSTMODEL_PROFILE": ""})


def test_each_block_module_costs_the_container_overhead_once():
    # a residual: its main branch (a block holding relu) and its empty shortcut (an empty
    # block, the identity) are two module calls below the network; the merge is in "merge"
    layers = [{"type": "residual", "layers": [{"type": "relu"}]}]
    r = run_layers(layers)
    without = latency_ms(r, profile())
    data = {**PROFILE, "classes": {**PROFILE["classes"], "container": {"overhead_us": 7.0}}}
    per_row, total = latency_ms(r, validate_profile(data))
    assert total == pytest.approx(without[1] + 2 * 7e-3)
    assert per_row[0] == pytest.approx(without[0][0] + 7e-3)   # relu opens the main branch
    assert per_row[1] == pytest.approx(without[0][1] + 7e-3)   # the empty shortcut: on the merge


def test_guidelines_predicted_column_is_the_latency_models_total(tmp_path):
    from costmodel.analysis import guidelines as g
    from costmodel.latency import predict

    file = _write(tmp_path)
    res = runner.invoke(app, ["guidelines", "--profile", str(file), "-g", "G1", "--width", "1",
                              "-f", "json"])
    assert res.exit_code == 0, res.output
    cases = json.loads(res.stdout)["experiments"][0]["cases"]
    expected = {c.structure.label: predict(c.result, load_profile(file))[1] * 1e3
                for c in g.build_cases("arm", (1,), ["G1"])}
    assert {c["structure"]: c["predicted_ms"] for c in cases} == \
        pytest.approx(expected, rel=1e-3)
    assert all(ms > 0 for ms in expected.values())
    assert g.predicted_seconds(g.build_cases("arm", (1,), ["G1"])[0].result, None) is None


def test_guidelines_with_a_bad_profile_is_exit_2(tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text(yaml.safe_dump({**PROFILE, "version": 0}))
    res = runner.invoke(app, ["guidelines", "--profile", str(file), "-g", "G1", "--width", "1"])
    assert res.exit_code == 2
    assert "version" in res.stderr and str(file) in res.stderr


def test_training_only_rows_cost_nothing_and_graph_blocks_are_one_call_each():
    """An aux block is not run at inference: its rows predict 0 and open no module call. A
    graph is one module call and each of its nodes another (the container overhead, on the
    first row that runs inside: a node's merge runs before its module is called)."""
    p = profile(classes={**PROFILE["classes"],
                         "container": {"overhead_us": 7.0}})
    aux = [{"type": "aux", "name": "aux", "layers": [{"type": "conv", "out": 8}, {"type": "relu"}]}]
    plain = run_layers([{"type": "conv", "out": 8}, {"type": "relu"}])
    with_aux = run_layers([{"type": "conv", "out": 8}, *aux, {"type": "relu"}])
    ms, total = latency_ms(with_aux, p)
    assert [ms[i] for i, r in enumerate(with_aux.rows) if r.training_only] == [0.0, 0.0]
    assert total == pytest.approx(latency_ms(plain, p)[1])
    relu = [{"type": "relu"}]
    graph = run_layers([{"type": "graph", "name": "g", "nodes": [
        {"name": "a", "layers": relu},
        {"name": "b", "inputs": ["input", "a"], "merge": "add", "layers": relu}]}])
    ms, total = latency_ms(graph, p)
    a, merge, b = graph.rows  # g.a.relu, g.b.add, g.b.relu
    assert ms[0] == pytest.approx(latency_ms(run_layers(relu), p)[1] + 2 * 7e-3)  # g and a
    assert ms[1] == pytest.approx((4e-6 + merge.mac * 4 / 1e9) * 1e3)  # in g's forward
    assert ms[2] == pytest.approx(latency_ms(run_layers(relu), p)[1] + 7e-3)  # b's module


@pytest.mark.parametrize("threshold", [1, 4 * 64, 4 * 512, 4 * 2048, None])
def test_a_rows_large_bytes_are_its_tensors_over_the_threshold(threshold):
    """features() sums the large tensors in a loop of its own (a sweep predicts 10⁵ rows a
    second); it must agree with large_bytes(tensor_bytes(row)), what calibration fits on."""
    from costmodel.latency.roofline import features, large_bytes, tensor_bytes

    r = run_layers([{"type": "conv", "out": 16}, {"type": "residual", "layers": [
        {"type": "relu"}, {"type": "conv", "out": 16, "kernel": 1}]},
        {"type": "parallel", "merge": "concat", "branches": [[], [{"type": "max_pool",
                                                                   "kernel": 3, "stride": 1,
                                                                   "padding": 1}]]},
        {"type": "flatten"}], in_channels=8)
    for row in r.rows:
        assert features(row, 1, 4, threshold).large == large_bytes(tensor_bytes(row), threshold)
    assert tensor_bytes(r.rows[-1]) == ()                         # a view moves nothing
    assert tensor_bytes(r.rows[0]) == (16 * 64 * 4.0, 8 * 64 * 4.0)  # out, then the input
