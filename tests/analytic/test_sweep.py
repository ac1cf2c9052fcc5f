"""costmodel sweep: grid parsing, every point equal to a direct evaluation, the Pareto front,
the largest configuration within a budget, variable and variant axes, outputs, bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from costmodel.analysis.sweep import SweepBudget, parse_axis, pareto_front, sweep
from costmodel.api import evaluate_model, load
from costmodel.cli import app
from costmodel.errors import CostModelError, ShapeError
from costmodel.engine import Totals, evaluate
from costmodel.options import Options
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("kind,text,expected", [
    ("width", "0.25:1.4:0.05", [round(0.25 + 0.05 * i, 10) for i in range(24)]),  # ends included
    ("width", "0.5,0.75,1", [0.5, 0.75, 1.0]),
    ("width", "0.5:1:0.25,2", [0.5, 0.75, 1.0, 2.0]),
    ("depth", "1:2:0.5", [1.0, 1.5, 2.0]),
    ("depth", "1:1.9:0.5", [1.0, 1.5]),                 # a step that does not land on stop
    ("input", "96:224:16", [(s, s) for s in range(96, 225, 16)]),
    ("input", "224x160,128", [(224, 160), (128, 128)]),
    ("resolution", "0.5,1", [0.5, 1.0]),
    ("variant", "g1,g8", ["g1", "g8"]),
    ("width", "1,1.0,0.5", [1.0, 0.5]),                 # duplicates once
])
def test_parse_axis(kind, text, expected):
    assert list(parse_axis(kind, text).values) == expected


@pytest.mark.parametrize("text,expected", [
    ("1,2,3", [1, 2, 3]), ("1:4:1", [1, 2, 3, 4]), ("0.5,true,abc", [0.5, True, "abc"]),
])
def test_parse_var_axis_types(text, expected):
    values = parse_axis("var", text, "g").values
    assert list(values) == expected
    assert [type(v) for v in values] == [type(v) for v in expected]


@pytest.mark.parametrize("kind,text,message", [
    ("width", "0.25:1.4:0", "step of '0.25:1.4:0' must be positive"),
    ("width", "0.25:1.4:-0.1", "must be positive"),
    ("width", "1.4:0.25:0.05", "is empty (stop < start)"),
    ("width", "0:1:0.25", "width multiplier must be positive, got 0"),
    ("width", "-1", "must be positive"),
    ("width", "0.5:1", "a range is start:stop:step"),
    ("width", "a:b:c", "'a' is not a number"),
    ("width", "1,,2", "empty or malformed list"),
    ("width", "", "empty or malformed list"),
    ("width", "nan", "not a number"),
    ("depth", "0", "depth multiplier must be positive"),
    ("resolution", "0:1:0.5", "resolution multiplier must be positive"),
    ("input", "96:224:7.5", "must be whole numbers"),
    ("input", "0:224:16", "input sizes must be positive"),
    ("input", "0", "positive integers"),
    ("width", "0.001:100:0.0001", "at most 100,000"),
])
def test_parse_axis_errors(kind, text, message):
    with pytest.raises(CostModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_axis(kind, text)


@pytest.mark.parametrize("texts,limits", [
    ({"flops": "300M"}, {"flops": 300_000_000}),
    ({"params": "2.5M", "mac": "1.2G"}, {"params": 2_500_000, "mac": 1_200_000_000}),
    ({"peak_activation": "300k"}, {"peak_activation": 300_000}),
    ({"flops": "1e6", "params": None}, {"flops": 1_000_000}),
])
def test_budget_parse(texts, limits):
    """A sweep's budget reads limits as a budgets file does: whole counts."""
    budget = SweepBudget.parse(**texts)
    assert budget.limits == limits
    assert all(type(v) is int for v in budget.limits.values())


@pytest.mark.parametrize("text,message", [
    ("abc", "'abc' is not a count"), ("M", "'M' is not a count"), ("", "is not a count"),
    ("-5M", "non-negative"), ("inf", "'inf' is not a count"),
    ("+5%", "relative, and a sweep has no baseline"),
])
def test_budget_parse_errors(text, message):
    with pytest.raises(CostModelError, match=r"--max-flops: FLOPs budget .*" + message):
        SweepBudget.parse(flops=text)


