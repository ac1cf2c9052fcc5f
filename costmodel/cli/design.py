"""dataflow, explain, rules, swap: the design analyses (costmodel.analysis)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from costmodel import api
from costmodel.analysis.thresholds import describe_thresholds
from costmodel.cli import app, emit, handles_errors
from costmodel.cli._options import (ClassesOpt, Fmt, FormatOpt, InputOpt, WidthOpt,
                                    table_option)
from costmodel.render import render

SWAP_TABLES = ("compare", "replacements")
SwapTableOpt = table_option("SwapTable", SWAP_TABLES)
RULES_TABLES = ("summary", "findings")
RulesTableOpt = table_option("RulesTable", RULES_TABLES)


def _help(*paragraphs: str) -> str:
    """Command help as paragraphs (Typer's rich mode keeps single newlines, so each paragraph
    is one line)."""
    return "\n\n".join(paragraphs)


DATAFLOW_HELP = _help(
    "EffNet's Table 1: the tensor (C×H×W, as show writes it) leaving each stage, and the "
    "compression factor elements in / elements out; factors of 4 or more are marked ⚠ (and "
    "red in a terminal, bold in Markdown, a true `flagged` column in CSV and JSON), as the "
    "paper marks them.",
    "Stages are the spec's `stage` nodes; where a spec has none, a new stage starts at each "
    "spatial downsampling. --level block lists the blocks of each stage, --level layer every "
    "layer that changes the tensor's shape. The classifier head is shown but not marked. "
    "Several models are set side by side, rows aligned by the size (H×W) of each stage's "
    "output, heads last.")

SWAP_HELP = _help(
    "EffNet's method: replace every standard k×k conv stage of a baseline (a dense k×k conv, "
    "its batch norms and activations, and the pool after them) with the chosen block, keeping "
    "output channels and downsampling; write the new spec and compare it with the baseline.",
    "mobilenet: a dwsep block with the conv's stride, the stage's pool kept. shufflenet: one "
    "ShuffleNet V1 unit with --groups groups, stride 2 where the stage halves the map. "
    "effnet: one effnet_block, which halves the map itself. mobilenet and shufflenet keep the "
    "first conv stage, as those papers do; effnet replaces it (--replace-first/--keep-first "
    "override). Nothing is written when the swap fails.")

EXPLAIN_HELP = _help(
    "The closed-form derivation, with numbers: each step's formula, the substituted values, "
    "the result, and the engine's own count for the same layer (✓ where they agree; exit code "
    "1 if one differs).",
    "With --layer, TARGET is a model and the layer a conv, dwconv, linear, dwsep, "
    "shufflenet_unit or effnet_block. Without it, TARGET is a formula — conv, group, dwsep, "
    "mobilenet (α, ρ), effnet (separable pooling), shufflenet (unit vs ResNet/ResNeXt), mac "
    "(ShuffleNet V2's MAC and its lower bound) — and the sizes default to the papers' "
    "examples: `costmodel explain mobilenet` is MobileNet's Table 3, 462M → 52.3M → 29.6M → "
    "15.1M mult-adds.",
    "--df is the input's side; the output's side Do is a step of its own, by the padding "
    "(--padding: the engine's default (Dk−1)//2, same, valid or a number) and --stride, and "
    "the formulas use it: an even kernel with the default padding loses a pixel.")

RULES_HELP = _help(
    "ShuffleNet V2's guidelines and EffNet's warning as measured checks, like a linter; "
    "--fail-on makes it exit 1 for CI.", *describe_thresholds())


class LevelOpt(str, Enum):
    stage = "stage"
    block = "block"
    layer = "layer"


@app.command(help=DATAFLOW_HELP, short_help="EffNet's Table 1: tensor shapes per stage and "
                                                 "compression factors (≥ 4 marked).")
@handles_errors
def dataflow(
    models: Annotated[list[str], typer.Argument(help="Zoo names or spec files; several are "
                                                     "set side by side.")],
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    level: Annotated[LevelOpt, typer.Option(
        "--level", "-l", help="stage: one row per stage; block: per block of each stage; "
                              "layer: per layer that changes the tensor's shape.")
    ] = LevelOpt.stage,
    per_block: Annotated[bool, typer.Option(
        "--per-block", help="Same as --level block.")] = False,
    format: FormatOpt = Fmt.table,
):
    """EffNet's Table 1 (help: DATAFLOW_HELP)."""
    from costmodel.analysis.dataflow import dataflow_payload, dataflow_table

    lvl = "block" if per_block else level.value
    results = api.compare(models, input=input, width=width, num_classes=classes)
    emit(render(dataflow_table(results, level=lvl, flags=format.value == "csv"), format.value,
                dataflow_payload(results, lvl)))


