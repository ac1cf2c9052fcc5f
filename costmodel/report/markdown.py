"""A self-contained Markdown cost report: conventions, the comparison, and per model its
breakdown by layer type, data flow, largest layers and per-layer table, with plots beside it.

``build_report`` evaluates the models and renders the Markdown and the plots' data in memory;
``write_report`` checks every target, draws every plot, and only then writes the plots and the
report together (``costmodel.files.AtomicFiles``), so a failure leaves no file behind.

The plot folder ``NAME_files/`` beside ``NAME.md`` holds a manifest of the plots the report
wrote, with their SHA-256. A later report removes a plot it no longer makes only if the
manifest lists it and its content is unchanged: a file the user put there, or edited, stays.
A plot folder that is a symbolic link is refused: the report creates and prunes that folder,
and through a link it would write and delete in a folder the user never named.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path

from costmodel import api, views
from costmodel.analysis.dataflow import dataflow_table
from costmodel.errors import CostModelError, OutputError
from costmodel.engine import Result
from costmodel.options import Options, parse_input
from costmodel.files import AtomicFiles, check_target
from costmodel.render import Table
from costmodel.render.format import si
from costmodel.render.table import to_markdown
from costmodel.report import plots as plot_data
from costmodel.report.tables import (highlights, largest_layers_table, where_cost_sits,
                                     without_conventions)
from costmodel.spec.model import ModelSpec

LARGEST_N = 8
SCATTER_FILE = "flops-vs-params.png"
MANIFEST = ".costmodel-manifest.json"
"""In the plot folder: the files the report wrote there (name → SHA-256)."""
MANIFEST_KIND = "costmodel report plots"
MANIFEST_MAX_BYTES = 1024 * 1024
PLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.png$")


@dataclass(frozen=True)
class ReportRequest:
    """What to report on. ``models`` are zoo names or spec paths, each optionally with its own
    input size as ``name@N`` or ``name@HxW`` (a resolution family in one report)."""

    models: tuple[str, ...]
    input: str | None = None
    width: float | None = None
    num_classes: int | None = None
    options: Options = Options()
    title: str | None = None
    intro: str = ""
    generated_by: str | None = None
    """How to regenerate the report, stated in it; default: the equivalent ``costmodel report``
    command line."""
    plots: bool = True
    """False: tables only (``--no-plots``)."""
    profile: str | None = None
    """A latency profile: predicted latency in the comparison and per-layer tables."""

    def command(self, output: str | Path) -> str:
        """The ``costmodel report`` command line that makes this report."""
        o, d = self.options, Options()
        args = ["costmodel", "report", *self.models]
        if self.input is not None:
            args += ["--input", str(self.input)]
        if self.width is not None:
            args += ["--width", f"{self.width:g}"]
        if self.num_classes is not None:
            args += ["--classes", str(self.num_classes)]
        if o.scope != d.scope:
            args += ["--scope", o.scope]
        if o.flops_per_madd != d.flops_per_madd:
            args += ["--flops-per-madd", str(o.flops_per_madd)]
        if o.bn_params != d.bn_params:
            args += ["--no-bn-params"]
        if o.dtype != d.dtype:
            args += ["--dtype", o.dtype]
        if o.batch != d.batch:
            args += ["--batch", str(o.batch)]
        if self.title:
            args += ["--title", self.title]
        if not self.plots:
            args += ["--no-plots"]
        if self.profile:
            args += ["--profile", Path(self.profile).name]
        # the report's own name, never the absolute path it was written to: a report states
        # no path of the machine that made it, and the command works beside the report
        return shlex.join([*args, "-o", Path(output).name])


@dataclass
class Report:
    """A rendered report: its Markdown and the data of its plots (drawn by ``images``)."""

    markdown: str
    plots: list[plot_data.Plot] = field(default_factory=list)
    assets: str = ""
    """The folder beside the report that holds the plots, relative to the report."""

    def images(self) -> dict[str, bytes]:
        """File name → PNG bytes (matplotlib runs here)."""
        return {p.file: plot_data.draw(p) for p in self.plots}


def split_ref(ref: str) -> tuple[str, str | None]:
    """``mobilenet@160`` → ('mobilenet', '160'); ``mobilenet`` → ('mobilenet', None)."""
    model, at, size = ref.rpartition("@")
    if not at:
        return ref, None
    if not model or not size:
        raise CostModelError(f"'{ref}' is not MODEL or MODEL@INPUT (e.g. mobilenet@160)")
    parse_input(size)  # fail here, naming the size, rather than deep in evaluation
    return model, size


@dataclass(frozen=True)
class Entry:
    """One reported model: its label in the report, its spec and its evaluation."""

    label: str
    spec: ModelSpec
    result: Result


def evaluate_request(request: ReportRequest) -> list[Entry]:
    if not request.models:
        raise CostModelError("name at least one model to report on")
    specs, results = [], []
    for ref in request.models:
        model, size = split_ref(ref)
        size = size if size is not None else request.input
        spec = api.load(model, input=size)  # a Python target is traced at its input
        specs.append(spec)
        results.append(api.evaluate_model(
            spec, input=size, width=request.width,
            num_classes=request.num_classes, options=request.options))
    return [Entry(label, spec, r) for label, spec, r in zip(labels_for(results), specs, results)]


def labels_for(results: list[Result]) -> list[str]:
    """Model names, with the input size where the compared inputs differ; each unique."""
    mixed = len({r.input for r in results}) > 1
    labels = [f"{r.model} @ {r.input[0]}×{r.input[1]}" if mixed else r.model for r in results]
    seen = set()
    for label in labels:
        if label in seen:
            raise CostModelError(f"'{label}' is listed twice; each model is reported once")
        seen.add(label)
    return labels


def slug(label: str) -> str:
    """A file-name-safe form of a label: 'mobilenet @ 160×160' → 'mobilenet-160x160'."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", label.replace("×", "x")).strip("-")