def test_budget_fits_at_the_limit():
    budget = SweepBudget({"flops": 100, "params": 10})
    assert budget.fits(Totals(100, 10, 0, 0)) and not budget.fits(Totals(101, 10, 0, 0))
    assert budget.describe() == "FLOPs ≤ 100, params ≤ 10"
    with pytest.raises(CostModelError, match="unknown budget metric 'bytes'"):
        SweepBudget({"bytes": 1})


@pytest.mark.parametrize("points,front", [
    ([(10, 5), (8, 3), (8, 4), (5, 5), (12, 6), (12, 6)], {0, 1, 4, 5}),
    ([(1, 1)], {0}),
    ([(1, 1), (2, 2), (3, 3)], {0, 1, 2}),       # more FLOPs always cost more: all on it
    ([(3, 1), (2, 2), (1, 3)], {0}),             # the first dominates both
    ([(5, 2), (5, 2), (5, 3)], {0, 1}),          # equal points are both on it
])
def test_pareto_front(points, front):
    assert pareto_front(points) == front


def _dominated(p, q) -> bool:
    """q dominates p: at least p's gain for at most its cost, one strictly."""
    return q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40))
def test_pareto_front_matches_the_definition(points):
    expected = {i for i, p in enumerate(points) if not any(_dominated(p, q) for q in points)}
    assert pareto_front(points) == expected


def test_every_point_equals_a_direct_evaluation():
    axes = [parse_axis("width", "0.5:1:0.25"), parse_axis("input", "128,224x160"),
            parse_axis("depth", "1,2")]
    options = Options(scope="fvcore", bn_params=False)
    result = sweep("mobilenet", axes, options=options)
    spec = load("mobilenet")
    # grid order: depth outermost, then width, then input
    assert [(p.depth, p.width, p.input) for p in result.points] == [
        (d, w, hw) for d in (1.0, 2.0) for w in (0.5, 0.75, 1.0) for hw in ((128, 128), (224, 160))]
    for p in result.points:
        assert p.totals == evaluate(spec, input=p.input, width=p.width, depth=p.depth,
                                    options=options).totals


def test_resolution_axis_multiplies_the_spec_input():
    result = sweep("effnet", [parse_axis("resolution", "0.5,1,1.5")])
    assert [p.input for p in result.points] == [(16, 16), (32, 32), (48, 48)]
    assert result.points[2].totals == evaluate_model("effnet", input=48).totals


def test_width_is_the_networks_alpha_as_compare_means_it():
    """--width is α itself, not a factor of the named model's: mobilenet-0.5 swept at width 0.5
    is MobileNet at α = 0.5 (149,497,088 multiply-adds at 224, what compare mobilenet --width
    0.5 gives), and at width 1 it is MobileNet."""
    result = sweep("mobilenet-0.5", [parse_axis("width", "0.5,1")])
    assert [p.width for p in result.points] == [0.5, 1.0]
    assert [p.totals for p in result.points] == [
        evaluate_model("mobilenet", width=0.5).totals, evaluate_model("mobilenet").totals]
    assert result.points[0].totals.flops == 149_497_088
    assert result.points[0].totals == evaluate_model("mobilenet-0.5").totals


def test_the_width_and_depth_not_swept_are_the_models_own():
    """Every row shows the evaluated network's α and d, swept or not."""
    (point,) = sweep("mobilenet-0.75", [parse_axis("input", "160")]).points
    assert (point.width, point.depth) == (0.75, 1.0)
    assert point.totals == evaluate_model("mobilenet", width=0.75, input=160).totals
    b3 = sweep("efficientnet-b3", [parse_axis("depth", "1,1.4")])
    assert [(p.width, p.depth) for p in b3.points] == [(1.2, 1.0), (1.2, 1.4)]
    assert b3.points[1].totals == evaluate_model("efficientnet-b3").totals


