"""costmodel diff: per-layer and total deltas, layers matched by path; a spec file at a git
revision; budgets' baseline at a revision. Expected deltas are computed from the formulas."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costmodel.analysis.diff import diff_results
from costmodel.api import evaluate_model
from costmodel.cli import app
from costmodel.options import Options

runner = CliRunner()
MOBILENET_FLOPS = 568_740_352      # MobileNet V1 1.0-224
MOBILENET_05_FLOPS = 149_497_088   # α = 0.5: the paper's 150M

NET = """\
name: net
input: 16
layers:
  - {name: c1, type: conv, out: 8, kernel: 3}
  - {name: bn, type: bn}
  - {name: act, type: relu}
  - {name: c2, type: conv, out: C2, kernel: 1}
"""
HW = 16 * 16
C1_FLOPS = 3 * 3 * 3 * 8 * HW      # k·k·C_in·C_out·H·W


def spec(folder: Path, c2: int = 16, name: str = "net.yaml", text: str = NET) -> Path:
    path = folder / name
    path.write_text(text.replace("C2", str(c2)))
    return path


def run(*args: str):
    return runner.invoke(app, ["diff", *map(str, args)])


def as_json(*args: str) -> dict:
    res = run(*args, "-f", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_one_conv_widened_is_one_changed_layer(tmp_path):
    """c2 (1×1, 8 → 16) becomes 8 → 24: only c2 changes, by the conv formula."""
    a, b = spec(tmp_path, 16, "a.yaml"), spec(tmp_path, 24, "b.yaml")
    data = as_json(a, b)
    (layer,) = data["layers"]
    assert layer["path"] == "c2" and layer["status"] == "changed"
    assert layer["delta"] == {"flops": 8 * (24 - 16) * HW,          # C_in·ΔC_out·H·W
                              "params": 8 * (24 - 16),               # C_in·ΔC_out, no bias
                              "mac": (24 - 16) * HW + 8 * (24 - 16),  # output + weights
                              "activations": (24 - 16) * HW}
    assert layer["a"]["output"] == [16, 16, 16] and layer["b"]["output"] == [24, 16, 16]
    flops = data["totals"]["flops"]
    a_flops = C1_FLOPS + 8 * 16 * HW
    assert flops == {"a": a_flops, "b": C1_FLOPS + 8 * 24 * HW, "delta": 8 * 8 * HW,
                     "relative": 8 * 8 * HW / a_flops}
    peak = data["totals"]["peak_activation"]  # c2's output is the largest map on both sides
    assert (peak["a"], peak["b"], peak["delta"]) == (16 * HW, 24 * HW, 8 * HW)


def test_json_contract(tmp_path):
    a, b = spec(tmp_path, 16, "a.yaml"), spec(tmp_path, 24, "b.yaml")
    data = as_json(a, b)
    assert {"a", "b", "totals", "layers"} <= set(data)
    assert data["a"] == str(a) and data["b"] == str(b) and data["input"] == {"a": [16, 16],
                                                                             "b": [16, 16]}
    assert set(data["totals"]) == {"flops", "params", "mac", "mac_bytes", "peak_activation"}
    for change in data["totals"].values():
        assert set(change) == {"a", "b", "delta", "relative"}
        assert change["delta"] == change["b"] - change["a"]
    assert data["totals"]["mac_bytes"]["delta"] == 4 * data["totals"]["mac"]["delta"]  # float32
    for layer in data["layers"]:
        assert set(layer) == {"path", "status", "a", "b", "delta"}
        assert set(layer["delta"]) == {"flops", "params", "mac", "activations"}
    assert data["conventions"] == Options().conventions().record()


def test_identical_models_differ_in_nothing(tmp_path):
    a = spec(tmp_path)
    data = as_json(a, a)
    assert data["layers"] == []
    assert all(c["delta"] == 0 and c["relative"] == 0 for c in data["totals"].values())
    every = as_json(a, a, "--all")
    assert [(d["path"], d["status"]) for d in every["layers"]] == \
        [(p, "unchanged") for p in ("c1", "bn", "act", "c2")]


def test_added_and_removed_layers_in_place(tmp_path):
    """b drops the ReLU and adds a 1×1 conv after c2: the ReLU is listed where it was."""
    a = spec(tmp_path)
    b = spec(tmp_path, text=NET.replace("  - {name: act, type: relu}\n", "")
             + "  - {name: c3, type: conv, out: 4, kernel: 1}\n", name="b.yaml")
    data = as_json(a, b, "--all")
    assert [(d["path"], d["status"]) for d in data["layers"]] == [
        ("c1", "unchanged"), ("bn", "unchanged"), ("act", "removed"), ("c2", "unchanged"),
        ("c3", "added")]
    act, c3 = data["layers"][2], data["layers"][4]
    assert act["b"] is None and act["delta"]["mac"] == -act["a"]["mac"] == -(2 * 8 * HW)
    assert c3["a"] is None and c3["delta"]["flops"] == 16 * 4 * HW and \
        c3["delta"]["params"] == 16 * 4
    assert data["totals"]["flops"]["delta"] == 16 * 4 * HW
    assert [d["path"] for d in as_json(a, b)["layers"]] == ["act", "c3"]  # no --all


def test_mobilenet_half_width():
    data = as_json("mobilenet", "mobilenet-0.5")
    flops = data["totals"]["flops"]
    assert (flops["a"], flops["b"]) == (MOBILENET_FLOPS, MOBILENET_05_FLOPS)
    assert flops["delta"] == MOBILENET_05_FLOPS - MOBILENET_FLOPS
    assert flops["relative"] == pytest.approx((MOBILENET_05_FLOPS - MOBILENET_FLOPS)
                                              / MOBILENET_FLOPS)
    layers = {d["path"]: d for d in data["layers"]}
    assert layers["conv1"]["delta"]["flops"] == 3 * 3 * 3 * (16 - 32) * 112 * 112
    assert layers["fc"]["delta"]["params"] == (512 - 1024) * 1000  # the bias stays
    assert len(layers) == len(evaluate_model("mobilenet").rows)  # every layer is narrower


def test_diff_results_library_order_is_b_then_removed_in_place():
    a, b = evaluate_model("mobilenet"), evaluate_model("mobilenet-0.5")
    d = diff_results(a, b)
    assert (d.a, d.b) == (a.model, b.model)
    assert [x.path for x in d.layers] == [r.path for r in b.rows]
    assert d.totals["params"].delta == b.totals.params - a.totals.params


def test_markdown_opens_with_the_summary(tmp_path):
    a, b = spec(tmp_path, 16, "a.yaml"), spec(tmp_path, 24, "b.yaml")
    res = run(a, b, "-f", "markdown")
    assert res.exit_code == 0, res.output
    first = res.stdout.splitlines()[0]
    # FLOPs +16,384 of 88,064: 16.4k, +18.6%
    assert "FLOPs +16.4k (+18.6%)" in first and "params +64 (+17.8%)" in first
    assert first.startswith("**") and first.endswith("**")
    assert "| c2 | changed | +16.4k | +64 |" in res.stdout
    assert "| bn |" not in res.stdout  # unchanged: omitted


def test_csv_is_one_table_of_raw_values(tmp_path):
    import csv
    import io

    a, b = spec(tmp_path, 16, "a.yaml"), spec(tmp_path, 24, "b.yaml")
    res = run(a, b, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["path"] for r in rows] == ["c2"]
    assert int(rows[0]["flops_b"]) - int(rows[0]["flops_a"]) == int(rows[0]["flops_delta"])


def test_the_table_and_the_counting_options(tmp_path):
    a, b = spec(tmp_path, 16, "a.yaml"), spec(tmp_path, 24, "b.yaml")
    res = run(a, b, "--flops-per-madd", "2", "-f", "json")
    assert json.loads(res.stdout)["totals"]["flops"]["delta"] == 2 * 8 * 8 * HW
    res = run(a, b, "--input", "8")
    assert res.exit_code == 0 and "FLOPs +4.10k" in res.stdout  # 8·8·8·8


@pytest.mark.parametrize("args, message", [
    (["mobilenet"], "diff takes two models"),
    (["mobilenet", "shufflenet", "effnet"], "diff takes two models"),
    (["mobilenet", "nosuchnet"], "unknown model 'nosuchnet'"),
    (["mobilenet", "--rev", "HEAD"], "is not a spec file"),
    (["a.yaml", "b.yaml", "--rev", "HEAD"], "with --rev, diff takes one spec file"),
])
def test_invalid_input_is_exit_2(args, message):
    res = run(*args)
    assert res.exit_code == 2 and message in res.stderr, res.output


# --- git revisions ---------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A scratch repository whose one commit holds net.yaml (c2: 8 → 16)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for key, value in (("user.name", "test"), ("user.email", "test@example.com"),
                       ("commit.gpgsign", "false")):
        git(repo, "config", key, value)
    spec(repo, 16)
    git(repo, "add", "net.yaml")
    git(repo, "commit", "-q", "-m", "net")
    return repo


def test_rev_diffs_the_committed_spec_with_the_working_tree(repo, monkeypatch):
    spec(repo, 24)
    monkeypatch.chdir(repo)  # a relative path, as a user types it
    data = as_json("net.yaml", "--rev", "HEAD")
    assert (data["a"], data["b"]) == ("net.yaml@HEAD", "net.yaml")
    (layer,) = data["layers"]
    assert layer["path"] == "c2" and layer["delta"]["flops"] == 8 * 8 * HW


def test_rev_from_another_folder_and_a_subfolder(repo, tmp_path):
    (repo / "specs").mkdir()
    git(repo, "mv", "net.yaml", "specs/net.yaml")
    git(repo, "commit", "-q", "-m", "move")
    spec(repo / "specs", 8)
    data = as_json(repo / "specs" / "net.yaml", "--rev", "HEAD")
    assert data["totals"]["params"]["delta"] == 8 * (8 - 16)
    # the file did not exist at the first commit under that path
    res = run(repo / "specs" / "net.yaml", "--rev", "HEAD~1")
    assert res.exit_code == 2 and "has no file specs/net.yaml" in res.stderr


@pytest.mark.parametrize("rev, message", [
    ("nosuchbranch", "unknown revision 'nosuchbranch'"),
    ("--output=x", "is not a revision"),
    ("HEAD:net.yaml", "unknown revision"),
])
def test_bad_revisions_are_exit_2(repo, rev, message):
    res = run(repo / "net.yaml", f"--rev={rev}")
    assert res.exit_code == 2 and message in res.stderr, res.output
    assert not (repo / "x").exists()


def test_not_a_repository_and_no_git(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    path = spec(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    res = run(path, "--rev", "HEAD")
    assert res.exit_code == 2 and "not in a git repository" in res.stderr, res.output
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    res = run(path, "--rev", "HEAD")
    assert res.exit_code == 2 and "git is not installed" in res.stderr, res.output


def test_an_invalid_spec_at_the_revision_names_it(repo):
    (repo / "net.yaml").write_text("name: net\ninput: 16\nlayers: [{type: conv, out: -1}]\n")
    git(repo, "commit", "-q", "-am", "broken")
    spec(repo, 16)
    res = run(repo / "net.yaml", "--rev", "HEAD")
    assert res.exit_code == 2 and f"{repo / 'net.yaml'}@HEAD" in res.stderr, res.output
    assert "costmodel-rev-" not in res.stderr


# --- budgets: baseline at a revision ----------------------------------------------------


def check(repo: Path, entry: str):
    (repo / "budgets.yaml").write_text(textwrap.dedent(entry))
    return runner.invoke(app, ["check", "--budgets", str(repo / "budgets.yaml"), "-f", "json"])


def test_budget_baseline_at_a_revision(repo):
    spec(repo, 24)  # this change adds 8·8·HW FLOPs
    res = check(repo, """
        models:
          - model: net.yaml
            baseline: {rev: HEAD}
            limits: {flops: +0%, params: +20%}
    """)
    assert res.exit_code == 1, res.output
    flops, params = json.loads(res.stdout)["results"]
    before = C1_FLOPS + 8 * 16 * HW
    assert flops["baseline"] == "net.yaml@HEAD" and flops["baseline_value"] == before
    assert flops["value"] == before + 8 * 8 * HW and flops["status"] == "over"
    # params 216 + 16 + 128 → +64: 17.8%, within +20%
    assert params["baseline_value"] == 360 and params["status"] == "ok"
    assert "+0% of net.yaml@HEAD" in flops["rule"]


@pytest.mark.parametrize("baseline, message", [
    ("{rev: HEAD}", "baseline.rev: a revision holds spec files; 'mobilenet' is a zoo name"),
    ("{input: 128}", "a baseline names a model, a git revision (rev), or both"),
])
def test_budget_baseline_rev_needs_a_spec(repo, baseline, message):
    res = check(repo, f"""
        models:
          - model: mobilenet
            baseline: {baseline}
            limits: {{flops: +0%}}
    """)
    assert res.exit_code == 2 and message in res.stderr, res.output


def test_budget_baseline_at_an_unknown_revision(repo):
    res = check(repo, """
        models:
          - model: net.yaml
            baseline: {rev: nosuch}
            limits: {flops: +0%}
    """)
    assert res.exit_code == 2 and "models[0] (net.yaml)" in res.stderr
    assert "unknown revision 'nosuch'" in res.stderr
