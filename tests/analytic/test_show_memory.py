"""show reports the peak memory by tensor lifetime (costmodel.analysis.memory) beside the
largest feature map: a note under the layers table and three totals in its JSON; compare
does not (its cold path stays without the memory replay)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from costmodel.cli import app

runner = CliRunner()

SPEC = """
name: tiny
input: 8
layers:
  - {name: conv, type: conv, out: 4, kernel: 3}
  - {name: act, type: relu}
"""
INPUT = 3 * 8 * 8
MAP = 4 * 8 * 8
PEAK = INPUT + MAP + MAP  # at act: the input, conv's output (act's input) and act's output


def test_show_json_totals_hold_the_peak_by_lifetime(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    res = runner.invoke(app, ["show", str(spec), "-f", "json"])
    assert res.exit_code == 0, res.output
    totals = json.loads(res.stdout)["totals"]
    assert totals["peak_activation"] == MAP
    assert totals["peak_memory"] == PEAK and totals["peak_memory_layer"] == "act"
    assert totals["peak_memory_bytes"] == 4 * PEAK  # float32
    res = runner.invoke(app, ["show", str(spec), "-f", "json", "--batch", "2", "--dtype",
                              "float16"])
    totals = json.loads(res.stdout)["totals"]
    assert totals["peak_memory"] == 2 * PEAK and totals["peak_memory_bytes"] == 2 * 2 * PEAK


def test_show_table_notes_it_beside_the_peak_activation(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    res = runner.invoke(app, ["show", str(spec), "--table", "layers"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("peak activation"))
    assert lines[at + 1].startswith(f"peak memory (tensors alive at once): {PEAK:,} elements")
    assert "at act" in " ".join(lines[at + 1:at + 3])


def test_compare_json_is_unchanged(tmp_path):
    res = runner.invoke(app, ["compare", "mobilenet", "-f", "json"])
    assert res.exit_code == 0 and "peak_memory" not in res.stdout
