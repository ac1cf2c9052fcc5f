"""What changed between two models: per-layer and total deltas of FLOPs, params, MAC and
activations — the everyday CI question "how much does this PR add?".

``diff_results(a, b)`` matches the layers of two evaluated models by path (added, removed,
changed, unchanged) into a ``Diff``; ``load_pair(models, rev)`` reads the two sides (two
models, or one spec file at a git revision and in the working tree), ``spec_at_revision``
reads a spec file as a git revision holds it (budgets' ``baseline: {rev: main}`` too).
``diff_models`` does both. ``diff_tables``, ``diff_summary``, ``diff_payload`` and
``render_diff`` are its renderings.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from costmodel.engine import Result, Row
from costmodel.errors import CostModelError
from costmodel.limits import FILE_BYTES
from costmodel.options import METRIC_LABELS, Options
from costmodel.render import Column, Table
from costmodel.render.format import si

LAYER_METRICS = ("flops", "params", "mac", "activations")
"""What each layer is compared on (activations: the elements of its output)."""
TOTAL_METRICS = tuple(METRIC_LABELS)
"""What the totals are compared on: every metric an output reports (compare's)."""
Status = Literal["added", "removed", "changed", "unchanged"]
GIT_TIMEOUT_S = 30
"""Seconds one git command may take (a repository on a hung network drive never hangs us)."""


class RevisionError(CostModelError):
    """A spec file cannot be read at a git revision: no git, not in a repository, an unknown
    revision, or a file the revision does not hold."""


# --- the diff -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One number on both sides: ``delta`` = b − a; ``relative`` = delta / a (None for a = 0)."""

    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a

    @property
    def relative(self) -> float | None:
        return self.delta / self.a if self.a else None

    def record(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "delta": self.delta, "relative": self.relative}


@dataclass(frozen=True)
class LayerDiff:
    """One layer path: its row on each side (None where it is absent)."""

    path: str
    a: Row | None
    b: Row | None

    @property
    def status(self) -> Status:
        if self.a is None:
            return "added"
        if self.b is None:
            return "removed"
        same = self.a.type == self.b.type and self.a.out == self.b.out and \
            all(getattr(self.a, m) == getattr(self.b, m) for m in LAYER_METRICS)
        return "unchanged" if same else "changed"

    def delta(self, metric: str) -> int:
        """b − a, an absent side counting 0."""
        b = getattr(self.b, metric) if self.b else 0
        return b - (getattr(self.a, metric) if self.a else 0)


@dataclass(frozen=True)
class Diff:
    """Model ``b`` against model ``a`` (named as the user named them)."""

    a: str
    b: str
    result_a: Result
    result_b: Result
    layers: tuple[LayerDiff, ...]
    """Every layer path of either side: b's order, with a's removed layers where they were."""

    @property
    def totals(self) -> dict[str, Change]:
        return {m: Change(_total(self.result_a, m), _total(self.result_b, m))
                for m in TOTAL_METRICS}

    def changes(self, all: bool = False) -> list[LayerDiff]:
        """The layers that differ (every layer with ``all``)."""
        return [d for d in self.layers if all or d.status != "unchanged"]

    def counts(self) -> dict[str, int]:
        out = {"changed": 0, "added": 0, "removed": 0, "unchanged": 0}
        for d in self.layers:
            out[d.status] += 1
        return out


def _total(result: Result, metric: str) -> int:
    t = result.totals
    return t.mac * result.options.dtype_bytes if metric == "mac_bytes" else getattr(t, metric)


def diff_results(a: Result, b: Result, *, a_name: str | None = None,
                 b_name: str | None = None) -> Diff:
    """Match the layers of ``a`` and ``b`` by path. The order is b's; a layer only ``a`` has
    comes right after the last layer before it that both have. One pass over each side."""
    in_b = {r.path for r in b.rows}
    index_a = {r.path: i for i, r in enumerate(a.rows)}
    layers: list[LayerDiff] = []
    next_a = 0  # a's rows before this one are placed
    for row in b.rows:
        j = index_a.get(row.path)
        if j is not None and j >= next_a:
            layers.extend(LayerDiff(r.path, r, None) for r in a.rows[next_a:j]
                          if r.path not in in_b)
            next_a = j + 1
        layers.append(LayerDiff(row.path, a.rows[j] if j is not None else None, row))
    layers.extend(LayerDiff(r.path, r, None) for r in a.rows[next_a:] if r.path not in in_b)
    return Diff(a_name or a.model, b_name or b.model, a, b, tuple(layers))


# --- reading the two sides ----------------------------------------------------------------


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run git (no shell; a timeout); a missing git or a hung one is a RevisionError."""
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True,
                              timeout=GIT_TIMEOUT_S, check=False,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except FileNotFoundError:
        raise RevisionError("git is not installed (needed to read a file at a revision)") \
            from None
    except subprocess.TimeoutExpired:
        raise RevisionError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s") from None
    except OSError as e:
        raise RevisionError(f"cannot run git: {e.strerror or e}") from None


def _first_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "no message"


def read_at_revision(path: str | Path, rev: str) -> bytes:
    """The bytes of the file ``path`` as git revision ``rev`` holds it (``git show
    REV:PATH`` in the file's repository, the path relative to its top)."""
    where = f"{path}@{rev}"
    if not rev or rev.startswith("-"):  # never let a revision be read as a git option
        raise RevisionError(f"'{rev}' is not a revision", file=where, field="rev")
    file = Path(path).absolute()
    if not file.parent.is_dir():
        raise RevisionError(f"no such folder: {file.parent}", file=where)
    top = _git(["rev-parse", "--show-toplevel"], file.parent)
    if top.returncode:
        raise RevisionError(f"not in a git repository ({_first_line(top.stderr)})", file=where)
    root = Path(os.fsdecode(top.stdout.strip())).resolve()
    try:
        rel = file.parent.resolve().joinpath(file.name).relative_to(root).as_posix()
    except ValueError:
        raise RevisionError(f"the file is outside its repository {root}", file=where) from None
    if _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root).returncode:
        raise RevisionError(f"unknown revision '{rev}' in {root}", file=where, field="rev")
    size = _git(["cat-file", "-s", f"{rev}:{rel}"], root)
    if size.returncode:
        raise RevisionError(f"revision '{rev}' has no file {rel}", file=where)
    FILE_BYTES.check(int(size.stdout), file=where)  # before git hands us all of it
    shown = _git(["show", f"{rev}:{rel}"], root)
    if shown.returncode:
        raise RevisionError(f"git show failed: {_first_line(shown.stderr)}", file=where)
    return shown.stdout


def spec_at_revision(path: str | Path, rev: str):
    """The spec file ``path`` as revision ``rev`` holds it, validated: written under its own
    name into a temporary folder (a spec without ``name`` is named after its file), loaded,
    the folder removed. Errors name ``path@rev``, not the temporary file."""
    from costmodel.spec.loader import load_spec

    data = read_at_revision(path, rev)
    with tempfile.TemporaryDirectory(prefix="costmodel-rev-") as folder:
        copy = Path(folder) / Path(path).name
        copy.write_bytes(data)
        try:
            return load_spec(copy)
        except CostModelError as e:
            if e.file and str(copy) in str(e.file):
                e.file = str(e.file).replace(str(copy), f"{path}@{rev}")
            raise


def load_pair(models: list[str], rev: str | None = None) -> list[tuple[str, Any]]:
    """The two sides of a diff as (name, ModelSpec): two models (zoo names or spec files), or
    with ``rev`` one spec file at that revision and as it is now."""
    from costmodel.api import load
    from costmodel.spec.zoo import is_spec_path

    if rev is None:
        if len(models) != 2:
            raise CostModelError(f"diff takes two models (or one spec file and --rev), got "
                                 f"{len(models)}", field="models")
        return [(m, load(m)) for m in models]
    if len(models) != 1:
        raise CostModelError(f"with --rev, diff takes one spec file, got {len(models)} models",
                             field="models")
    (model,) = models
    if not is_spec_path(model) and not Path(model).is_file():
        raise CostModelError(f"--rev reads a spec file at a revision; '{model}' is not a spec "
                             "file", field="rev")
    spec = load(model)  # the working tree's first: a missing file is the clearer error
    return [(f"{model}@{rev}", spec_at_revision(model, rev)), (model, spec)]


def diff_models(models: list[str], rev: str | None = None, *, input=None,
                width: float | None = None, num_classes: int | None = None,
                options: Options = Options()) -> Diff:
    """Evaluate the two sides of ``load_pair(models, rev)`` with the same settings and diff
    them."""
    from costmodel.api import evaluate_model

    (a_name, a), (b_name, b) = load_pair(models, rev)
    a_result, b_result = (evaluate_model(spec, input=input, width=width, num_classes=num_classes,
                                         options=options) for spec in (a, b))
    return diff_results(a_result, b_result, a_name=a_name, b_name=b_name)


# --- renderings -----------------------------------------------------------------------------


def _signed(v: int | None) -> str:
    return "" if v is None else ("+" if v >= 0 else "-") + si(abs(v))


def _signed_pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:+.3g}%"


