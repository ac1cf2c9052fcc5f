"""costmodel calibrate: a tiny run writes a valid profile that show can predict from; the fit
recovers known rates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from costmodel.cli import app
from costmodel.latency.profile import CLASSES, load_profile
from costmodel.measure.calibrate import fit, fit_max, fit_sum, nnls

runner = CliRunner()


def test_tiny_calibrate_writes_a_valid_profile(tmp_path):
    out = tmp_path / "p.yaml"
    res = runner.invoke(app, ["calibrate", "-o", str(out), "--quick", "--min-time", "0.001",
                              "--shapes-per-class", "3"])
    assert res.exit_code == 0, res.output
    profile = load_profile(out)
    assert set(profile.classes) == set(CLASSES)
    assert profile.device == "cpu" and profile.threads == 1 and profile.version == 1
    assert profile.torch and profile.machine["cpu"]
    assert all(c.points == 3 for c in profile.classes.values())
    shown = runner.invoke(app, ["show", "mobilenet", "--profile", str(out), "-f", "json"])
    assert json.loads(shown.stdout)["totals"]["latency_ms"] > 0


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
    o, pm, pb = 20e-6, 1 / 30e9, 1 / 5e9
    t_sum = o + madds * pm + nbytes * pb
    assert fit_sum(madds, nbytes, t_sum) == pytest.approx((o, pm, pb), rel=1e-6)
    t_max = o + np.maximum(madds * pm, nbytes * pb)
    fo, fm, fb = fit_max(madds, nbytes, t_max)
    pred = fo + np.maximum(madds * fm, nbytes * fb)
    assert np.median(np.abs(pred / t_max - 1)) < 0.05


def test_fit_keeps_the_better_form():
    from costmodel.measure.calibrate import Point

    rng = np.random.default_rng(1)
    points = [Point("conv", m, b, 10e-6 + max(m / 20e9, b / 4e9))
              for m, b in zip(rng.uniform(1e5, 1e8, 40), rng.uniform(1e4, 1e7, 40))]
    combine, fits, forms = fit(points)
    assert combine == "max"
    assert forms["max"]["median_error"] <= forms["sum"]["median_error"]
