"""check: fail a build when a model goes over its cost budget."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from costmodel.cli import app, emit, fail, internal_error
from costmodel.cli._options import Fmt, FormatOpt
from costmodel.errors import CostModelError
from costmodel.render.table import escape_controls


def _step_summary(markdown: str) -> None:
    """Append to the GitHub Actions job summary when running there."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as f:
            f.write(markdown + "\n")
    except OSError as e:  # the summary is a courtesy: the exit code still tells the result
        sys.stderr.write(f"warning: cannot write the job summary {target}: "
                         f"{e.strerror or e}\n")


def _code(text: str) -> str:
    """``text`` as one Markdown code span: control characters escaped, newlines folded, and
    fenced with more backticks than it holds, so that no message can break out of it."""
    text = escape_controls(" ".join(text.split()))
    fence = "`" * (max((len(r) for r in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


@app.command()
def check(
    budgets: Annotated[Path, typer.Option(
        "--budgets", "-b", help="The budgets file (YAML): models and their limits.")] =
        Path("budgets.yaml"),
    format: FormatOpt = Fmt.table,
):
    """Check models against cost budgets (FLOPs, params, MAC, peak activation).
    Exit 0 when all are within budget, 1 when any is over, 2 when the budgets file or a
    spec is invalid, 3 on an internal error. In GitHub Actions the Markdown table also goes
    to the job summary."""
    from costmodel.budgets import check_budgets, check_payload, check_table, load_budgets
    from costmodel.render import render

    # Exit 0 and 1 are verdicts: only a check that ran to the end may give one. Whatever
    # stops it says so in the job summary too, so a CI page never shows a silent pass.
    try:
        result = check_budgets(load_budgets(budgets), budgets)
        table = check_table(result)
        rendered = render(table, format.value, check_payload(result))
    except CostModelError as e:
        _step_summary(f"### ❌ Budget check could not run\n\n{_code(str(e))}\n")
        raise fail(str(e)) from None
    except Exception as e:
        _step_summary(f"### ❌ Budget check could not run (internal error)\n\n"
                      f"{_code(f'{type(e).__name__}: {e}')}\n")
        raise internal_error(e) from None
    _step_summary(render(table, "markdown") if format is not Fmt.markdown else rendered)
    emit(rendered)
    if not result.ok:
        for finding in result.over:
            sys.stderr.write(f"over budget: {escape_controls(finding.message())}\n")
        raise typer.Exit(1)