def test_sweep_and_compare_agree_on_width_from_the_command_line():
    res = run("sweep", "mobilenet-0.5", "--width", "0.5", "-f", "json")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["rows"]
    compared = json.loads(run("compare", "mobilenet-0.5", "--width", "0.5", "-f",
                              "json").stdout)[0]
    assert (row["width"], row["flops"]) == (0.5, compared["flops"]) == (0.5, 149_497_088)


def test_largest_within_budget_and_front_within_budget():
    budget = SweepBudget.parse(flops="300M", params="3M")
    result = sweep("mobilenet", [parse_axis("width", "0.25:1.4:0.05"),
                                 parse_axis("input", "96:224:16")], budget=budget)
    assert len(result.points) == 24 * 9
    fits = [p.totals.flops <= 300e6 and p.totals.params <= 3e6 for p in result.points]
    assert list(result.fits) == fits
    best = result.points[result.best]
    assert best.totals.flops == max(p.totals.flops for p, ok in zip(result.points, fits) if ok)
    assert result.best in result.front
    assert all(fits[i] for i in result.front)  # with a budget, the front of what fits
    inside = [(p.totals.flops, p.totals.params) for p, ok in zip(result.points, fits) if ok]
    for i in result.front:
        p = result.points[i].totals
        assert not any(_dominated((p.flops, p.params), q) for q in inside)


def test_front_over_mac_and_no_budget():
    result = sweep("shufflenet", [parse_axis("width", "0.5,1,1.5"),
                                  parse_axis("input", "160,224")], cost="mac")
    assert result.best is None and not result.budget
    pts = [(p.totals.flops, p.totals.mac) for p in result.points]
    assert result.front == pareto_front(pts)


def test_nothing_fits():
    result = sweep("mobilenet", [parse_axis("width", "0.5,1")],
                   budget=SweepBudget({"flops": 1000}))
    assert result.best is None and not any(result.fits)


def test_variant_axis_sweeps_shufflenet_groups():
    result = sweep("shufflenet", [parse_axis("variant", "g1,g2,g3,g4,g8")])
    assert [p.model for p in result.points] == [f"shufflenet-g{g}" for g in (1, 2, 3, 4, 8)]
    for p in result.points:
        assert p.totals == evaluate_model(p.model).totals


def test_variant_axis_combines_with_width_and_named_variants():
    """The width axis sets α over the variant's own, as compare --width does (the 0.5 variant
    also sets conv1's channels, which stay)."""
    result = sweep("shufflenet-0.5", [parse_axis("variant", "g3,g4"),
                                      parse_axis("width", "0.5,1")])
    assert result.points[0].totals == evaluate_model("shufflenet-0.5-g3").totals
    assert result.points[3].model == "shufflenet-0.5-g4"
    assert result.points[3].totals == evaluate_model("shufflenet-0.5-g4", width=1.0).totals


def test_var_axes_set_spec_variables():
    """Setting ShuffleNet's variables by hand gives its g1 variant."""
    axes = [parse_axis("var", "1", "g"), parse_axis("var", "4", "div"),
            parse_axis("var", "144", "c2"), parse_axis("var", "288", "c3"),
            parse_axis("var", "576", "c4")]
    (point,) = sweep("shufflenet", axes).points
    assert point.vars == {"g": 1, "div": 4, "c2": 144, "c3": 288, "c4": 576}
    assert point.totals == evaluate_model("shufflenet-g1").totals


def test_groups_that_do_not_divide_fail_or_are_skipped():
    axes = [parse_axis("var", "1,3,8", "g")]  # g=8 with 240 channels: bottleneck 60
    with pytest.raises(CostModelError, match=r"60 channels are not divisible by groups=8 "
                                             r"\(at g=8\)") as e:
        sweep("shufflenet", axes)
    assert e.value.path == "stage2.0.res.main.shuffle"
    result = sweep("shufflenet", axes, skip_invalid=True)
    assert [p.vars["g"] for p in result.points] == [1, 3]
    assert result.skipped[0][0] == "g=8" and "not divisible" in result.skipped[0][1]


# ---- the command ----------------------------------------------------------------------------