class BlockOpt(str, Enum):
    effnet = "effnet"
    mobilenet = "mobilenet"
    shufflenet = "shufflenet"


@app.command(help=SWAP_HELP, short_help="Replace a baseline's conv stages with EffNet, "
                                             "MobileNet or ShuffleNet blocks; write and compare.")
@handles_errors
def swap(
    spec: Annotated[str, typer.Argument(
        help="The baseline: zoo name, spec file or Python target.")],
    block: Annotated[BlockOpt, typer.Option("--block", "-b", help="The block that replaces "
                                                                  "each conv stage.")],
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write the new spec here (YAML); '-' prints it on stdout and "
                               "the comparison on stderr.")] = None,
    replace_first: Annotated[bool | None, typer.Option(
        "--replace-first/--keep-first",
        help="Replace the network's first conv stage too. Default: effnet replaces it; "
             "mobilenet and shufflenet keep it, as those papers do.")] = None,
    groups: Annotated[int, typer.Option("--groups", "-g", min=1,
                                        help="Groups of the ShuffleNet unit.")] = 4,
    name: Annotated[str | None, typer.Option("--name", help="Name of the new model "
                                                            "(default: SPEC-BLOCK).")] = None,
    input: InputOpt = None,
    format: FormatOpt = Fmt.table,
    table: SwapTableOpt = None,
):
    """EffNet's block swap (help: SWAP_HELP)."""
    from costmodel.analysis.swap import evaluate_swap, swap_blocks
    from costmodel.files import check_target

    if output is not None and output != "-":
        check_target(output)  # refuse a device, folder or read-only file before any work
    swapped = swap_blocks(api.load(spec, input=input), block.value, replace_first=replace_first,
                          groups=groups, name=name)
    base, new = evaluate_swap(swapped, input=input)
    tables, payload = _swap_views(swapped, base, new, output)
    _deliver_swap(render(dict(zip(SWAP_TABLES, tables, strict=True)), format.value, payload,
                         table and table.value), swapped.yaml, output)


def _swap_views(swapped, base, new, output: str | None) -> tuple[list, dict]:
    """The swap's tables (the comparison, the replacements) and its JSON payload."""
    from costmodel import views
    from costmodel.analysis.swap import replacement_records, replacement_table

    tables = [views.compare_table([base, new]), replacement_table(swapped, base, new)]
    payload = {"baseline": base.model, "model": new.model, "block": swapped.block,
               "output": output, "compare": views.compare_records([base, new]),
               "replacements": replacement_records(swapped, base, new),
               "spec": swapped.document}
    return tables, payload


def _deliver_swap(rendered, spec_text: str, output: str | None) -> None:
    """Show the comparison and write the new spec: to ``output``, or with ``-`` on stdout (the
    comparison then goes to stderr); without ``output`` say that nothing was written."""
    import sys

    from costmodel.files import write_atomic

    if output is None:
        emit(rendered)
        sys.stderr.write("note: the new spec was not written (use -o FILE, or -o - for "
                         "stdout)\n")
    elif output == "-":
        sys.stdout.write(spec_text)
        sys.stdout.flush()
        _emit_to_stderr(rendered)
    else:
        write_atomic(output, spec_text)
        emit(rendered)


def _emit_to_stderr(rendered) -> None:
    import sys

    if isinstance(rendered, str):
        sys.stderr.write(rendered)
        return
    from rich.console import Console

    console = Console(stderr=True)
    for item in rendered:
        console.print(item)
        console.print()


def _size(flag: str, text: str, kind: type = int):
    """An optional size option of `explain`."""
    return Annotated[Optional[kind], typer.Option(flag, help=text)]


@app.command(help=EXPLAIN_HELP, short_help="The closed-form cost derivation of a formula or "
                                                "a layer, checked against the engine.")
