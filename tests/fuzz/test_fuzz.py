"""Random — mostly invalid — specs, budgets files and command lines, run through the command
line as its script runs it (tests/fuzz_strategies.py), and the guarantees that hold for all:

- the exit code is 0, 1 or 2 (never 3, an internal error; never a crash), with no traceback;
- nothing outside the example's own temporary folder changes, and in it only the outputs the
  command was asked for appear;
- each run ends within ``COSTMODEL_FUZZ_SECONDS`` (killed past it), in bounded memory;
- in ``check``, an invalid budgets entry gives 2, never 0 or 1; a valid one never gives 2.

Each property runs ``COSTMODEL_FUZZ_EXAMPLES`` examples (default 25, three times that for specs
and budgets files: the whole file takes about a minute on 2 busy cores when nothing fails); COSTMODEL_FUZZ_EXAMPLES=2000 searches harder. Nothing
here imports torch.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_strategies as fz

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="runs the CLI in a fork()")

EXAMPLES = int(os.environ.get("COSTMODEL_FUZZ_EXAMPLES", 25))
SECONDS = float(os.environ.get("COSTMODEL_FUZZ_SECONDS", 3))
"""CPU seconds one command may use (the limits in costmodel.limits refuse hostile input in
well under one). Hypothesis's own deadline is off: it measures wall time, which a machine
shared with other work stretches several times over; run_cli bounds CPU time instead."""

SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
MORE = settings(SETTINGS, max_examples=3 * EXAMPLES)
"""For the generators whose failures hide behind one draw in many (one wrong value in an
otherwise valid file): ~0.1 s an example."""

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["show", "compare", "dataflow", "rules"]
ALLOWED = {0, 1, 2}


class Sandbox:
    """A session folder: ``outside/`` holds files a command must never touch (a spec, a plot,
    a CSV, a pickle, a budgets file), and each example gets a fresh folder next to it."""

    def __init__(self, base: Path):
        self.base = base
        self.outside = base / "outside"
        self.outside.mkdir()
        shutil.copy(REPO / "examples" / "tiny_net.yaml", self.outside / "x.yaml")
        for name, data in (("x.png", b"\x89PNG\r\n"), ("x.csv", b"a,b\n1,2\n"),
                           ("x.pickle", b"\x80\x04N."), ("budgets.yaml", b"models: []\n")):
            (self.outside / name).write_bytes(data)
        self._counter = itertools.count()
        self.watched = {self.outside: fz.snapshot(self.outside),
                        REPO / "specs": fz.snapshot(REPO / "specs"),
                        REPO / "examples": fz.snapshot(REPO / "examples")}

    def folder(self) -> Path:
        """A fresh folder holding a copy of tiny_net.yaml (a valid spec to refer to)."""
        d = self.base / f"ex{next(self._counter)}"
        d.mkdir()
        shutil.copy(REPO / "examples" / "tiny_net.yaml", d / "tiny_net.yaml")
        return d

    def run(self, folder: Path, args: list[str], outputs: tuple[str, ...] = ()) -> fz.Outcome:
        """Run ``costmodel ARGS`` in ``folder`` and check what every run must do; ``outputs``
        are the names the command was asked to write there."""
        assert folder.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve()) \
            or folder.resolve().is_relative_to(self.base.resolve()), folder
        before = fz.snapshot(folder)
        outcome = fz.run_cli(args, folder, SECONDS)
        assert outcome.killed is None, outcome.describe()
        assert outcome.code in ALLOWED, outcome.describe()
        assert not outcome.traceback, outcome.describe()
        after = fz.snapshot(folder)
        changed = {k for k in before if after.get(k) != before[k]}
        assert not changed, f"changed or removed {sorted(changed)}\n{outcome.describe()}"
        new = {k for k in after if k not in before}
        unexpected = {k for k in new if k.split(os.sep)[0] not in outputs}
        assert not unexpected, f"made {sorted(unexpected)}\n{outcome.describe()}"
        if outcome.code != 0:
            assert not (new & set(outputs)), f"left {sorted(new)} on failure\n{outcome.describe()}"
        for watched, snap in self.watched.items():
            assert fz.snapshot(watched) == snap, f"{watched} changed\n{outcome.describe()}"
        shutil.rmtree(folder)
        return outcome


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Sandbox:
    # Everything a command needs is imported here, once: each fork then starts warm.
    import costmodel.analysis.dataflow  # noqa: F401
    import costmodel.analysis.explain  # noqa: F401
    import costmodel.analysis.rules  # noqa: F401
    import costmodel.analysis.scale  # noqa: F401
    import costmodel.analysis.sweep  # noqa: F401
    import costmodel.budgets  # noqa: F401
    import costmodel.cli  # noqa: F401
    import costmodel.layers

    costmodel.layers.layer_union()
    old = {k: os.environ.pop(k, None) for k in ("COSTMODEL_DEBUG", "GITHUB_STEP_SUMMARY")}
    yield Sandbox(tmp_path_factory.mktemp("fuzz"))
    os.environ.update({k: v for k, v in old.items() if v is not None})


def _write(folder: Path, name: str, content: str | bytes) -> str:
    (folder / name).write_bytes(content if isinstance(content, bytes)
                                else content.encode("utf-8", "surrogatepass"))
    return name


def _spec_args(command: str, file: str, fmt: str) -> list[str]:
    extra = ["mobilenet-0.25"] if command in ("compare", "dataflow") else []
    return [command, file, *extra, "-f", fmt]


FORMATS = st.sampled_from(["table", "csv", "json", "markdown"])


# --- specs -----------------------------------------------------------------------------------

@MORE
@given(doc=fz.spec_document(), as_json=st.booleans(), command=st.sampled_from(COMMANDS),
       fmt=FORMATS)
def test_specs_from_the_grammar(sandbox, doc, as_json, command, fmt):
    """Plausible layers with wrong values, unknown fields, $vars, big repeats."""
    d = sandbox.folder()
    name = _write(d, "spec.json" if as_json else "spec.yaml", fz.dump(doc, as_json))
    sandbox.run(d, _spec_args(command, name, fmt))


@SETTINGS
@given(text=fz.DUPLICATE_KEY_YAML, command=st.sampled_from(COMMANDS))
def test_duplicate_keys_are_refused(sandbox, text, command):
    d = sandbox.folder()
    name = "spec.json" if text.startswith("{") else "spec.yaml"
    out = sandbox.run(d, _spec_args(command, _write(d, name, text), "table"))
    assert out.code == 2 and "duplicate" in out.err.lower(), out.describe()


@SETTINGS
@given(text=fz.alias_bomb_yaml(), command=st.sampled_from(COMMANDS))
def test_alias_bombs_are_refused(sandbox, text, command):
    """Every bomb puts a list where none may be: invalid, whatever its size."""
    d = sandbox.folder()
    out = sandbox.run(d, _spec_args(command, _write(d, "spec.yaml", text), "table"))
    assert out.code == 2, out.describe()


@SETTINGS
@given(text=fz.deep_yaml(), command=st.sampled_from(COMMANDS))
def test_deep_nesting(sandbox, text, command):
    d = sandbox.folder()
    sandbox.run(d, _spec_args(command, _write(d, "spec.yaml", text), "table"))


@SETTINGS
@given(data=fz.RAW_BYTES, suffix=st.sampled_from([".yaml", ".json", ".yml"]),
       command=st.sampled_from(COMMANDS))
def test_files_that_are_not_specs(sandbox, data, suffix, command):
    """Random bytes, UTF-16, Latin-1, NUL, an empty file, python tags: exit 2 and nothing
    run (a python tag that ran would have written ``pwned``, which the sandbox refuses)."""
    d = sandbox.folder()
    out = sandbox.run(d, _spec_args(command, _write(d, "spec" + suffix, data), "table"))
    assert out.code in (0, 2), out.describe()


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Characters that must not reach a terminal raw (newline and tab aside)."""