def test_sweep_json_contract():
    res = run("sweep", "mobilenet", "--width", "0.5:1:0.25", "--input", "160,224",
              "--max-flops", "300M", "-f", "json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert [a["axis"] for a in d["axes"]] == ["width", "input"]
    assert d["budget"] == {"flops": 300e6}
    assert d["pareto"]["cost"] == "params" and d["pareto"]["among"] == "within budget"
    assert len(d["rows"]) == 6
    row = d["rows"][-1]
    assert (row["width"], row["input"]) == (1.0, [224, 224])
    assert row["flops"] == 568_740_352 and isinstance(row["params"], int)
    assert row["fits"] is False and row["pareto"] is False
    best = d["best"]
    assert best == next(r for r in d["rows"] if r["best"])
    assert best["flops"] == max(r["flops"] for r in d["rows"] if r["fits"])
    assert d["conventions"]["flops"] == "multiply-adds"


def test_sweep_csv_has_raw_columns():
    res = run("sweep", "shufflenet", "--variant", "g1,g8", "--input", "224x160", "-f", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["variant"] for r in rows] == ["g1", "g8"]
    assert (rows[0]["input_h"], rows[0]["input_w"]) == ("224", "160")
    assert int(rows[1]["flops"]) == evaluate_model("shufflenet-g8", input="224x160").totals.flops
    assert rows[0]["pareto"] in ("0", "1")


def test_sweep_groups_alias_and_table():
    res = run("sweep", "shufflenet", "--groups", "1,3", "--width", "0.5,1")
    assert res.exit_code == 0, res.output
    assert "$g" in res.stdout and "front" in res.stdout and "multiply-add" in res.stdout


def test_sweep_shows_the_depths_and_inputs_variants_set():
    res = run("sweep", "efficientnet", "--variant", "b0,b1", "-f", "markdown")
    assert res.exit_code == 0, res.output
    assert "| b0 | 1.0 | 224×224 |" in res.stdout and "| b1 | 1.1 | 240×240 |" in res.stdout
    assert "configurations (α = 1)" in res.stdout  # b0 and b1 share α, not d
    assert "input 224×224)" not in res.stdout


GRID = ("mobilenet", "--width", "0.25:1.4:0.05", "--input", "96:224:16", "--max-flops", "300M")


def _md_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("| 0", "| 1"))]


def test_sweep_shows_the_front_and_the_best_by_default():
    result = sweep("mobilenet", [parse_axis("width", "0.25:1.4:0.05"),
                                 parse_axis("input", "96:224:16")],
                   budget=SweepBudget.parse(flops="300M"))
    keep = sorted(result.front | {result.best})
    res = run("sweep", *GRID, "-f", "markdown")
    assert res.exit_code == 0, res.output
    rows = _md_rows(res.stdout)
    assert len(rows) == len(keep) < len(result.points) == 24 * 9
    assert all("●" in line or "◀ best" in line for line in rows)
    assert sum("◀ best" in line for line in rows) == 1
    assert f"showing {len(keep)} of 216 configurations" in res.stdout
    assert "front: most FLOPs for the least params" in res.stdout  # the title names it
    assert "largest within FLOPs ≤ 300M" in res.stdout
    old = run("sweep", *GRID, "--front-only", "-f", "markdown")  # the old flag: the default
    assert old.exit_code == 0 and _md_rows(old.stdout) == rows


def test_sweep_all_prints_every_row_and_data_always_carries_them(tmp_path):
    res = run("sweep", *GRID, "--all", "-f", "markdown")
    assert res.exit_code == 0, res.output
    assert len(_md_rows(res.stdout)) == 216 and "showing" not in res.stdout
    for fmt in ("json", "csv"):  # data on stdout: every row without --all
        out = run("sweep", *GRID, "-f", fmt).stdout
        n = len(json.loads(out)["rows"]) if fmt == "json" else \
            len(list(csv.DictReader(io.StringIO(out))))
        assert n == 216, fmt
    md = tmp_path / "grid.md"
    assert run("sweep", *GRID, "-o", str(md)).exit_code == 0
    assert len(_md_rows(md.read_text())) == 216
    bad = run("sweep", *GRID, "--all", "--front-only")
    assert bad.exit_code == 2 and "--all and --front-only" in bad.stderr