@handles_errors
def explain(
    target: Annotated[str, typer.Argument(
        help="A formula (conv, group, dwsep, mobilenet, effnet, shufflenet, mac), or with "
             "--layer a model (zoo name or spec file).")],
    layer: Annotated[str | None, typer.Option(
        "--layer", "-l", help="Layer or block path in the model (see `costmodel show`).")] = None,
    input: InputOpt = None,
    width: WidthOpt = None,
    k: _size("--k", "Kernel size Dk.") = None,
    m: _size("--m", "Input channels M (bottleneck m for shufflenet, dw channels for "
                    "effnet).") = None,
    n: _size("--n", "Output channels N.") = None,
    df: _size("--df", "Feature map side Df (h = w).") = None,
    g: _size("--g", "Groups.") = None,
    c: _size("--c", "Channels c of a ShuffleNet unit.") = None,
    c1: _size("--c1", "Input channels of a 1×1 conv (mac).") = None,
    c2: _size("--c2", "Output channels of a 1×1 conv (mac).") = None,
    alpha: _size("--alpha", "Width multiplier α.", float) = None,
    rho: _size("--rho", "Resolution multiplier ρ.", float) = None,
    stride: _size("--stride", "Stride s (conv, group, dwsep).") = None,
    padding: _size("--padding", "Padding (conv, group, dwsep): default ((Dk−1)//2 per side), "
                                "same, valid or a number of pixels per side.", str) = None,
    format: FormatOpt = Fmt.table,
):
    """Closed-form derivations (help: EXPLAIN_HELP)."""
    from costmodel.analysis.explain import derivation_table

    sizes = {"k": k, "m": m, "n": n, "df": df, "g": g, "c": c, "c1": c1, "c2": c2,
             "alpha": alpha, "rho": rho, "stride": stride, "padding": padding}
    derivation = _derivation(target, layer, input, width, sizes)
    table = derivation_table(derivation, raw=format is Fmt.csv)
    emit(render(table, format.value, derivation.record()))
    if not derivation.ok:
        raise typer.Exit(1)


def _derivation(target: str, layer: str | None, input: str | None, width: float | None,
                sizes: dict):
    """A model's layer (with --layer: sizes from the model) or a formula (sizes given)."""
    from costmodel.analysis.explain import explain_formula
    from costmodel.analysis.explain_layer import explain_layer
    from costmodel.errors import CostModelError

    if layer is not None:
        given = [f"--{key}" for key, v in sizes.items() if v is not None]
        if given:
            raise CostModelError(f"{', '.join(given)} apply to formulas; with --layer the sizes "
                                 "come from the model (use --input / --width)")
        return explain_layer(api.evaluate_model(target, input=input, width=width), layer)
    if input is not None or width is not None:
        raise CostModelError("--input and --width apply to a model's layer (--layer); a "
                             "formula takes --df, --alpha, --rho")
    return explain_formula(target.lower(), **sizes)


class FailOnOpt(str, Enum):
    info = "info"
    warning = "warning"
    error = "error"


@app.command(help=RULES_HELP, short_help="ShuffleNet V2's guidelines G1–G4 and EffNet's "
                                              "warning as measured checks (--fail-on for CI).")
@handles_errors
def rules(
    model: Annotated[str, typer.Argument(help="Zoo name or spec file.")],
    fail_on: Annotated[FailOnOpt | None, typer.Option(
        "--fail-on", help="Exit with code 1 when a finding is this severe or worse (for CI).")
    ] = None,
    rule: Annotated[list[str] | None, typer.Option(
        "--rule", "-r", help="Only these rules (G1, G2, G3, G4, E1); repeatable.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also list the checks that passed.")] = False,
    input: InputOpt = None,
    width: WidthOpt = None,
    classes: ClassesOpt = None,
    format: FormatOpt = Fmt.table,
    table: RulesTableOpt = None,
    guidelines: Annotated[Optional[str], typer.Option(
        "--guidelines", help="A `costmodel guidelines --measure --format json` file: quote "
                             "what each guideline's violation cost on that machine.")] = None,
):
    """ShuffleNet V2's guidelines as checks (help: RULES_HELP)."""
    from costmodel.analysis.rules import check_rules, fails, rules_payload, rules_tables

    result = api.evaluate_model(model, input=input, width=width, num_classes=classes)
    findings = check_rules(result, only=rule)
    if guidelines is not None:
        from costmodel.analysis.guidelines import quote_costs, read_costs

        findings = quote_costs(findings, read_costs(guidelines))
    show_ok = all_ or format in (Fmt.csv, Fmt.json)  # machine formats: every check
    tables = rules_tables(result, findings, show_ok=show_ok, only=rule)
    emit(render(dict(zip(RULES_TABLES, tables, strict=True)), format.value,
                rules_payload(result, findings, only=rule), table and table.value))
    if fail_on is not None and fails(findings, fail_on.value):
        raise typer.Exit(1)
