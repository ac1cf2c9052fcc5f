"""sweep with a latency profile: each configuration's predicted latency (the same as predicting
the evaluated configuration on its own), --max-latency budgets, --pareto latency, the four
formats, -o files and the plot; refusals without a profile; no torch on that path."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from costmodel.analysis.sweep import SweepBudget, parse_axis, sweep
from costmodel.api import load
from costmodel.cli import app
from costmodel.engine import evaluate
from costmodel.errors import CostModelError
from costmodel.latency import latency_ms, load_profile
from costmodel.options import Options

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# A hand-made profile: round rates (G multiply-adds/s, GB/s), per-layer overheads in µs
PROFILE = {
    "version": 2, "machine": {"host": "sweep-test"}, "torch": "none", "device": "cpu",
    "threads": 1, "dtype": "float32", "batch": 1, "combine": "max",
    "classes": {
        "conv": {"overhead_us": 20.0, "gmadds_per_s": 4.0, "gbytes_per_s": 2.0},
        "conv1x1": {"overhead_us": 10.0, "gmadds_per_s": 8.0, "gbytes_per_s": 4.0},
        "depthwise": {"overhead_us": 6.0, "gmadds_per_s": 1.0, "gbytes_per_s": 2.0},
        "linear": {"overhead_us": 8.0, "gmadds_per_s": 2.0, "gbytes_per_s": 2.0},
        "bn": {"overhead_us": 3.0, "gbytes_per_s": 4.0},
        "relu": {"overhead_us": 2.0, "gbytes_per_s": 8.0},
        "global_pool": {"overhead_us": 5.0, "gbytes_per_s": 4.0},
        "view": {"overhead_us": 0.5},
    },
}
WIDTHS, INPUTS = "0.25,0.5,1", "96,160"


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "cpu.yaml"
    path.write_text(yaml.safe_dump(PROFILE))
    return path


def axes():
    return [parse_axis("width", WIDTHS), parse_axis("input", INPUTS)]


def _sweep(profile_file, **kw):
    return sweep("mobilenet", axes(), profile=profile_file, **kw)


def test_each_configuration_predicts_as_its_own_evaluation(profile_file):
    profile = load_profile(profile_file)
    spec = load("mobilenet")
    for options in (Options(), Options(flops_per_madd=2, dtype="float16")):
        result = _sweep(profile_file, options=options)
        assert len(result.points) == 3 * 2
        for p in result.points:
            alone = evaluate(spec, input=p.input, width=p.width, depth=p.depth, options=options)
            assert p.totals == alone.totals
            assert p.latency_ms == latency_ms(alone, profile)[1]
        assert result.latency_note.endswith(": cpu.yaml")
    # a wider and larger network takes longer with this profile
    ms = {(p.width, p.input[0]): p.latency_ms for p in result.points}
    assert ms[(0.25, 96)] < ms[(0.5, 96)] < ms[(1.0, 96)] < ms[(1.0, 160)]


def test_a_profile_object_works_as_a_file_does(profile_file):
    by_file = _sweep(profile_file)
    by_object = sweep("mobilenet", axes(), profile=load_profile(profile_file))
    assert [p.latency_ms for p in by_object.points] == [p.latency_ms for p in by_file.points]


def test_without_a_profile_nothing_changes(profile_file):
    plain, with_profile = sweep("mobilenet", axes()), _sweep(profile_file)
    assert all(p.latency_ms is None for p in plain.points) and plain.latency_note is None
    assert [p.totals for p in plain.points] == [p.totals for p in with_profile.points]
    assert plain.front == with_profile.front  # the params front does not depend on latency


def test_latency_budget_verdicts(profile_file):
    every = sorted(p.latency_ms for p in _sweep(profile_file).points)
    limit = (every[2] + every[3]) / 2  # three configurations fit, three do not
    result = _sweep(profile_file, budget=SweepBudget.parse(latency_ms=f"{limit}ms"))
    assert result.fits == tuple(p.latency_ms <= limit for p in result.points)
    assert sum(result.fits) == 3
    fitting = [p for p, ok in zip(result.points, result.fits) if ok]
    assert result.points[result.best].totals.flops == max(p.totals.flops for p in fitting)
    # with a FLOPs budget as well, both must hold
    flops = sorted(p.totals.flops for p in fitting)[0]
    both = _sweep(profile_file, budget=SweepBudget.parse(flops=str(flops), latency_ms=str(limit)))
    assert both.fits == tuple(p.latency_ms <= limit and p.totals.flops <= flops
                              for p in both.points)
    assert both.budget.describe() == f"FLOPs ≤ {flops / 1e6:.3g}M, latency ≤ {limit:g} ms"


def test_nothing_within_a_latency_budget(profile_file):
    result = _sweep(profile_file, budget=SweepBudget.parse(latency_ms="0"))
    assert not any(result.fits) and result.best is None


def test_pareto_latency_is_most_flops_for_the_least_predicted_latency(profile_file):
    result = _sweep(profile_file, cost="latency")
    pts = result.points

    def dominated(i):  # another point with at least its FLOPs for at most its latency
        return any(pts[j].totals.flops >= pts[i].totals.flops
                   and pts[j].latency_ms <= pts[i].latency_ms
                   and (pts[j].totals.flops, pts[j].latency_ms)
                   != (pts[i].totals.flops, pts[i].latency_ms) for j in range(len(pts)))

    assert result.front == frozenset(i for i in range(len(pts)) if not dominated(i))
    assert result.cost == "latency" and result.front


def test_latency_budget_or_front_without_a_profile_is_an_error():
    with pytest.raises(CostModelError, match="--max-latency needs a latency profile"):
        sweep("mobilenet", axes(), budget=SweepBudget.parse(latency_ms="12.5"))
    with pytest.raises(CostModelError, match="--pareto latency needs a latency profile"):
        sweep("mobilenet", axes(), cost="latency")


@pytest.mark.parametrize("text", ["-1", "abc", "nan", "12.5 s", "1e999"])
def test_bad_latency_budgets(text):
    with pytest.raises(CostModelError, match="--max-latency"):
        SweepBudget.parse(latency_ms=text)


# --- the command ---------------------------------------------------------------------------

def cli(*args, env=None):
    return runner.invoke(app, ["sweep", "mobilenet", "--width", WIDTHS, "--input", INPUTS,
                               *args], env={"COSTMODEL_PROFILE": "", **(env or {})})


def test_cli_json_and_csv_carry_latency_ms(profile_file):
    expected = [p.latency_ms for p in _sweep(profile_file).points]
    res = cli("--profile", str(profile_file), "-f", "json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [r["latency_ms"] for r in payload["rows"]] == pytest.approx(expected, rel=1e-12)
    assert payload["latency_profile"]["note"].endswith(": cpu.yaml")
    assert str(profile_file.parent) not in res.stdout  # an output states no path of the machine
    res = cli("--profile", str(profile_file), "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [float(r["latency_ms"]) for r in rows] == pytest.approx(expected, rel=1e-12)


def test_cli_table_markdown_and_env_profile(profile_file):
    for fmt in ("table", "markdown"):
        res = cli("-f", fmt, "--all", env={"COSTMODEL_PROFILE": str(profile_file)})
        assert res.exit_code == 0, res.output
        assert "latency (ms)" in res.stdout and "sweep-test" in res.stdout
    plain = cli("-f", "json")
    assert plain.exit_code == 0 and "latency" not in plain.stdout


def test_cli_budget_and_front(profile_file, tmp_path):
    every = sorted(p.latency_ms for p in _sweep(profile_file).points)
    limit = (every[2] + every[3]) / 2
    out = tmp_path / "grid.json"
    res = cli("--profile", str(profile_file), "--max-latency", f"{limit}", "--pareto", "latency",
              "-o", str(out))
    assert res.exit_code == 0, res.output
    assert f"latency ≤ {limit:g} ms" in res.stdout
    payload = json.loads(out.read_text())
    assert payload["budget"] == {"latency_ms": limit}
    assert payload["pareto"]["cost"] == "latency"
    assert [r["fits"] for r in payload["rows"]] == [r["latency_ms"] <= limit
                                                     for r in payload["rows"]]
    assert payload["best"]["latency_ms"] <= limit


@pytest.mark.parametrize("args, option", [(["--max-latency", "12.5"], "--max-latency"),
                                          (["--pareto", "latency"], "--pareto latency")])
def test_cli_latency_without_a_profile_is_exit_2(args, option, tmp_path):
    out = tmp_path / "g.csv"
    res = cli(*args, "-o", str(out))
    assert res.exit_code == 2 and option in res.stderr and "profile" in res.stderr
    assert not out.exists()


def test_cli_bad_profile_is_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**PROFILE, "combine": "product"}))
    res = cli("--profile", str(bad))
    assert res.exit_code == 2 and "bad.yaml" in res.stderr


def test_cli_plot_of_the_latency_front(profile_file, tmp_path):
    pytest.importorskip("matplotlib")
    from costmodel.report.plots import sweep_plot_data

    result = _sweep(profile_file, cost="latency", budget=SweepBudget.parse(latency_ms="50"))
    plot = sweep_plot_data(result)
    assert plot.points == tuple((p.totals.flops, p.latency_ms) for p in result.points)
    assert plot.cost_limit == 50 and plot.cost_label == "predicted latency (ms)"
    png = tmp_path / "front.png"
    res = cli("--profile", str(profile_file), "--pareto", "latency", "--plot", str(png))
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _run(args: list[str], env: dict[str, str], check: str) -> None:
    code = ("import sys; from costmodel.cli import main; "
            f"sys.argv = ['costmodel', 'sweep', 'mobilenet', '--width', '0.5,1', *{args!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n" + check)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True,
                   env={**os.environ, **env})


def test_no_torch_on_the_sweep_latency_path(profile_file):
    _run(["--profile", str(profile_file), "--pareto", "latency", "--max-latency", "50"], {},
         "heavy = [m for m in ('torch', 'numpy', 'fvcore', 'matplotlib') if m in sys.modules]\n"
         "assert not heavy, heavy\n")


def test_latency_package_not_loaded_by_a_plain_sweep():
    _run([], {"COSTMODEL_PROFILE": ""}, "assert 'costmodel.latency' not in sys.modules\n")
