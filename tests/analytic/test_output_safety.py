"""Text from a spec cannot drive the terminal or break a row: control characters are
escaped in every text format, rich markup is not interpreted, a CSV or Markdown row is always
one row, and JSON gives the text back exactly."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from costmodel.cli import app
from costmodel.render import Column, Table, render
from costmodel.render.table import escape_controls

runner = CliRunner()

NAME = "\x1b[31mRED\n|x|\r[red]r[/red]\x07,\"q\"#h\u202eevil\x9b2J"
"""ESC, newline, '|', CR, rich markup, BEL, a comma and quotes, '#', a bidi override, C1 CSI."""
SHOWN = r"\x1b[31mRED\n|x|\r[red]r[/red]\x07,\"q\"#h\u202eevil\x9b2J".replace('\\"', '"')
"""NAME as the text formats show it: each control character written as its escape."""
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Control characters that must not reach the output (newline aside: it ends lines)."""
LAYERS = 4  # the spec's rows; `show` adds a total


@pytest.fixture
def spec(tmp_path):
    file = tmp_path / "evil.yaml"
    file.write_text(yaml.safe_dump({
        "name": NAME, "description": NAME, "notes": [NAME], "input": 8,
        "variants": {"v": {"description": NAME, "width": 0.5}},
        "layers": [{"type": "conv", "name": "c", "out": 4}, {"type": "global_pool"},
                   {"type": "flatten"}, {"type": "linear", "out": 2}]}))
    return str(file)


def test_shown_form():
    assert escape_controls(NAME) == SHOWN
    assert escape_controls("plain ×—é 名") == "plain ×—é 名"  # printable text untouched


def _invoke(*args: str):
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    assert not RAW.search(res.stdout), repr(RAW.search(res.stdout))
    return res.stdout


@pytest.mark.parametrize("command", [["show"], ["compare"], ["compare", "mobilenet"]])
def test_terminal_table(spec, command):
    out = _invoke(*command[:1], spec, *command[1:], "-f", "table")
    assert SHOWN.split("|")[0] in out  # the escaped name, its markup as plain text
    assert "[red]r[/red]" in out


def _markdown_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def _cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line)) - 2  # '|' not escaped with a backslash


@pytest.mark.parametrize("command,rows", [(["show"], LAYERS + 1), (["compare"], 1),
                                          (["compare", "mobilenet"], 2)])
def test_markdown_rows_stay_rows(spec, command, rows):
    out = _invoke(*command[:1], spec, *command[1:], "-f", "markdown")
    first = out.split("\n\n")[1]  # the first table, after its title
    lines = _markdown_rows(first)
    assert len(lines) == rows + 2  # header, rule, rows
    assert len({_cells(line) for line in lines}) == 1
    assert SHOWN.replace("|", "\\|") in out  # in the title (and in compare's model cell)


@pytest.mark.parametrize("command,rows", [(["show"], LAYERS), (["compare"], 1),
                                          (["compare", "mobilenet"], 2)])
def test_csv_rows_stay_rows(spec, command, rows):
    import pandas as pd

    out = _invoke(*command[:1], spec, *command[1:], "-f", "csv")
    parsed = list(csv.reader(io.StringIO(out)))
    assert len(parsed) == rows + 1 and len({len(r) for r in parsed}) == 1
    frame = pd.read_csv(io.StringIO(out))  # as it is, no options
    assert len(frame) == rows
    if command[0] == "compare":
        assert frame["model"].iloc[0] == SHOWN


@pytest.mark.parametrize("command", [["show"], ["compare", "mobilenet"]])
def test_json_gives_the_name_back(spec, command):
    out = _invoke(*command[:1], spec, *command[1:], "-f", "json")
    data = json.loads(out)
    first = data if isinstance(data, dict) else data[0]
    assert first["model"] == NAME


def test_errors_on_stderr_are_escaped(tmp_path):
    res = runner.invoke(app, ["show", "no\x1b]0;owned\x07such\nmodel"])
    assert res.exit_code == 2
    assert not RAW.search(res.stderr) and res.stderr.count("\n") == 1
    assert "no\\x1b]0;owned\\x07such\\nmodel" in res.stderr


def test_renderer_escapes_headers_titles_notes_and_cells():
    t = Table("t\x1b", [Column("k\n", "h|\x1b"), Column("n", "n", "int")],
              [{"k\n": "a\x1bb", "n": 1}], footer=[{"k\n": "tot\r", "n": 1}],
              notes=["note\u202e"])
    for fmt in ("markdown", "csv"):
        text = render(t, fmt)
        assert not RAW.search(text), fmt
    md = render(t, "markdown")
    assert "| h\\|\\x1b | n |" in md and "| a\\x1bb | 1 |" in md and "**tot\\r**" in md
    from rich.console import Console

    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    for item in render(t, "table"):
        console.print(item)
    shown = console.file.getvalue()
    assert "\x1b" not in shown and "\\x1b" in shown and "\\u202e" in shown
    j = render(t, "json")
    assert "\u202e" not in j and json.loads(j)[0]["notes"] == ["note\u202e"]