@SETTINGS
@given(name=st.text(st.sampled_from("ab,|\"'\n\r\t\x1b[]\x07\x9b\u202e;#"), min_size=1,
                    max_size=12),
       command=st.sampled_from(["show", "compare", "rules"]), fmt=FORMATS)
def test_names_cannot_inject(sandbox, name, command, fmt):
    """A model name with escapes, newlines, quotes and separators: no control character in
    the output, and a CSV or Markdown row stays one row."""
    d = sandbox.folder()
    doc = {"name": name, "input": 16, "layers": [{"type": "conv", "out": 4}]}
    out = sandbox.run(d, _spec_args(command, _write(d, "spec.yaml", fz.dump(doc)), fmt))
    if out.code == 2:
        return
    assert not CONTROL.search(out.out + out.err), out.describe()
    if fmt == "csv":
        _check_csv(out)
    if fmt == "markdown":
        _check_markdown(out)


def _check_csv(out: fz.Outcome) -> None:
    """The output is one table, as ``pandas.read_csv`` loads it as it is: no empty row, no
    comment row, rows of one length, as a CSV reader reads it (a raw CR or LF ends a row)."""
    rows = list(csv.reader(io.StringIO(out.out, newline="")))
    assert all(rows), f"an empty row (a second table?)\n{out.describe()}"
    assert len({len(r) for r in rows}) <= 1, f"ragged CSV\n{out.describe()}"