def details(summary: str, body: str) -> str:
    """Markdown folded into a <details> block (GitHub renders the Markdown inside it)."""
    return (f"<details>\n<summary>{html.escape(summary)}</summary>\n\n{body.rstrip()}\n\n"
            "</details>\n")


def image(alt: str, path: str) -> str:
    return f"![{alt.replace(']', '')}]({path})\n"


def _table(table: Table) -> str:
    return to_markdown([without_conventions(table)])


def summary_line(result: Result) -> str:
    """Input, output and totals of one model in a sentence, and where its cost sits."""
    t = views.totals_record(result)
    h, w = result.input
    out = result.output
    produces = f"{out.c} outputs" if out.flat else f"a {out} feature map"
    return (f"{result.in_channels}×{h}×{w} input → {produces}; width {result.width:g}. "
            f"**{si(t['flops'])} FLOPs**, **{si(t['params'])} params**, **{si(t['mac'])} MAC** "
            f"({si(t['mac_bytes'])}B in {result.options.dtype}), peak activation "
            f"{si(t['peak_activation'])} elements. {where_cost_sits(result)}")


def model_section(entry: Entry, assets: str, layer_plot: plot_data.LayerBars | None,
                  latency: tuple[list[float], str] | None = None) -> str:
    """One model: what it is, cost by layer type, data flow (EffNet Table 1), largest layers,
    per-layer plot and table."""
    r = entry.result
    out = [f"## {entry.label}\n"]
    if entry.spec.description:
        out.append(f"_{entry.spec.description}_\n")
    out.append(summary_line(r) + "\n")
    out += ["### Cost by layer type\n", _table(views.breakdown_table(r))]
    out += ["### Data flow\n", _table(dataflow_table([r]))]
    out += ["### Largest layers\n", _table(largest_layers_table(r, "flops", LARGEST_N)),
            _table(largest_layers_table(r, "mac", LARGEST_N))]
    out += ["### Per layer\n"]
    if layer_plot is not None:
        out.append(image(layer_plot.title, f"{assets}/{layer_plot.file}"))
    out += [details(f"All {len(r.rows)} layers of {entry.label} (per-layer table)",
                    _table(views.layers_table(r, latency=latency and latency[0],
                                              latency_note=latency and latency[1])))]
    return "\n".join(out)


def build_report(request: ReportRequest, output: str | Path,
                 without_plots: str | None = None) -> Report:
    """Evaluate the request's models and render the report that will live at ``output``.

    Tables only when ``request.plots`` is False or ``without_plots`` says why there are no
    plots (matplotlib is not installed); the report says so. A single model has no FLOPs-vs-
    params chart (one bubble compares nothing)."""
    output = Path(output)
    assets = f"{output.stem}_files"
    entries = evaluate_request(request)
    results = [e.result for e in entries]
    labels = [e.label for e in entries]
    options = request.options
    title = request.title or f"Cost report: {', '.join(labels)}"
    plots = request.plots and without_plots is None
    scatter = plot_data.scatter_data(results, labels, SCATTER_FILE) \
        if plots and len(results) > 1 else None
    layer_plots = [plot_data.layer_bars_data(e.result, e.label, f"layers-{slug(e.label)}.png")
                   for e in entries] if plots else [None] * len(entries)
    files = [p.file for p in layer_plots if p is not None]
    if len(set(files)) != len(files):
        raise CostModelError("two models' plots would share a file name ("
                             f"{', '.join(sorted({f for f in files if files.count(f) > 1}))}); "
                             "give the specs different names")
    generated = request.generated_by or f"`{request.command(output)}`"
    out = [f"# {title}\n"]
    if request.intro:
        out.append(request.intro.strip() + "\n")
    out.append(f"Generated by {generated}. Numbers are computed analytically from the specs "
               "by costmodel; no network is built or run.\n")
    if not plots:
        why = without_plots or "--no-plots"
        out.append(f"_Tables only: no plots ({why})._\n")
    bullets = options.conventions().bullets()
    out += ["## Conventions\n", "\n".join(f"- {line}" for line in bullets) + "\n"]

    per_row, note = views.latency_of(results, request.profile)
    totals = None if per_row is None else [sum(ms) for ms in per_row]
    out += ["## Comparison\n", _table(views.compare_table(results, totals, note))]
    if len(results) > 1:
        out.append("\n".join(f"- {line}" for line in highlights(labels, results)) + "\n")
    if scatter is not None:
        out.append(image(scatter.title, f"{assets}/{scatter.file}"))
    if len(results) > 1:
        out += ["### Data flow side by side\n", _table(dataflow_table(results))]
    out += [model_section(e, assets, p, None if per_row is None else (per_row[i], note))
            for i, (e, p) in enumerate(zip(entries, layer_plots))]
    drawn = [p for p in (scatter, *layer_plots) if p is not None]
    return Report("\n".join(out).rstrip() + "\n", drawn, assets)


