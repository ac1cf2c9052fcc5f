"""One rendering layer for every command: a Table (or a list of them) becomes a terminal
table, Markdown, CSV or JSON. Tables for people use SI suffixes; CSV and JSON keep raw
integers."""

from costmodel.render.table import FORMATS, Column, Table, render

__all__ = ["FORMATS", "Column", "Table", "render"]
