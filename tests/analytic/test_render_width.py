"""The terminal table at 80, 100 and 200 columns (issue 15, item 1): the name column whole
(layer paths whole or shortened from the middle with their tail), every number of a primary
column whole, no line wider than the terminal, and a note naming the columns left out."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from costmodel.api import evaluate_model
from costmodel.budgets import check_budgets, check_table, load_budgets
from costmodel.cli import app
from costmodel.render.table import FittedTable, Table, shorten_middle
from costmodel.views import compare_table, layers_table

runner = CliRunner()
BUDGETS = Path(__file__).resolve().parents[2] / "examples" / "budgets.yaml"
COMPARED = ["mobilenet_v3_large", "mobilenet_v2", "efficientnet_b0"]
WIDTHS = [80, 100, 200]


def run(args: list[str], width: int | None) -> str:
    out = runner.invoke(app, args, env={"COLUMNS": None if width is None else str(width)})
    assert out.exit_code == 0, out.output
    return out.output


def parse(output: str) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, body rows (cells stripped; a wrapped cell's continuation lines are dropped) and
    the lines under the table, from Rich's heavy-head box."""
    lines = output.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("┃"))
    headers = [c.strip() for c in lines[head].strip().strip("┃").split("┃")]
    end = next(i for i, ln in enumerate(lines) if ln.startswith("└"))
    rows = [[c.strip() for c in ln.strip().strip("│").split("│")]
            for ln in lines[head + 2:end] if ln.startswith("│")]
    return headers, [r for r in rows if r[0]], [ln.rstrip() for ln in lines[end + 1:]]


def check_fit(output: str, table: Table, width: int) -> tuple[list[str], list[list[str]]]:
    """Every line within ``width``; every primary column shown, its numbers whole; the note
    naming exactly the columns left out (none: no note)."""
    assert max(cell_len(ln) for ln in output.splitlines()) <= width
    headers, rows, under = parse(output)
    assert [r for r in rows if len(r) != len(headers)] == []
    cols = {c.header: c for c in table.columns}
    assert all(c.header in headers for c in table.columns if not c.drop)
    left_out = list(dict.fromkeys(c.header for c in table.columns if c.header not in headers))
    caption = " ".join(ln.strip() for ln in under)  # the caption wraps at the width
    notes = [caption] if caption.startswith("left out") else []
    if left_out:
        assert notes and notes[0].startswith(f"left out at {width} columns: "
                                             f"{', '.join(left_out)}; --format csv|json has "
                                             "every column")
    else:
        assert notes == []
    body = table.rows + table.footer
    assert len(rows) == len(body)
    for row, cells in zip(body, rows):
        for header, cell in zip(headers, cells):
            c = cols[header]
            if c.numeric and not c.drop:
                assert cell == table.human(row, c)
    return headers, rows


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_names_and_numbers_whole(width):
    table = compare_table([evaluate_model(m) for m in COMPARED])
    headers, rows = check_fit(run(["compare", *COMPARED], width), table, width)
    assert [r[0] for r in rows] == [r["model"] for r in table.rows]
    assert [r[headers.index("FLOPs")] for r in rows] == [
        table.human(r, table.columns[3]) for r in table.rows]
    if width == 80:  # the secondary columns go, and only they
        assert "rel." not in headers and "MAC bytes" not in headers
    if width == 200:
        assert headers == [c.header for c in table.columns]


@pytest.mark.parametrize("width", WIDTHS)
def test_show_paths_whole_or_their_tail(width):
    result = evaluate_model("shufflenet_v2_x1_0")
    table = layers_table(result)
    headers, rows = check_fit(run(["show", "shufflenet_v2_x1_0"], width), table, width)
    shortened = 0
    for row, cells in zip(table.rows, rows):
        path, shown = row["path"], cells[0]
        if shown != path:
            shortened += 1
            head, tail = shown.split("…")
            assert path.startswith(head) and path.endswith(tail) and len(tail) >= 8
    longest = max(len(r["path"]) for r in table.rows)
    if width == 200:
        assert shortened == 0 and headers == [c.header for c in table.columns]
    if width == 80:  # even with the secondary columns gone, the longest paths don't fit
        assert 0 < shortened and "activations" not in headers and longest > len(rows[0][0])


@pytest.mark.parametrize("width", WIDTHS)
def test_check_names_and_numbers_whole(width):
    table = check_table(check_budgets(load_budgets(BUDGETS), BUDGETS))
    out = run(["check", "--budgets", str(BUDGETS)], width)
    headers, rows = check_fit(out, table, width)
    assert [r[0] for r in rows] == [r["name"] for r in table.rows]
    assert "mobilenet-0.5" in out and "tiny-net vs mobilenet-0.5" in out


def test_pipe_without_columns_is_never_cut():
    """No COLUMNS and no terminal: as wide as the widest table (at least 160), nothing left
    out or shortened."""
    table = layers_table(evaluate_model("shufflenet_v2_x1_0"))
    out = run(["show", "shufflenet_v2_x1_0"], None)
    headers, rows = check_fit(out, table, max(160, FittedTable(table).natural_width))
    assert headers == [c.header for c in table.columns]
    assert [r[0] for r in rows] == [r["path"] for r in table.rows + table.footer]


def test_natural_width_is_what_rich_draws():
    """The arithmetic that decides what to leave out agrees with Rich's own layout."""
    fitted = FittedTable(compare_table([evaluate_model(m) for m in COMPARED]))
    from rich.console import Console

    console = Console(width=500, record=True, file=open("/dev/null", "w"))
    console.print(fitted.build(500))
    table_lines = [ln for ln in console.export_text().splitlines() if ln[:1] in "┏┃┡│└"]
    assert {cell_len(ln) for ln in table_lines} == {fitted.natural_width}


def test_shorten_middle():
    assert shorten_middle("stage2.units.0.branch_main.conv1", 27) == "stage2.…0.branch_main.conv1"
    assert shorten_middle("conv1", 27) == "conv1"
    s = shorten_middle("stage2.units.0.branches.right.pw1_act", 24)
    assert len(s) <= 24 and s.startswith("stage2.…") and s.endswith("…right.pw1_act")  # from a segment
    assert shorten_middle("abcdefghijklmnopqrstuvwxyz", 10) == "…rstuvwxyz"


def test_a_table_without_rows_renders():
    """An empty table (rules' findings on a network with none; found by test_fuzz) draws its
    headers — a width of one header alone once crashed max()."""
    from rich.console import Console

    from costmodel.render import Column, Table, render

    empty = Table("No findings", [Column("rule", "rule"), Column("value", "value", "si")], [])
    console = Console(width=80, record=True, file=io.StringIO())
    for item in render(empty, "table"):
        console.print(item)
    assert "rule" in console.export_text()