def assets_folder(output: str | Path) -> Path:
    """The plot folder of the report at ``output``: ``NAME_files`` beside it."""
    output = Path(output)
    return output.parent / f"{output.stem}_files"


def check_report_target(output: str | Path) -> Path:
    """Refuse a report target before any work: the Markdown file (see ``check_target``) and
    its plot folder, which must be a real folder or not exist yet. Returns the folder."""
    check_target(output)
    folder = assets_folder(output)
    if folder.is_symlink():
        raise OutputError("is a symbolic link; the report writes and prunes its plot folder "
                          "and does not do that through a link (remove the link, or choose "
                          "another -o)", file=str(folder), field="output")
    if folder.exists() and not folder.is_dir():
        raise OutputError("is in the way of the report's plot folder", file=str(folder),
                          field="output")
    return folder


def write_report(report: Report, output: str | Path) -> list[Path]:
    """Draw the plots, then write them beside ``output`` and the Markdown to ``output``, all
    together. Plots an earlier report made that this one does not are removed (see the
    module's docstring). Returns the paths written."""
    return write_reports([(report, output)])


def write_reports(reports: list[tuple[Report, str | Path]]) -> list[Path]:
    """Write several reports as one: every target checked and every plot drawn first, then
    every file staged and renamed into place together; stale plots are removed only after."""
    folders = [check_report_target(output) for _, output in reports]
    drawn = [report.images() for report, _ in reports]  # matplotlib runs here, before writing
    previous = [read_manifest(folder) for folder in folders]
    made: list[Path] = []  # plot folders this call creates: removed again if it fails
    written: list[Path] = []
    try:
        for folder, (report, _) in zip(folders, reports):
            if not folder.exists() and report.plots:  # tables only: no empty plot folder
                folder.mkdir()
                made.append(folder)
        with AtomicFiles() as out:
            for (report, output), folder, images in zip(reports, folders, drawn):
                for name, data in images.items():
                    out.stage(folder / name, data)
                    written.append(folder / name)
                if folder.exists() or folder in made:
                    out.stage(folder / MANIFEST, manifest_text(Path(output).name, images))
                out.stage(output, report.markdown)  # last: it links to the plots
                written.append(Path(output))
            out.commit()
    except OSError as e:
        _remove_folders(made)
        raise OutputError(f"cannot write the report: {e.strerror or e}",
                          file=str(e.filename or ""), field="output") from None
    except BaseException:
        _remove_folders(made)
        raise
    for folder, old, images in zip(folders, previous, drawn):
        remove_stale(folder, old, set(images))
    return written


def manifest_text(report: str, images: dict[str, bytes]) -> str:
    files = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(images.items())}
    return json.dumps({"kind": MANIFEST_KIND, "report": report, "files": files},
                      indent=2) + "\n"


def read_manifest(folder: Path) -> dict[str, str]:
    """The plots an earlier report recorded writing in ``folder`` (name → SHA-256). Anything
    unreadable or malformed counts as no record: then nothing is removed."""
    path = folder / MANIFEST
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return {}
        with open(path, "rb") as f:
            raw = f.read(MANIFEST_MAX_BYTES + 1)
        data = json.loads(raw) if len(raw) <= MANIFEST_MAX_BYTES else None
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND or \
            not isinstance(data.get("files"), dict):
        return {}
    return {name: digest for name, digest in data["files"].items()
            if isinstance(name, str) and PLOT_NAME.match(name) and isinstance(digest, str)}


def remove_stale(folder: Path, recorded: dict[str, str], keep: set[str]) -> None:
    """Remove the plots of ``recorded`` that are not in ``keep``, each only if it is still a
    regular file (not a link) directly in ``folder`` with the content the report wrote."""
    if folder.is_symlink():  # checked before writing; a link made since is not followed
        return
    for name, digest in recorded.items():
        if name in keep:
            continue
        path = folder / name
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                path.unlink()
        except OSError:
            pass  # gone already, or unreadable: leave it


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()  # only if still empty: never removes a file
        except OSError:
            pass