def test_shown_rows_are_the_front_and_the_best_or_the_smallest():
    from dataclasses import replace

    from costmodel.analysis.sweep_views import shown_rows

    result = sweep("mobilenet", [parse_axis("width", "0.25,0.5,0.75,1")],
                   budget=SweepBudget.parse(flops="300M"))
    assert shown_rows(result) == [0, 1] and result.best == 1
    assert shown_rows(replace(result, front=frozenset({0}))) == [0, 1]  # best off the front
    none = sweep("mobilenet", [parse_axis("width", "0.5,1")],
                 budget=SweepBudget.parse(flops="1M"))
    assert none.best is None and none.front == frozenset()
    assert shown_rows(none) == [0]  # the smallest, which the nothing-fits line names


def test_sweep_json_names_the_front():
    d = json.loads(run("sweep", "mobilenet", "--width", "0.5,1", "--pareto", "mac",
                       "-f", "json").stdout)
    assert d["pareto"]["front"] == "most FLOPs for the least MAC"
    assert (d["pareto"]["gain"], d["pareto"]["cost"]) == ("flops", "mac")


def test_sweep_writes_output_and_plot(tmp_path):
    out, png = tmp_path / "grid.csv", tmp_path / "front.png"
    res = run("sweep", "mobilenet", "--width", "0.5,1", "--input", "128,224", "-o", str(out),
              "--plot", str(png), "--max-params", "2M")
    assert res.exit_code == 0, res.output
    assert "wrote 4 configurations" in res.stdout and "largest within params ≤ 2.00M" in res.stdout
    assert out.read_text().startswith("model,depth,width,input_h,input_w,")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_plot_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    res = run("sweep", "mobilenet", "--width", "0.5,1", "-o", str(tmp_path / "g.csv"),
              "--plot", str(tmp_path / "front.png"))
    assert res.exit_code == 2
    assert 'sweep --plot draws its plots with matplotlib, which is not installed: ' \
           'pip install "cnn-costmodel[plots]"' in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_sweep_never_imports_matplotlib_without_a_plot():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom costmodel.cli import app\n"
            "r = CliRunner().invoke(app, ['sweep', 'effnet', '--width', '0.5,1'])\n"
            "assert r.exit_code == 0, r.output\n"
            "bad = {'matplotlib', 'torch', 'fvcore'} & set(sys.modules)\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def fails(*args: str) -> str:
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.stdout == ""
    return res.stderr


@pytest.mark.parametrize("args,message", [
    (["mobilenet"], "nothing to sweep"),
    (["mobilenet", "--width", "0.25:1.4:0"], "must be positive"),
    (["mobilenet", "--width", "0:1:0.25"], "width multiplier must be positive, got 0"),
    (["mobilenet", "--width", "1", "--max-flops", "lots"],
     "--max-flops: FLOPs budget 'lots' is not a count"),
    (["mobilenet", "--width", "1", "--max-activation", "-1"],
     "--max-activation: peak activation budget '-1': a limit must be a non-negative"),
    (["mobilenet", "--input", "96", "--resolution", "1"], "not both"),
    (["mobilenet", "--var", "g"], "NAME=VALUES"),
    (["shufflenet", "--var", "q=1"], "declares no variable 'q'"),
    (["shufflenet", "--variant", "g7"], "has no variant 'g7'"),
    (["effnet", "--groups", "1,2"], "declares no group variable"),
    (["shufflenet", "--groups", "1,8"], "not divisible by groups=8 (at g=8)"),
    (["shufflenet", "--groups", "1,8"], "try --variant"),
    (["effnet", "--input", "1,32"], "layer 'stage1.block.pool'"),
    (["effnet", "--input", "1,32"], "(at input 1×1)"),
    (["mobilenet", "--width", "1", "-o", "grid.txt"], "use a .csv, .json, .md"),
    (["mobilenet", "--width", "1", "--plot", "front.jpg"], "use a .png, .svg, .pdf"),
    (["mobilenet", "--width", "1", "-o", "grid.csv", "-f", "table"], "csv, json or markdown"),
    (["mobilenet", "--width", "1e3"], "implausibly large"),
])
def test_bad_parameters_exit_2(args, message):
    assert message in fails("sweep", *args)