def _check_markdown(out: fz.Outcome) -> None:
    """Every line of a table starts with '|' and has as many unescaped '|' as its header
    (CommonMark ends a line at CR, LF or CRLF)."""
    for block in re.split(r"\n[ \t]*\n", out.out):
        lines = [line for line in re.split(r"\r\n|\r|\n", block) if line.strip()]
        table = list(itertools.dropwhile(lambda line: not line.startswith("|"), lines))
        cells = {len(re.findall(r"(?<!\\)\|", line)) for line in table}
        assert all(line.startswith("|") for line in table) and len(cells) <= 1, \
            f"broken Markdown table\n{out.describe()}"


# --- budgets files ---------------------------------------------------------------------------

@MORE
@given(doc_ok=fz.budgets_document(), fmt=FORMATS)
def test_budgets_files(sandbox, doc_ok, fmt):
    """Exit 2 exactly when the file is invalid; a verdict (0 or 1) only for a valid one."""
    doc, ok = doc_ok
    d = sandbox.folder()
    name = _write(d, "budgets.yaml", fz.dump(doc))
    out = sandbox.run(d, ["check", "--budgets", name, "-f", fmt])
    if ok:
        assert out.code in (0, 1), f"valid file refused\n{fz.dump(doc)}\n{out.describe()}"
    else:
        assert out.code == 2, f"invalid file gave a verdict\n{fz.dump(doc)}\n{out.describe()}"


@SETTINGS
@given(key=st.sampled_from(["flops", "params"]), where=st.sampled_from(["limits", "entry", "top"]))
def test_budgets_duplicate_keys(sandbox, key, where):
    body = {"limits": f"models:\n  - model: mobilenet-0.25\n    limits: {{{key}: 1k, {key}: 1T}}\n",
            "entry": "models:\n  - model: mobilenet-0.25\n    model: nope\n"
                     f"    limits: {{{key}: 1T}}\n",
            "top": f"models:\n  - {{model: nope, limits: {{{key}: 1T}}}}\n"
                   f"models:\n  - {{model: mobilenet-0.25, limits: {{{key}: 1T}}}}\n"}[where]
    d = sandbox.folder()
    out = sandbox.run(d, ["check", "--budgets", _write(d, "budgets.yaml", body)])
    assert out.code == 2 and "duplicate" in out.err.lower(), out.describe()


# --- command lines ---------------------------------------------------------------------------

MODELS = st.one_of(st.sampled_from(["mobilenet", "mobilenet-0.5", "tiny_net.yaml",
                                    "mobilenet-inf", "mobilenet-nan", "mobilenet-1e300",
                                    "mobilenet--0.5", "nope", "missing.yaml", "", "-",
                                    "shufflenet-g3", "effnet"]),
                   fz.ODD_TEXT)