class DiffTable(Table):
    """A Table whose ``delta`` columns read with their sign (+12.5M, -3.1k, +0) and whose
    ``relative`` columns as signed percentages (+2.2%); raw values stay in the rows."""

    def human(self, row: dict[str, Any], col: Column) -> str:
        v = row.get(col.key)
        if col.key.endswith("delta") and isinstance(v, int):
            return _signed(v)
        if col.key.endswith("relative"):
            return _signed_pct(v)
        return super().human(row, col)


def diff_summary(diff: Diff) -> str:
    """One line: 'FLOPs +12.5M (+2.2%), params +0 (+0%), MAC …, peak activation …'."""
    parts = []
    for m, c in diff.totals.items():
        if m == "mac_bytes":
            continue
        rel = _signed_pct(c.relative) if c.relative is not None else ("new" if c.b else "±0")
        parts.append(f"{METRIC_LABELS[m]} {_signed(c.delta)} ({rel})")
    return ", ".join(parts)


def _layer_record(row: Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"type": row.type, "output": row.out.as_list(),
            **{m: getattr(row, m) for m in LAYER_METRICS}}


def diff_payload(diff: Diff, all: bool = False) -> dict[str, Any]:
    """The ``diff --format json`` contract: raw integers; layers that differ (every layer with
    ``all``) in order, each with its values on both sides (null where absent) and b − a."""
    return {"a": diff.a, "b": diff.b,
            "input": {"a": list(diff.result_a.input), "b": list(diff.result_b.input)},
            "conventions": diff.result_b.options.conventions().record(),
            "totals": {m: c.record() for m, c in diff.totals.items()},
            "layers": [{"path": d.path, "status": d.status, "a": _layer_record(d.a),
                        "b": _layer_record(d.b),
                        "delta": {m: d.delta(m) for m in LAYER_METRICS}}
                       for d in diff.changes(all)]}


