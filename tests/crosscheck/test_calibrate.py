"""costmodel calibrate: a tiny run writes a valid profile that show can predict from; the fit
recovers known rates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from costmodel.cli import app
from costmodel.latency.profile import CLASSES, load_profile
from costmodel.measure.fitting import Point, fit, fit_max, fit_sum, nnls
from costmodel.measure.synthetic import MAX_SYNTHETIC_FLOPS, synthetic_results

runner = CliRunner()


def test_tiny_calibrate_writes_a_valid_profile(tmp_path):
    out = tmp_path / "p.yaml"
    res = runner.invoke(app, ["calibrate", "-o", str(out), "--method", "layers", "--quick",
                              "--min-time", "0.001", "--shapes-per-class", "3"])
    assert res.exit_code == 0, res.output
    profile = load_profile(out)
    assert set(profile.classes) == set(CLASSES)
    assert profile.device == "cpu" and profile.threads == 1 and profile.version == 2
    assert profile.torch and profile.machine["cpu"] and profile.fit["method"] == "layers"
    assert all(c.points == 3 for c in profile.classes.values())
    shown = runner.invoke(app, ["show", "mobilenet", "--profile", str(out), "-f", "json"])
    assert json.loads(shown.stdout)["totals"]["latency_ms"] > 0


def test_tiny_calibrate_in_context(tmp_path):
    out = tmp_path / "p.yaml"
    res = runner.invoke(app, ["calibrate", "-o", str(out), "--networks", "2",
                              "--min-time", "0.001"])
    assert res.exit_code == 0, res.output
    profile = load_profile(out)
    assert profile.fit["method"] == "context" and profile.fit["networks"] == 2
    rows = sum(len(r.rows) for r in synthetic_results(2))
    assert profile.fit["points"] == rows
    assert sum(c.points for k, c in profile.classes.items() if k != "container") == rows
    dispatch = profile.fit["dispatch_us"]
    assert all(c.overhead_us >= dispatch for k, c in profile.classes.items()
               if k != "container")
    shown = runner.invoke(app, ["show", "mobilenet", "--profile", str(out), "-f", "json"])
    assert json.loads(shown.stdout)["totals"]["latency_ms"] > 0


def test_synthetic_networks_are_deterministic_bounded_and_cover_the_classes():
    from costmodel.latency.roofline import op_class

    first = synthetic_results(24)
    again = synthetic_results(24)
    assert [r.totals.flops for r in first] == [r.totals.flops for r in again]
    assert all(r.totals.flops <= MAX_SYNTHETIC_FLOPS for r in first)
    assert len({r.input for r in first}) >= 3  # several input sizes, 32×32 among them
    assert (32, 32) in {r.input for r in first}
    assert max(r.input[0] * r.input[1] for r in first) >= 256 * 512  # a dense network
    seen = {op_class(row) for r in first for row in r.rows}
    assert seen == set(CLASSES) - {"container"}


def _network(cls_rows, total, blocks=0):
    from costmodel.measure.calibrate import Network

    points = [Point(c, m, b, (), t) for c, m, b, t in cls_rows]
    return Network(points, total, len(points), blocks)


def test_dispatch_splits_the_gap_into_calls_per_row_and_per_block_never_negative():
    from costmodel.measure.calibrate import dispatch

    rows = [("relu", 0.0, 1e4, 1e-5)] * 10   # Σ rows = 100 µs over 10 rows
    # gap = 3 µs per row + 7 µs per block, with 1, 2 and 4 blocks
    nets = [_network(rows, 100e-6 + 10 * 3e-6 + k * 7e-6, k) for k in (1, 2, 4)]
    assert dispatch(nets) == pytest.approx((3e-6, 7e-6))
    assert dispatch([_network(rows, 90e-6)]) == (0.0, 0.0)  # Σ rows above the total


def test_profile_in_context_recovers_rates_and_adds_dispatch():
    from costmodel.measure.calibrate import profile_in_context

    rng = np.random.default_rng(2)
    o, pm, pb, d = 8e-6, 1 / 20e9, 1 / 5e9, 2e-6
    nets = []
    for _ in range(6):
        rows = [("conv", m, b, o + m * pm + b * pb)
                for m, b in zip(rng.uniform(1e5, 1e8, 12), rng.uniform(1e4, 1e7, 12))]
        nets.append(_network(rows, sum(r[3] for r in rows) + d * len(rows)))
    profile = profile_in_context(nets, combine="sum")
    conv = profile.classes["conv"]
    assert conv.overhead_us == pytest.approx((o + d) * 1e6, rel=1e-3)
    assert conv.gmadds_per_s == pytest.approx(20, rel=1e-3)
    assert conv.gbytes_per_s == pytest.approx(5, rel=1e-3)
    assert profile.large_tensor_bytes is None  # no output reached a threshold
    assert profile.fit["forms"]["sum"]["network_median_error"] < 1e-3


def test_profile_in_context_finds_the_large_tensor_threshold_and_rate():
    """Rows whose tensors reach 4 MiB pay 1 s per 2 GB of them on top: the fit picks that
    threshold among the candidates and recovers the rate."""
    from costmodel.measure.calibrate import Network, profile_in_context

    rng = np.random.default_rng(3)
    o, pb, pl, big = 5e-6, 1 / 10e9, 1 / 2e9, 4 << 20
    nets = []
    for _ in range(6):
        outs = rng.choice([64e3, 1e6, 3e6, 5e6, 9e6, 17e6], 20)
        points = [Point("relu", 0.0, 2 * ob, (ob,), o + 2 * ob * pb + (ob >= big) * ob * pl)
                  for ob in outs]
        nets.append(Network(points, sum(p.seconds for p in points), len(points), 0))
    profile = profile_in_context(nets, combine="sum")
    assert profile.large_tensor_bytes == big
    relu = profile.classes["relu"]
    assert relu.large_gbytes_per_s == pytest.approx(2, rel=1e-3)
    assert relu.gbytes_per_s == pytest.approx(10, rel=1e-3)


def test_calibrate_refuses_a_bad_target_before_timing(tmp_path):
    res = runner.invoke(app, ["calibrate", "-o", str(tmp_path) + "/"])
    assert res.exit_code == 2


def test_nnls_matches_a_nonnegative_solution_and_clips():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert nnls(a, np.array([1.0, 2.0, 3.0])) == pytest.approx([1.0, 2.0])
    assert nnls(a, np.array([-1.0, 2.0, 1.0])) == pytest.approx([0.0, 1.5])


def test_fits_recover_known_rates():
    rng = np.random.default_rng(0)
    madds = rng.uniform(1e5, 1e8, 60)
    nbytes = rng.uniform(1e4, 1e7, 60)
    large = np.where(nbytes > 5e6, nbytes, 0.0)
    o, pm, pb, pl = 20e-6, 1 / 30e9, 1 / 5e9, 1 / 1e9
    t_sum = o + madds * pm + nbytes * pb + large * pl
    assert fit_sum(madds, nbytes, large, t_sum) == pytest.approx((o, pm, pb, pl), rel=1e-6)
    none = np.zeros_like(madds)
    t_max = o + np.maximum(madds * pm, nbytes * pb)
    fo, fm, fb, fl = fit_max(madds, nbytes, none, t_max)
    assert fl == 0.0
    pred = fo + np.maximum(madds * fm, nbytes * fb)
    assert np.median(np.abs(pred / t_max - 1)) < 0.05


def test_fit_keeps_the_better_form():
    rng = np.random.default_rng(1)
    points = [Point("conv", m, b, (), 10e-6 + max(m / 20e9, b / 4e9))
              for m, b in zip(rng.uniform(1e5, 1e8, 40), rng.uniform(1e4, 1e7, 40))]
    combine, fits, forms = fit(points)
    assert combine == "max"
    assert forms["max"]["median_error"] <= forms["sum"]["median_error"]


def test_every_single_layer_shape_is_timed_under_the_class_the_model_predicts_it_as():
    """The layers method labels each point by its grid key: a key that disagreed with
    op_class (hswish under "activation" while the model times it as "relu") would fit one
    class's rates to another's layers."""
    from costmodel.engine import evaluate
    from costmodel.latency.roofline import op_class
    from costmodel.measure.calibrate import _grid
    from costmodel.spec.loader import layers_spec

    for cls, shapes in _grid(quick=True).items():
        if cls == "container":  # a block's own call: no row of its own
            continue
        for layers, c, s in shapes:
            rows = evaluate(layers_spec(layers, input=s, in_channels=c)).rows
            assert {op_class(r) for r in rows if r.type != "flatten"} == {cls}, (cls, layers)