def test_failed_sweep_writes_nothing(tmp_path):
    out, png = tmp_path / "grid.json", tmp_path / "front.png"
    fails("sweep", "effnet", "--input", "1,32", "-o", str(out), "--plot", str(png))
    assert not out.exists() and not png.exists()


def _zoo_names() -> list[str]:
    from costmodel.spec.zoo import zoo
    return [e.name for e in zoo()]


@pytest.mark.parametrize("model", _zoo_names())
def test_totals_only_equals_the_full_evaluation(model):
    """Sweeps evaluate with totals_only, which adds a repeated block's totals again instead of
    walking it again: the totals must equal the sum over the full evaluation's rows, for the
    model and each of its variants, in both scopes and at a second input size."""
    from costmodel.spec.zoo import zoo
    entry = next(e for e in zoo() if e.name == model)
    for name in (model, *(f"{model}-{v}" for v in entry.variants)):
        for options in (Options(), Options(scope="fvcore", bn_params=False)):
            for size in (None, 96):
                spec = load(name)
                try:
                    full = evaluate(spec, input=size, options=options)
                except ShapeError as e:  # a fixed pool window needs the full input: so
                    with pytest.raises(ShapeError) as lean_error:  # does the lean walk
                        evaluate(spec, input=size, options=options, totals_only=True)
                    assert (lean_error.value.path, lean_error.value.message) == \
                        (e.path, e.message)
                    continue
                lean = evaluate(spec, input=size, options=options, totals_only=True)
                assert lean.totals == full.totals, (name, size, options)
                assert lean.output == full.output and lean.rows == ()
                assert full.totals.flops == sum(r.flops for r in full.rows)


def test_sweep_plot_data_is_the_grid_front_and_budget():
    """The plot's data (pure, no matplotlib): every point, the front in drawing order, the
    budget's limits and the best point."""
    from costmodel.report.plots import sweep_plot_data

    result = sweep("mobilenet", [parse_axis("width", "0.25,0.5,0.75,1")],
                   budget=SweepBudget.parse(flops="300M"))
    plot = sweep_plot_data(result)
    assert plot.points == tuple((p.totals.flops, p.totals.params) for p in result.points)
    assert plot.inside == result.fits == (True, True, False, False)
    assert plot.front == (0, 1) and plot.best == 1 == result.best
    assert (plot.flops_limit, plot.cost_limit) == (300_000_000, None)
    assert plot.best_label == "largest within FLOPs ≤ 300M"
    assert plot.front_label == "front: most FLOPs for the least params within the budget"


def _figure(result):
    import matplotlib

    from costmodel.report.plots import STYLE, sweep_figure, sweep_plot_data

    with matplotlib.rc_context(STYLE):
        fig = sweep_figure(sweep_plot_data(result))
        fig.canvas.draw()  # tick labels are set when drawn
    return fig.axes[0]


def test_sweep_plot_has_the_reports_axes_ticks_and_legend():
    pytest.importorskip("matplotlib")
    ax = _figure(sweep("mobilenet", [parse_axis("width", "0.25,0.5,0.75,1")]))
    # as the report's FLOPs-vs-params chart: params across, FLOPs up
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("parameters", "FLOPs (multiply-adds)")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["configurations", "front: most FLOPs for the least params"]
    ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    assert ticks and not any(".0k" in t or ".0M" in t for t in ticks), ticks
    assert "1M" in ticks and "0" in ticks
    budgeted = _figure(sweep("mobilenet", [parse_axis("width", "0.25,0.5,0.75,1")],
                             budget=SweepBudget.parse(flops="300M")))
    legend = [t.get_text() for t in budgeted.get_legend().get_texts()]
    assert legend[:2] == ["over budget", "within budget"]
    assert legend[-1] == "largest within FLOPs ≤ 300M"