def _input(result: Result) -> str:
    h, w = result.input
    return f"{result.in_channels}×{h}×{w}"


def totals_table(diff: Diff) -> DiffTable:
    cols = [Column("label", "metric"), Column("a", diff.a, "si"), Column("b", diff.b, "si"),
            Column("delta", "Δ", "si"), Column("relative", "Δ %", "pct")]
    rows = [{"metric": m, "label": METRIC_LABELS[m], **c.record()} for m, c in diff.totals.items()]
    ia, ib = _input(diff.result_a), _input(diff.result_b)
    inputs = f"{ia} input" if ia == ib else f"inputs {ia} and {ib}"
    return DiffTable(f"{diff.a} → {diff.b} — totals, {inputs}", cols, rows,
                     notes=[diff.result_b.options.conventions(),
                            "Δ = b − a; peak activation = largest feature map (elements)"])


def layers_table(diff: Diff, all: bool = False, *, values: bool = False) -> DiffTable:
    """The layers that differ, with their deltas (``values``: each side's value as well, as
    CSV carries them)."""
    cols = [Column("path", "layer"), Column("status", "status")]
    for m in LAYER_METRICS:
        label = "act." if m == "activations" else METRIC_LABELS[m]
        if values:
            cols += [Column(f"{m}_a", f"{label} a", "int"), Column(f"{m}_b", f"{label} b", "int")]
        cols.append(Column(f"{m}_delta", f"Δ {label}", "si"))
    rows = []
    for d in diff.changes(all):
        row: dict[str, Any] = {"path": d.path, "status": d.status}
        for m in LAYER_METRICS:
            if values:
                row[f"{m}_a"] = getattr(d.a, m) if d.a else None
                row[f"{m}_b"] = getattr(d.b, m) if d.b else None
            row[f"{m}_delta"] = d.delta(m)
        rows.append(row)
    n = diff.counts()
    title = (f"{diff.a} → {diff.b} — layers: {n['changed']} changed, {n['added']} added, "
             f"{n['removed']} removed, {n['unchanged']} unchanged")
    hint = "every layer listed" if all else "unchanged layers omitted (--all lists them)"
    return DiffTable(title, cols, rows, notes=[f"Δ = b − a; act. = output elements; {hint}"])


def diff_tables(diff: Diff, fmt: str, all: bool = False) -> list[Table]:
    """The tables of a format: CSV one table (per layer, both sides' values, no total row);
    the others the totals, then the layers."""
    if fmt == "csv":
        return [layers_table(diff, all, values=True)]
    return [totals_table(diff), layers_table(diff, all)]


def render_diff(diff: Diff, fmt: str, all: bool = False) -> str | list:
    """The diff in ``fmt``: Markdown and the terminal table open with the summary line (a
    pull-request comment's first line); JSON is ``diff_payload``."""
    from costmodel.render import render
    from costmodel.render.table import escape_controls

    out = render(diff_tables(diff, fmt, all), fmt, diff_payload(diff, all))
    line = f"{diff.a} → {diff.b}: {diff_summary(diff)}"
    if fmt == "markdown":
        return f"**{escape_controls(line).replace('|', chr(92) + '|')}**\n\n{out}"
    if fmt == "table":
        from rich.text import Text

        return [Text(escape_controls(line)), *out]
    return out
