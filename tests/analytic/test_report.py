"""costmodel report: the Markdown, its plots, the committed reports' freshness."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costmodel.api import compare, evaluate_model
from costmodel.cli import app
from costmodel.options import Options
from costmodel.report import plots
from costmodel.report.markdown import details, slug, split_ref
from costmodel.report.regenerate import CONFIG_NAME, check, compare_dirs, regenerate
from costmodel.report.tables import largest_layer_records

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
THREE = ["effnet", "mobilenet", "shufflenet"]


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> Path:
    """The report of the main job's comparison, written once for the tests below."""
    out = tmp_path_factory.mktemp("report") / "three.md"
    res = runner.invoke(app, ["report", *THREE, "--input", "32", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.stdout and "4 plots" in res.stdout
    return out


def test_report_files(three):
    assert sorted(p.name for p in (three.parent / "three_files").iterdir()) == [
        ".costmodel-manifest.json", "flops-vs-params.png", "layers-effnet.png", "layers-mobilenet.png",
        "layers-shufflenet.png"]
    md = three.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 4
    for link in links:
        assert (three.parent / link).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_report_states_conventions(three):
    md = three.read_text()
    conventions = md.split("## Conventions")[1].split("## Comparison")[0]
    for text in ("**FLOPs are multiply-adds**", "**MAC is memory access cost**",
                 "never multiply-accumulates", "conv and linear layers only", "**float32**",
                 "4 bytes per element", "batch-norm γ/β included"):
        assert text in conventions, text
    assert "costmodel report effnet mobilenet shufflenet --input 32 -o" in md


def test_report_comparison_and_sections(three):
    md = three.read_text()
    results = compare(THREE, input=32)
    flops = {r.model: r.totals.flops for r in results}
    assert "| effnet | 32×32 | 10 | 5.64M | 1.00× |" in md
    lowest = min(flops, key=flops.get)
    assert f"Lowest FLOPs: **{lowest}**" in md
    comparison = md.split("## Comparison")[1].split("\n## ")[0]
    assert "**Data flow per stage — effnet, mobilenet, shufflenet (32×32 input)**" in comparison
    for r in results:
        section = md.split(f"\n## {r.model}\n")[1].split("\n## ")[0]
        for heading in ("### Cost by layer type", "### Data flow", "### Largest layers",
                        "### Per layer"):
            assert heading in section
        assert f"**{r.model} — data flow per stage (3×32×32 input)**" in section
        assert f"<summary>All {len(r.rows)} layers of {r.model} (per-layer table)</summary>" \
            in section and section.rstrip().endswith("</details>")
        biggest = max(r.rows, key=lambda row: row.flops)  # the first of equals, as ranked
        assert f"| 1 | {biggest.path} | {biggest.type} |" in section
        assert section.count(f"| {r.rows[0].path} |") >= 1  # the per-layer table
        assert "MobileNet Table 2" in section


def test_report_does_not_repeat_conventions_under_each_table(three):
    assert three.read_text().count(Options().describe()) == 0


def test_png_carries_the_digest_of_what_it_plots(three):
    from PIL import Image

    folder = three.parent / "three_files"
    results = compare(THREE, input=32)
    expected = {"flops-vs-params.png": plots.scatter_data(results, THREE, "flops-vs-params.png")}
    expected |= {f"layers-{r.model}.png": plots.layer_bars_data(r, r.model, f"layers-{r.model}.png")
                 for r in results}
    for name, data in expected.items():
        with Image.open(folder / name) as im:
            assert im.text[plots.DATA_KEY] == plots.digest(data), name
            assert im.size[0] == 1000  # 10 in at 100 dpi: readable in a Markdown viewer


def test_plots_are_byte_stable():
    r = evaluate_model("effnet")
    data = plots.layer_bars_data(r, "effnet", "x.png")
    assert plots.draw(data) == plots.draw(data)


def test_plot_data_is_the_models_numbers():
    results = compare(["mobilenet", "mobilenet-0.5"])
    scatter = plots.scatter_data(results, ["a", "b"], "s.png")
    assert [(p.label, p.flops, p.params, p.mac) for p in scatter.points] == [
        ("a", 568_740_352, results[0].totals.params, results[0].totals.mac),
        ("b", 149_497_088, results[1].totals.params, results[1].totals.mac)]
    small = evaluate_model("effnet")  # at most MAX_BARS layers: one bar each
    bars = plots.layer_bars_data(small, "a", "l.png")
    assert [(b.path, b.flops, b.mac) for b in bars.bars] == \
        [(r.path, r.flops, r.mac) for r in small.rows]


@pytest.mark.parametrize("paths, groups", [
    (["conv1", "conv1_bn", "fc"], ((0, "conv1"), (1, "conv1_bn"), (2, "fc"))),
    # a top-level group with more than a fifth of the layers splits into its sub-blocks
    (["stem", "stage.0.a", "stage.0.b", "stage.1.a", "stage.1.b", "fc"],
     ((0, "stem"), (1, "stage.0"), (3, "stage.1"), (5, "fc"))),
    (["a.x", "a.y", "b", "a.z"], ((0, "a.x"), (1, "a.y"), (2, "b"), (3, "a.z"))),
])
def test_layer_groups(paths, groups):
    assert plots.layer_groups(paths) == groups


@pytest.mark.parametrize("value, text", [
    (0, "0"), (100_000_000.0, "100M"), (2_500_000.0, "2.5M"), (250_000.0, "250k"),
    (1_750_000.0, "1.75M"), (0.5, "0.5"),
])
def test_axis_ticks_use_si(value, text):
    assert plots.tick_si(value) == text


def test_largest_layers_rank_by_metric_then_order():
    r = evaluate_model("mobilenet")
    top = largest_layer_records(r, "flops", 3)
    ranked = sorted(r.rows, key=lambda row: -row.flops)[:3]  # stable: execution order on ties
    assert [t["path"] for t in top] == [row.path for row in ranked]
    assert top[0]["flops_share"] == ranked[0].flops / r.totals.flops
    assert [t["rank"] for t in top] == [1, 2, 3]


@pytest.mark.parametrize("ref, parsed", [
    ("mobilenet", ("mobilenet", None)), ("mobilenet@160", ("mobilenet", "160")),
    ("specs/a.yaml@224x160", ("specs/a.yaml", "224x160")),
])
def test_model_refs(ref, parsed):
    assert split_ref(ref) == parsed


@pytest.mark.parametrize("label, file", [("mobilenet @ 160×160", "mobilenet-160x160"),
                                         ("shufflenet-g8-0.5", "shufflenet-g8-0.5")])
def test_slug(label, file):
    assert slug(label) == file


def test_details_block_keeps_markdown_rendering():
    assert details("All <3> layers", "| a |\n|---|\n") == \
        "<details>\n<summary>All &lt;3&gt; layers</summary>\n\n| a |\n|---|\n\n</details>\n"


def test_per_model_input_sizes(tmp_path):
    out = tmp_path / "res.md"
    res = runner.invoke(app, ["report", "mobilenet@128", "mobilenet@160", "--no-bn-params",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert "## mobilenet @ 128×128" in md and "## mobilenet @ 160×160" in md
    assert "batch-norm γ/β excluded" in md
    assert (tmp_path / "res_files" / "layers-mobilenet-160x160.png").is_file()
    assert "| mobilenet | **160×160** ⚠ | 1,000 | 291M |" in md  # input differs  # Table 7's 290M


@pytest.mark.parametrize("args, message", [
    (["effnet", "nosuchnet"], "unknown model 'nosuchnet'"),
    (["effnet", "effnet"], "'effnet' is listed twice"),
    (["effnet@3y"], "input size '3y'"),
    (["@32"], "is not MODEL or MODEL@INPUT"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    res = runner.invoke(app, ["report", *args, "-o", str(tmp_path / "r.md")])
    assert res.exit_code == 2
    assert message in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_report_without_matplotlib_writes_tables_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    res = runner.invoke(app, ["report", "effnet", "mobilenet", "-o", str(tmp_path / "r.md")])
    assert res.exit_code == 0, res.output
    assert "tables only, matplotlib is not installed" in res.stderr
    assert 'pip install "cnn-costmodel[plots]"' in res.stderr
    md = (tmp_path / "r.md").read_text()
    assert "_Tables only: no plots (matplotlib is not installed" in md
    assert ".png" not in md and "## Comparison" in md
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]  # no empty plot folder


def test_report_no_plots(tmp_path):
    res = runner.invoke(app, ["report", "effnet", "--no-plots", "-o", str(tmp_path / "r.md")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "r.md").read_text()
    assert "_Tables only: no plots (--no-plots)._" in md and ".png" not in md
    assert "`costmodel report effnet --no-plots -o r.md`" in md
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]


def test_report_states_no_absolute_path(tmp_path):
    out = tmp_path / "deep" / "r.md"
    out.parent.mkdir()
    assert runner.invoke(app, ["report", "effnet", "-o", str(out)]).exit_code == 0
    md = out.read_text()
    assert str(tmp_path) not in md
    assert "`costmodel report effnet -o r.md`" in md


def test_single_model_report_has_no_scatter(tmp_path):
    out = tmp_path / "r.md"
    assert runner.invoke(app, ["report", "effnet", "-o", str(out)]).exit_code == 0
    assert "flops-vs-params" not in out.read_text()
    assert sorted(p.name for p in (tmp_path / "r_files").iterdir()) == [
        ".costmodel-manifest.json", "layers-effnet.png"]


def test_many_layers_are_summed_per_block():
    r = evaluate_model("skipnet-cifar-110")
    assert len(r.rows) > plots.MAX_BARS
    data = plots.layer_bars_data(r, r.model, "x.png")
    assert len(data.bars) <= plots.MAX_BARS and "per block" in data.title
    assert sum(b.flops for b in data.bars) == r.totals.flops  # summed, nothing lost
    assert sum(b.mac for b in data.bars) == sum(x.mac for x in r.rows)
    small = evaluate_model("effnet")
    assert len(plots.layer_bars_data(small, "effnet", "x.png").bars) == len(small.rows)


def test_rerun_removes_plots_of_models_no_longer_reported(tmp_path):
    out = tmp_path / "r.md"
    assert runner.invoke(app, ["report", "effnet", "effnet-baseline", "-o", str(out)]).exit_code == 0
    assert runner.invoke(app, ["report", "effnet", "-o", str(out)]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "r_files").iterdir()) == [
        ".costmodel-manifest.json", "layers-effnet.png"]  # one model: no scatter


@pytest.mark.parametrize("command", [
    "compare effnet mobilenet --input 32", "show effnet -f json", "list",
    "check --budgets examples/budgets.yaml",
])
def test_only_the_report_path_imports_matplotlib(command):
    code = ("import sys; from typer.testing import CliRunner; from costmodel.cli import app; "
            f"r = CliRunner().invoke(app, {command.split()!r}); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('matplotlib', 'torch', 'fvcore') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_committed_reports_are_fresh():
    """Regenerate reports/ into a temporary folder; Markdown must match exactly, plots by the
    data they show (and pixel for pixel under the matplotlib version that drew them).
    Fix a failure with: python -m costmodel.report.regenerate"""
    reports = ROOT / "reports"
    assert check(reports / CONFIG_NAME, reports) == []


def test_staleness_is_detected(tmp_path):
    """The freshness check is not vacuous: edited text, changed data and missing files show."""
    config = tmp_path / CONFIG_NAME
    config.write_text("reports:\n  - {name: a, title: A, models: [effnet, effnet-baseline], "
                      "input: 32}\n")
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    regenerate(config, committed)
    regenerate(config, fresh)
    assert compare_dirs(committed, fresh) == []
    md = committed / "a.md"
    md.write_text(md.read_text().replace("5.64M", "5.65M"))
    png = committed / "a_files" / "layers-effnet.png"
    shutil.copy(committed / "a_files" / "layers-effnet-baseline.png", png)
    (committed / "a_files" / "flops-vs-params.png").unlink()
    assert compare_dirs(committed, fresh) == [
        "a_files/flops-vs-params.png: missing (not committed)",
        "a.md: the Markdown differs",
        "a_files/layers-effnet.png: the plotted data differs"]
