"""The Table model and its four renderings."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from costmodel.render.format import pct, ratio, si

Format = Literal["table", "markdown", "csv", "json"]
FORMATS: tuple[str, ...] = ("table", "markdown", "csv", "json")

Kind = Literal["text", "int", "si", "ratio", "pct"]
_HUMAN: dict[str, Callable[[Any], str]] = {
    "text": lambda v: "" if v is None else str(v),
    "int": lambda v: "" if v is None else f"{v:,}",
    "si": si,
    "ratio": ratio,
    "pct": pct,
}


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: Kind = "text"

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


@dataclass
class Table:
    """Rows of raw values (dicts keyed by column key) with a title and notes.

    ``footer`` rows (totals) render after a rule; ``notes`` state the conventions; ``marks``
    holds (row index, column key) cells to emphasise (red in a terminal, bold in Markdown).
    """

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    footer: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    marks: set[tuple[int, str]] = field(default_factory=set)

    def human(self, row: dict[str, Any], col: Column) -> str:
        return _HUMAN[col.kind](row.get(col.key))


def to_markdown(tables: list[Table]) -> str:
    out = []
    for t in tables:
        out.append(f"**{t.title}**\n")
        out.append("| " + " | ".join(c.header for c in t.columns) + " |")
        out.append("|" + "|".join("---:" if c.numeric else "---" for c in t.columns) + "|")
        for i, row in enumerate(t.rows):
            cells = [t.human(row, c) for c in t.columns]
            cells = [f"**{v}** ⚠" if (i, c.key) in t.marks else v
                     for v, c in zip(cells, t.columns)]
            out.append("| " + " | ".join(v.replace("|", "\\|") for v in cells) + " |")
        for row in t.footer:
            out.append("| " + " | ".join(f"**{t.human(row, c)}**" if t.human(row, c) else ""
                                         for c in t.columns) + " |")
        out.extend(["", *(f"_{n}_" for n in t.notes), ""])
    return "\n".join(out).rstrip() + "\n"


def to_csv(tables: list[Table]) -> str:
    """Raw values; each table starts with '#' comment lines (title, notes) that
    ``pandas.read_csv(comment='#')`` skips."""
    buf = io.StringIO()
    for k, t in enumerate(tables):
        if k:
            buf.write("\n")
        buf.write(f"# {t.title}\n")
        for n in t.notes:
            buf.write(f"# {n}\n")
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([c.key for c in t.columns])
        for row in [*t.rows, *t.footer]:
            writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in t.columns])
    return buf.getvalue()


def to_rich(tables: list[Table]):
    """Rich renderables (imported here: only the terminal format needs rich)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    items = []
    for t in tables:
        rt = RichTable(title=t.title, title_justify="left", caption="\n".join(t.notes),
                       caption_justify="left", show_footer=False, header_style="bold")
        for c in t.columns:
            rt.add_column(c.header, justify="right" if c.numeric else "left",
                          no_wrap=c.numeric)
        for i, row in enumerate(t.rows):
            rt.add_row(*[Text(t.human(row, c), style="bold red" if (i, c.key) in t.marks else "")
                         for c in t.columns],
                       end_section=(i == len(t.rows) - 1 and bool(t.footer)))
        for row in t.footer:
            rt.add_row(*[Text(t.human(row, c), style="bold") for c in t.columns])
        items.append(rt)
    return items


def render(tables: Table | list[Table], fmt: str, json_payload: Any = None) -> str | list:
    """Render tables as ``fmt``. JSON renders ``json_payload`` (the command's stable contract),
    or the tables' raw rows when none is given. The terminal format returns rich renderables;
    every other format returns text."""
    tables = [tables] if isinstance(tables, Table) else list(tables)
    if fmt == "json":
        payload = json_payload if json_payload is not None else [
            {"title": t.title, "notes": t.notes, "rows": t.rows + t.footer} for t in tables]
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return to_markdown(tables)
    if fmt == "csv":
        return to_csv(tables)
    if fmt == "table":
        return to_rich(tables)
    raise ValueError(f"unknown format {fmt!r}")
