"""Regenerate the committed reports (``reports/``) from ``reports/comparisons.yaml``.

    python -m costmodel.report.regenerate            # rewrite reports/ (from the repo root)
    python -m costmodel.report.regenerate --check    # exit 1 if a committed report is stale

``--check`` regenerates into a temporary folder and compares: Markdown text exactly; each
plot by the SHA-256 of its plotted data (kept in the PNG's metadata) and, when the committed
PNG was drawn by the installed matplotlib version, pixel for pixel.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from costmodel.errors import CostModelError, OutputError
from costmodel.options import Options
from costmodel.report.markdown import ReportRequest, build_report, write_reports

REPORTS_DIR = Path("reports")
"""Relative to the working directory: run the command from the repository root."""
CONFIG_NAME = "comparisons.yaml"
COMMAND = "python -m costmodel.report.regenerate"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComparisonOptions(_Strict):
    scope: str = "paper"
    flops_per_madd: int = 1
    bn_params: bool = True
    dtype: str = "float32"


class Comparison(_Strict):
    """One committed report: ``reports/<name>.md``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    title: str
    intro: str = ""
    models: list[str] = Field(min_length=1)
    input: str | int | None = None
    options: ComparisonOptions = ComparisonOptions()

    def request_cli(self) -> ReportRequest:
        """The request as the ``costmodel report`` command line can state it (no intro)."""
        return ReportRequest(tuple(self.models),
                             input=None if self.input is None else str(self.input),
                             options=Options(**self.options.model_dump()), title=self.title)

    def request(self) -> ReportRequest:
        cli = self.request_cli()
        return replace(cli, intro=self.intro, generated_by=(
            f"`{COMMAND}` (entry `{self.name}` of [{CONFIG_NAME}]({CONFIG_NAME}); the numbers "
            f"are those of `{cli.command(f'reports/{self.name}.md')}`)"))


class Comparisons(_Strict):
    reports: list[Comparison] = Field(min_length=1)


def load_comparisons(config: Path) -> list[Comparison]:
    import yaml

    try:
        data: Any = yaml.safe_load(config.read_text(encoding="utf-8"))
        comparisons = Comparisons.model_validate(data).reports
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise CostModelError(f"{config}: {e}") from None
    names = [c.name for c in comparisons]
    if len(set(names)) != len(names):
        raise CostModelError(f"{config}: report names must be unique")
    return comparisons


def regenerate(config: Path, out_dir: Path) -> list[Path]:
    """Build every report of ``config`` (all in memory first), then write them to ``out_dir``
    (created if missing) together: a failure leaves the folder as it was."""
    comparisons = load_comparisons(config)
    targets = [out_dir / f"{c.name}.md" for c in comparisons]
    reports = [(build_report(c.request(), t), t) for c, t in zip(comparisons, targets)]
    made = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot make the folder: {e.strerror or e}", file=str(out_dir),
                          field="output") from None
    try:
        return write_reports(reports)
    except BaseException:
        if made:
            try:
                out_dir.rmdir()  # only if still empty
            except OSError:
                pass
        raise


def _generated(folder: Path) -> set[str]:
    """The files a regeneration owns in a reports folder: reports and their plots."""
    return {str(p.relative_to(folder)) for p in folder.glob("*.md")} | \
           {str(p.relative_to(folder)) for p in folder.glob("*_files/*.png")}


def _png_info(path: Path) -> tuple[dict[str, str], bytes, tuple[int, int]]:
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as im:
        return dict(im.text), im.convert("RGBA").tobytes(), im.size


def compare_dirs(committed: Path, fresh: Path) -> list[str]:
    """What differs between committed reports and freshly generated ones (empty: up to date)."""
    import matplotlib

    from costmodel.report.plots import DATA_KEY

    problems = []
    old, new = _generated(committed), _generated(fresh)
    problems += [f"{name}: committed but no longer generated" for name in sorted(old - new)]
    problems += [f"{name}: missing (not committed)" for name in sorted(new - old)]
    for name in sorted(old & new):
        a, b = committed / name, fresh / name
        if name.endswith(".md"):
            if a.read_text(encoding="utf-8") != b.read_text(encoding="utf-8"):
                problems.append(f"{name}: the Markdown differs")
            continue
        (meta_a, pix_a, size_a), (meta_b, pix_b, size_b) = _png_info(a), _png_info(b)
        if meta_a.get(DATA_KEY) != meta_b.get(DATA_KEY):
            problems.append(f"{name}: the plotted data differs")
        elif f"matplotlib {matplotlib.__version__})" in meta_a.get("Software", "") and \
                (size_a != size_b or pix_a != pix_b):
            problems.append(f"{name}: the pixels differ (same data; the drawing code changed)")
    return problems


def check(config: Path, committed: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        regenerate(config, Path(tmp))
        return compare_dirs(committed, Path(tmp))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR,
                        help=f"the reports folder holding {CONFIG_NAME} (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed reports instead of writing; exit 1 "
                             "if any is stale")
    args = parser.parse_args(argv)
    config = args.reports / CONFIG_NAME
    try:
        if args.check:
            problems = check(config, args.reports)
            for p in problems:
                print(f"stale: {p}", file=sys.stderr)
            if problems:
                print(f"regenerate with: {COMMAND}", file=sys.stderr)
            return 1 if problems else 0
        written = regenerate(config, args.reports)
    except CostModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {sum(p.suffix == '.md' for p in written)} reports and "
          f"{sum(p.suffix == '.png' for p in written)} plots in {args.reports}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
