"""The Table model and its four renderings.

Text from specs (model, layer and variant names, descriptions, notes) reaches every
rendering, so each one makes it safe here, once for every command: control characters —
C0 (ESC, CR, BEL, newline…), DEL, C1 and Unicode's bidirectional and line-separator
controls — are shown escaped (``\\x1b``, ``\\u202e``), never sent to a terminal or left to
break a row; the terminal table builds rich ``Text`` (no markup, no emoji codes); Markdown
escapes ``|``; CSV quotes with the csv module. JSON is left to ``json.dumps``, which escapes
control characters itself.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from costmodel.render.format import pct, ratio, si, significant
from costmodel.shape import Shape

Format = Literal["table", "markdown", "csv", "json"]
FORMATS: tuple[str, ...] = ("table", "markdown", "csv", "json")

_BEYOND_C0 = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
"""Characters that move the cursor, change colours or reorder text: C0 (tab and newline
too), DEL, C1, and the bidirectional marks, embeddings, overrides and isolates (the "Trojan
Source" characters) and U+2028/U+2029."""
_JSON_RAW = re.compile(f"[{_BEYOND_C0}]")  # the controls json.dumps leaves raw
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(m: re.Match) -> str:
    c = m.group()
    code = ord(c)
    return _SHORT.get(c) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """``text`` with every control character written as its escape, on one line: ESC[31m
    becomes '\\x1b[31m', a newline '\\n', U+202E '\\u202e'."""
    return _CONTROLS.sub(_escape_char, text) if _CONTROLS.search(text) else text


Kind = Literal["text", "int", "si", "ratio", "pct", "excess", "seconds", "ms"]
_HUMAN: dict[str, Callable[[Any], str]] = {
    "text": lambda v: "" if v is None else str(v),
    "int": lambda v: "" if v is None else f"{v:,}",
    "si": si,
    "ratio": ratio,
    "pct": pct,
    "excess": lambda v: "—" if not v else si(v),  # how far over a limit; a met one is not "0"
    "seconds": lambda v: "" if v is None else significant(1e3 * v),  # raw seconds, read in ms
    "ms": lambda v: "" if v is None else significant(v),  # milliseconds, 3 significant digits
}


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: Kind = "text"
    drop: int = 0
    """0: always in the terminal table. n > 0: a secondary column (a relative factor, a value
    in bytes) that a terminal too narrow for the whole table leaves out — those with drop=1
    first, all of one number together; a note under the table names them. The other formats
    keep every column."""

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


@dataclass
class Table:
    """Rows of raw values (dicts keyed by column key) with a title and notes.

    ``footer`` rows (totals) render after a rule; ``notes`` are lines under the table, each a
    str or an object that renders as ``str(note)`` (the counting conventions,
    ``costmodel.options.Conventions``, which a reader can then find by type); ``marks`` holds
    (row index, column key) cells to emphasise (red in a terminal, bold in Markdown).
    """

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    footer: list[dict[str, Any]] = field(default_factory=list)
    notes: list[Any] = field(default_factory=list)
    marks: set[tuple[int, str]] = field(default_factory=set)

    def note_lines(self) -> list[str]:
        return [str(n) for n in self.notes]

    def human(self, row: dict[str, Any], col: Column) -> str:
        """The cell as people read it, control characters escaped."""
        return escape_controls(_HUMAN[col.kind](row.get(col.key)))


def _md(text: str) -> str:
    """Text for one Markdown table cell or line: controls escaped (so no newline ends the
    row) and '|' escaped (so no cell splits)."""
    return escape_controls(text).replace("|", "\\|")


def to_markdown(tables: list[Table]) -> str:
    out = []
    for t in tables:
        out.append(f"**{_md(t.title)}**\n")
        out.append("| " + " | ".join(_md(c.header) for c in t.columns) + " |")
        out.append("|" + "|".join("---:" if c.numeric else "---" for c in t.columns) + "|")
        for i, row in enumerate(t.rows):
            cells = [_md(t.human(row, c)) for c in t.columns]
            cells = [f"**{v}** ⚠" if (i, c.key) in t.marks else v
                     for v, c in zip(cells, t.columns)]
            out.append("| " + " | ".join(cells) + " |")
        for row in t.footer:
            cells = [_md(t.human(row, c)) for c in t.columns]
            out.append("| " + " | ".join(f"**{v}**" if v else "" for v in cells) + " |")
        out.extend(["", *(f"_{_md(n)}_" for n in t.note_lines()), ""])
    return "\n".join(out).rstrip() + "\n"


def to_csv(table: Table) -> str:
    """One table as CSV that ``pandas.read_csv`` and ``csv.reader`` load as they are: a header
    of column keys, then one line per row. Title, notes (the counting conventions among them)
    and footer rows (totals) are left out: a line of prose or a total would be read as data.
    The table and JSON formats carry them. A column of shapes (``costmodel.shape.Shape``) is
    written as its text (``32×112×112``) followed by numeric ``<p>_c``, ``<p>_h``, ``<p>_w``
    columns (``out_`` for ``output``, ``in_`` for ``input``); a flattened vector has only C,
    so its H and W are empty (a pandas NaN), as its JSON shape is ``[C]``."""
    shaped = {c.key for c in table.columns
              if any(isinstance(r.get(c.key), Shape) for r in table.rows)}
    header: list[str] = []
    for c in table.columns:
        header.append(c.key)
        if c.key in shaped:
            header += [f"{_SHAPE_PREFIX.get(c.key, c.key)}_{d}" for d in "chw"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        cells = []
        for c in table.columns:
            v = row.get(c.key)
            cells.append(_csv_cell(str(v) if isinstance(v, Shape) else v))
            if c.key in shaped:
                cells += _shape_cells(v)
        writer.writerow(cells)
    return buf.getvalue()


_SHAPE_PREFIX = {"output": "out", "input": "in"}


def _shape_cells(v: Any) -> list[Any]:
    """C, H, W of a shape for CSV; H and W empty for a flattened vector (it has none)."""
    if not isinstance(v, Shape):
        return ["", "", ""]
    return [v.c, "", ""] if v.flat else [v.c, v.h, v.w]


def _csv_cell(v: Any) -> Any:
    """A raw value for CSV: numbers as they are, text with its controls escaped (the csv
    module quotes commas, quotes and newlines, so a row stays one row)."""
    if v is None:
        return ""
    return escape_controls(v) if isinstance(v, str) else v


TERMINAL_ROWS = 1_000
"""Rows of one table the terminal format draws. Rich lays a table out at about 1 ms a row, so
a network of 100,000 layers would take minutes to draw and nobody reads that many rows in a
terminal; past this the table says how many rows it left out, and the other formats (CSV,
JSON, Markdown) list every row."""


def to_rich(tables: list[Table]) -> list[FittedTable]:
    """Rich renderables, each fitting the width it is drawn at."""
    return [FittedTable(t) for t in tables]


PATH_KEY = "path"
"""The key of a layer-path column: a too-long path is shortened from the middle."""
MIN_PATH = 16
"""The fewest cells a shortened path keeps (below that a path no longer says where it is)."""


def shorten_middle(path: str, width: int) -> str:
    """``path`` in about ``width`` characters: its first segment, '…', and as much of its tail
    as fits, starting at a segment boundary unless that would waste more than a third of the
    room: 'stage2.units.0.branch_main.conv1' at 27 is 'stage2.…0.branch_main.conv1'."""
    if len(path) <= width:
        return path
    first, dot, _ = path.partition(".")
    head = first + dot if dot and len(first) + 1 <= width // 3 else ""
    room = max(width - len(head) - 1, 1)
    tail = path[-room:]
    cut = tail.find(".")
    if path[-room - 1] != "." and 0 <= cut < room // 3 and cut < len(tail) - 1:
        tail = tail[cut + 1:]  # start at a segment, not inside one
    return f"{head}…{tail}"


class FittedTable:
    """A Table drawn by Rich at the width it is given (``options.max_width``: the terminal's,
    or ``COLUMNS``): the name column (the first text column: model or layer) whole, numbers
    whole. When the table is wider than that, secondary columns (``Column.drop``) go first,
    then layer paths are shortened from the middle (tail kept), and only then do the other
    text columns wrap. Cell texts and their widths are computed once, here (a 1,000-row table
    lays out in about a second; measuring it through Rich would double that)."""

    def __init__(self, table: Table):
        from rich.cells import cell_len

        t = table
        self.table = t
        self.rows = t.rows[:TERMINAL_ROWS]
        # a marked cell says so in characters too (⚠, as in Markdown): colour is lost in a pipe
        self.cells = [[t.human(row, c) + (" ⚠" if (i, c.key) in t.marks else "")
                       for c in t.columns] for i, row in enumerate(self.rows)]
        self.footer = [[t.human(row, c) for c in t.columns] for row in t.footer]
        self.headers = [escape_controls(c.header) for c in t.columns]
        self.widths = [max([cell_len(h), *(cell_len(r[j]) for r in self.cells + self.footer)])
                       for j, h in enumerate(self.headers)]  # content, without padding
        self.name = next((j for j, c in enumerate(t.columns) if not c.numeric), None)

    @staticmethod
    def _width(widths) -> int:
        """A table's width: each column's content, 2 cells of padding and a border after it,
        and the left border."""
        return sum(w + 3 for w in widths) + 1

    @property
    def natural_width(self) -> int:
        return self._width(self.widths)

    def fit(self, width: int) -> tuple[list[int], int | None]:
        """The columns kept at ``width`` (indices) and the width layer paths are shortened to
        (None: not shortened)."""
        cols = self.table.columns
        kept = list(range(len(cols)))
        for n in sorted({c.drop for c in cols if c.drop}):
            if self._width(self.widths[j] for j in kept) <= width:
                break
            kept = [j for j in kept if cols[j].drop != n]
        over = self._width(self.widths[j] for j in kept) - width
        j = self.name
        if over > 0 and j is not None and cols[j].key == PATH_KEY:
            return kept, max(self.widths[j] - over, MIN_PATH)
        return kept, None

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        return Measurement(min(self.natural_width, options.max_width), self.natural_width)

    def __rich_console__(self, console, options):
        yield self.build(options.max_width)

    def build(self, width: int):
        from rich.table import Table as RichTable
        from rich.text import Text

        # Text, never str: rich would read a str's [red] as markup and :smile: as an emoji.
        t, cols = self.table, self.table.columns
        kept, path_width = self.fit(width)
        notes = t.note_lines()
        if len(t.rows) > len(self.rows):
            notes.insert(0, f"The first {len(self.rows):,} of {len(t.rows):,} rows are shown "
                            "(totals count every row); --format csv or json lists every row.")
        left_out = list(dict.fromkeys(self.headers[j] for j in range(len(cols))
                                      if j not in kept))
        if left_out:
            notes.insert(0, f"left out at {width} columns: {', '.join(left_out)}; "
                            "--format csv|json has every column")
        caption = Text("\n".join(escape_controls(n) for n in notes))
        rt = RichTable(title=Text(escape_controls(t.title)), title_justify="left",
                       caption=caption, caption_justify="left", show_footer=False,
                       header_style="bold")
        for j in kept:
            c = cols[j]
            if c.numeric or j == self.name:  # never cut: as wide as the widest cell
                rt.add_column(Text(self.headers[j]), justify="right" if c.numeric else "left",
                              no_wrap=True, min_width=path_width if path_width and j == self.name
                              else self.widths[j])
            else:
                rt.add_column(Text(self.headers[j]), overflow="fold")

        def cells(texts: list[str]) -> list[str]:
            if path_width is not None:
                texts = [*texts]
                texts[self.name] = shorten_middle(texts[self.name], path_width)
            return [texts[j] for j in kept]

        last = len(self.rows) - 1
        for i, texts in enumerate(self.cells):
            rt.add_row(*[Text(v, style="bold red" if (i, cols[j].key) in t.marks else "")
                         for j, v in zip(kept, cells(texts))],
                       end_section=(i == last and bool(t.footer)))
        for texts in self.footer:
            rt.add_row(*[Text(v, style="bold") for v in cells(texts)])
        return rt


def to_json(payload: Any) -> str:
    """JSON, UTF-8 as it is, except that the controls json.dumps leaves raw (DEL, C1, bidi)
    become \\u escapes too: the same JSON value, safe in a terminal. (They can only be inside
    strings: JSON's own syntax is ASCII.)"""
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text) \
        if _JSON_RAW.search(text) else text


def render(tables: Table | list[Table] | dict[str, Table], fmt: str, json_payload: Any = None,
           table: str | None = None) -> str | list:
    """Render tables as ``fmt``. JSON renders ``json_payload`` (the command's stable contract),
    or the tables' raw rows when none is given. The terminal format returns rich renderables;
    every other format returns text.

    ``tables`` may be named (a dict, the main table first); ``table`` selects one of them for
    every format but JSON. CSV holds one table, so that it loads as it is: the selected one,
    or the first."""
    if isinstance(tables, dict):
        named = tables
        tables = [named[table]] if table is not None and fmt != "json" else list(named.values())
    tables = [tables] if isinstance(tables, Table) else list(tables)
    if fmt == "json":
        payload = json_payload if json_payload is not None else [
            {"title": t.title, "notes": t.note_lines(), "rows": t.rows + t.footer} for t in tables]
        return to_json(payload)
    if fmt == "markdown":
        return to_markdown(tables)
    if fmt == "csv":
        return to_csv(tables[0])
    if fmt == "table":
        return to_rich(tables)
    raise ValueError(f"unknown format {fmt!r}")