TEXT_VALUE = st.one_of(fz.NUMBER_TEXT, fz.ODD_TEXT)
OPTIONS = {
    "compare": {"--input": fz.SIZE_TEXT, "--width": fz.NUMBER_TEXT, "--classes": fz.NUMBER_TEXT,
                "--flops-per-madd": fz.NUMBER_TEXT, "--dtype": TEXT_VALUE},
    "show": {"--input": fz.SIZE_TEXT, "--width": fz.NUMBER_TEXT, "--classes": fz.NUMBER_TEXT,
             "--scope": TEXT_VALUE},
    "scale": {"--width": fz.NUMBER_TEXT, "--depth": fz.NUMBER_TEXT,
              "--resolution": fz.NUMBER_TEXT, "--phi": fz.NUMBER_TEXT,
              "--alpha": fz.NUMBER_TEXT, "--beta": fz.NUMBER_TEXT, "--gamma": fz.NUMBER_TEXT,
              "--input": fz.SIZE_TEXT, "--round-input": fz.NUMBER_TEXT, "--name": TEXT_VALUE},
    "sweep": {"--width": fz.SIZE_TEXT, "--depth": fz.SIZE_TEXT, "--resolution": fz.SIZE_TEXT,
              "--input": fz.SIZE_TEXT, "--var": TEXT_VALUE, "--groups": fz.SIZE_TEXT,
              "--max-flops": TEXT_VALUE, "--max-params": TEXT_VALUE,
              "--max-mac": TEXT_VALUE, "--max-activation": TEXT_VALUE},
    "explain": {"--k": fz.NUMBER_TEXT, "--m": fz.NUMBER_TEXT, "--n": fz.NUMBER_TEXT,
                "--df": fz.NUMBER_TEXT, "--g": fz.NUMBER_TEXT, "--alpha": fz.NUMBER_TEXT,
                "--rho": fz.NUMBER_TEXT, "--input": fz.SIZE_TEXT, "--layer": TEXT_VALUE},
}
FORMULAS = ["conv", "group", "dwsep", "mobilenet", "effnet", "shufflenet", "mac"]


@st.composite
def command_line(draw) -> tuple[list[str], tuple[str, ...]]:
    command = draw(st.sampled_from(sorted(OPTIONS)))
    target = draw(st.one_of(st.sampled_from(FORMULAS), MODELS)) if command == "explain" \
        else draw(MODELS)
    args = [command, target]
    for flag in draw(st.lists(st.sampled_from(sorted(OPTIONS[command])), unique=True,
                              max_size=3)):
        args += [flag, draw(OPTIONS[command][flag])]
    outputs: tuple[str, ...] = ()
    if command == "scale" and draw(st.integers(0, 3)) == 0:
        outputs = (draw(st.sampled_from(["out.yaml", "out.json", "out.txt"])),)
        args += ["--write", outputs[0]]
    if command == "sweep" and draw(st.integers(0, 3)) == 0:
        outputs = (draw(st.sampled_from(["grid.csv", "grid.json", "grid.md", "grid.xyz"])),)
        args += ["-o", outputs[0]]
    return args, outputs


@SETTINGS
@given(line=command_line())
def test_command_lines(sandbox, line):
    args, outputs = line
    d = sandbox.folder()
    sandbox.run(d, args, outputs)


@SETTINGS
@given(formula=st.sampled_from(FORMULAS),
       sizes=st.fixed_dictionaries({}, optional={f: st.integers(1, 12) for f in
                                                 ("k", "m", "n", "df", "g")}))
def test_explain_never_differs_from_the_engine(sandbox, formula, sizes):
    """A formula with valid sizes agrees with the engine (exit 0) or refuses them (exit 2):
    exit 1 ("differs") would be a false answer."""
    d = sandbox.folder()
    args = ["explain", formula, *itertools.chain.from_iterable(
        (f"--{k}", str(v)) for k, v in sizes.items())]
    out = sandbox.run(d, args)
    assert out.code in (0, 2), out.describe()


def test_no_torch_on_this_path():
    """The fuzzed commands are the analytic ones: this file and what its sandbox preloads
    import no torch (in a fresh interpreter: another test file may have imported it here)."""
    code = ("import sys; sys.path.insert(0, 'tests/fuzz'); import test_fuzz, costmodel.cli, "
            "costmodel.budgets, costmodel.analysis.explain, costmodel.analysis.scale, "
            "costmodel.analysis.sweep, "
            "costmodel.analysis.rules, costmodel.analysis.dataflow, costmodel.layers; "
            "costmodel.layers.layer_union(); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
