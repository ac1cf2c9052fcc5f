"""What tests/test_fuzz.py needs: a way to run the ``costmodel`` command line as its script
does, bounded in time and memory, and generators of (mostly invalid) specs, budgets files and
option values.

Each run forks the test process: the child changes into the example's own temporary folder,
points fds 1 and 2 at files, calls ``costmodel.cli:main`` (the entry point of the installed
``costmodel`` script) and exits with the status the script would have — an exception that
escapes ``main`` prints its traceback and exits 1, as Python does. Forking costs a few
milliseconds (everything is already imported) where a fresh interpreter costs a cold start,
and it lets a hang or a runaway allocation be killed without taking pytest with it (a hang
inside libyaml or pydantic-core cannot be interrupted from Python).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml
from hypothesis import strategies as st

# --- running the command line ----------------------------------------------------------------

MEMORY_HEADROOM = 2 * 1024**3
"""Address space a run may add to the test process's (RLIMIT_AS, Linux): a runaway allocation
fails inside the child instead of exhausting a shared machine."""


@dataclass
class Outcome:
    args: list[str]
    code: int | None          # exit status; None when killed
    out: str
    err: str
    killed: str | None = None  # why the child was killed: "timeout", "signal N"
    seconds: float = 0.0

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.out + self.err

    def describe(self) -> str:
        what = self.killed or f"exit {self.code}"
        return (f"costmodel {' '.join(map(repr, self.args))}: {what} ({self.seconds:.2f} s CPU)\n"
                f"--- stdout (tail)\n{self.out[-1500:]}\n--- stderr (tail)\n{self.err[-2500:]}")


def _address_space() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _child(args: list[str], cwd: Path, out: Path, err: Path, seconds: float) -> None:
    """In the forked child: run the CLI as the installed script would, then _exit."""
    code = 1
    try:
        os.chdir(cwd)
        for fd, path in ((1, out), (2, err)):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(f, fd)
            os.close(f)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        try:
            import resource

            # CPU seconds, not wall time: a machine shared with other work slows a run down
            # several times without it doing any more work.
            resource.setrlimit(resource.RLIMIT_CPU, (max(1, math.ceil(seconds)),
                                                     resource.getrlimit(resource.RLIMIT_CPU)[1]))
            space = _address_space()
            if space is not None:
                resource.setrlimit(resource.RLIMIT_AS, (space + MEMORY_HEADROOM,
                                                        resource.getrlimit(resource.RLIMIT_AS)[1]))
        except (ImportError, ValueError, OSError):
            pass
        from costmodel.cli import main

        sys.argv = ["costmodel", *args]
        try:
            main()
            code = 0
        except SystemExit as e:  # what the interpreter does with it
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF)


WALL_FACTOR = 10
"""A run that does not finish in this many times its CPU limit of wall time is killed too (a
deadlock, a wait on input): generous, for a machine shared with other work."""


def run_cli(args: list[str], cwd: Path, seconds: float) -> Outcome:
    """Run ``costmodel ARGS`` in ``cwd``: killed past ``seconds`` of CPU time (or ten times
    that of wall time); ``Outcome.seconds`` is the CPU time it used."""
    out, err = cwd / ".fuzz-stdout", cwd / ".fuzz-stderr"
    start = time.monotonic()
    with warnings.catch_warnings():  # "fork() in a multi-threaded process" (torch's threads,
        warnings.simplefilter("ignore")  # when other test files ran first): the child runs no torch
        pid = os.fork()
    if pid == 0:
        _child(args, cwd, out, err, seconds)
    killed = None
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > seconds * WALL_FACTOR:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            killed = f"killed after {seconds * WALL_FACTOR:g} s of wall time"
            break
        time.sleep(0.002)
    cpu = usage.ru_utime + usage.ru_stime
    code = None
    if killed is None:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            killed = (f"over {seconds:g} s of CPU time (SIGXCPU)" if sig == signal.SIGXCPU
                      else f"killed by signal {sig}")
        else:
            code = os.WEXITSTATUS(status)
    text = [p.read_bytes().decode("utf-8", "backslashreplace") if p.exists() else ""
            for p in (out, err)]  # bytes: a CR the command wrote stays a CR
    for p in (out, err):
        p.unlink(missing_ok=True)
    return Outcome(list(args), code, text[0], text[1], killed, cpu)


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (not following links): its kind, size, mtime and mode."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root, name)
            st_ = p.lstat()
            found[str(p.relative_to(folder))] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return found


# --- values ----------------------------------------------------------------------------------

def digits(n: int) -> str:
    """An integer of ``n`` digits, as a placeholder that ``dump`` writes as the bare number
    (Python itself refuses to turn an int of over 4300 digits into text)."""
    return f"@@DIGITS:{n}@@"


_DIGITS = re.compile(r"""['"]?@@DIGITS:(\d+)@@['"]?""")

HUGE_INT = st.one_of(st.integers(10**9, 10**40), st.integers(-10**40, -1),
                     st.sampled_from([2**63, 10**100]),
                     st.integers(31, 5000).map(digits))
"""Integers past every size limit, and (over 4300 digits) past Python's int-from-text limit."""

ODD_FLOAT = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -0.0, 2.5, 0.5, 1e-300])

ODD_TEXT = st.one_of(
    st.sampled_from(["", " ", "nan", "inf", "-1", "0", "1_0", "0x10", "1e6", "true", "null",
                     "~", "a\x1b[31mred", "line\nbreak", "tab\there", "é", "$", "$nope",
                     "../x", "/etc/passwd", "a,b|c", "{{x}}", "%s%n", "\u202e", "\x00"]),
    st.text(max_size=12),
)

WRONG = st.one_of(st.booleans(), st.none(), ODD_FLOAT, HUGE_INT, ODD_TEXT,
                  st.integers(-5, 0),
                  st.lists(st.integers(-2, 9), max_size=3),
                  st.dictionaries(st.sampled_from(["a", "type", "out", "n"]),
                                  st.integers(0, 3), max_size=2))
"""A value of the wrong kind for nearly any field."""

UNKNOWN_FIELD = st.one_of(
    st.sampled_from(["kernel-size", "kernel_size", "int", "list", "str", "dict", "a[0]",
                     "[x]", "x-y", "outs", "Type", "layers", "branches", "shortcut", "first"]),
    st.text(min_size=1, max_size=8))
"""Unknown field names, among them the ones whose names look like Pydantic's type labels."""

VAR_NAMES = ["c", "g", "k", "n"]


def _annotation_text(cls, field: str) -> str:
    return str(cls.model_fields[field].annotation)


def plausible(cls, field: str):
    """A value that fits ``cls.field`` most of the time."""
    import typing

    ann = cls.model_fields[field].annotation
    text = _annotation_text(cls, field)
    literal = [a for a in typing.get_args(ann) if not isinstance(a, type)] \
        if typing.get_origin(ann) is typing.Literal else []
    if literal:
        return st.sampled_from(literal)
    if field == "name":
        return st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
    if field in ("layers", "shortcut"):
        return st.deferred(lambda: layer_lists(depth=1))
    if ann is bool:
        return st.booleans()
    if ann is float or text.startswith("float"):
        return st.floats(0.1, 4, allow_nan=False)
    if "int" in text:
        return st.integers(1, 16)
    return st.one_of(st.integers(1, 8), st.booleans())


def layer_types():
    from costmodel.layers import type_names

    return type_names()


@st.composite
def layer(draw, depth: int = 0):
    """A layer mapping: a real type with some of its fields, mostly plausible, sometimes
    mutated (a wrong value, an unknown field, a ``$var``, a missing or unknown type)."""
    names = layer_types()
    kind = draw(st.one_of(st.sampled_from(sorted(names)), st.just("repeat"),
                          ODD_TEXT.filter(lambda t: t not in names)))
    cls = names.get(kind)
    out: dict = {"type": kind}
    if cls is not None:
        fields = [f for f in cls.model_fields if f != "type"]
        if depth >= 2:
            fields = [f for f in fields if f not in ("layers", "shortcut", "branches")]
        for f in draw(st.lists(st.sampled_from(fields), unique=True, max_size=4)
                      if fields else st.just([])):
            if f == "branches" and depth < 2:
                out[f] = draw(st.lists(layer_lists(depth + 1), min_size=1, max_size=3))
            elif f in ("layers", "shortcut") and depth < 2:
                out[f] = draw(layer_lists(depth + 1))
            else:
                out[f] = draw(plausible(cls, f))
        if kind == "repeat":
            out.setdefault("n", draw(st.integers(1, 3)))
            out.setdefault("layers", [{"type": "relu"}])
    mutations = draw(st.integers(0, 2))
    for _ in range(mutations):
        if not out:
            break
        how = draw(st.sampled_from(["wrong", "unknown", "var", "drop_type", "big_repeat"]))
        if how == "wrong":
            key = draw(st.sampled_from(sorted(out)))
            out[key] = draw(WRONG)
        elif how == "unknown":
            out[draw(UNKNOWN_FIELD)] = draw(WRONG)
        elif how == "var":
            key = draw(st.sampled_from(sorted(out)))
            out[key] = "$" + draw(st.sampled_from(VAR_NAMES + ["nope", ""]))
        elif how == "drop_type":
            out.pop("type", None)
        else:
            out = {"type": "repeat", "n": draw(st.sampled_from([10**3, 10**5, 10**6, 10**9])),
                   "layers": [out]}
    return out


def layer_lists(depth: int = 0):
    return st.lists(layer(depth), min_size=0 if depth else 1, max_size=4 if depth == 0 else 2)


GOOD_STEM = [{"type": "conv", "out": 8, "kernel": 3}, {"type": "relu"}]


VALID_SPEC = yaml.safe_load(Path(__file__).resolve().parents[2].joinpath(
    "examples", "tiny_net.yaml").read_text(encoding="utf-8"))
"""A small valid network (examples/tiny_net.yaml): one mutation of it gets past the checks
that refuse most random documents at once, to the code behind them."""


@st.composite
def one_mutation(draw) -> dict:
    """examples/tiny_net.yaml with one thing wrong (or, rarely, nothing)."""
    import copy

    doc = copy.deepcopy(VALID_SPEC)
    layers = doc["layers"]
    i = draw(st.integers(0, len(layers) - 1))
    how = draw(st.sampled_from(["top", "field", "unknown", "insert", "repeat", "var", "none"]))
    if how == "top":
        doc[draw(st.sampled_from(["input", "in_channels", "num_classes", "width", "depth",
                                  "name", "vars", "layers", "rounding"]))] = draw(WRONG)
    elif how == "field":
        layers[i][draw(st.sampled_from(sorted(layers[i])))] = draw(WRONG)
    elif how == "unknown":
        layers[i][draw(UNKNOWN_FIELD)] = draw(st.integers(1, 3))
    elif how == "insert":
        layers.insert(i, draw(layer()))
    elif how == "repeat":
        layers[i] = {"type": "repeat", "n": draw(st.one_of(
            st.sampled_from([10**5, 10**6, 10**9, 10**18]), WRONG)), "layers": [layers[i]]}
    elif how == "var":
        doc["vars"] = {"c": draw(st.one_of(st.integers(1, 64), WRONG))}
        layers[i] = {**layers[i], draw(st.sampled_from(["out", "stride", "kernel"])): "$c"}
    return doc


@st.composite
def grammar_document(draw) -> dict:
    """A spec mapping: top-level fields mostly right, layers from ``layer``."""
    doc = {"name": draw(st.one_of(st.just("fz"), ODD_TEXT)),
           "input": draw(st.one_of(st.integers(8, 64), st.lists(st.integers(8, 64), min_size=2,
                                                                 max_size=2), WRONG)),
           "layers": [*draw(st.sampled_from([[], GOOD_STEM])), *draw(layer_lists())]}
    for key, value in (("in_channels", st.one_of(st.integers(1, 4), WRONG)),
                       ("num_classes", st.one_of(st.integers(1, 10), WRONG)),
                       ("width", st.one_of(st.floats(0.25, 2), WRONG)),
                       ("depth", st.one_of(st.floats(0.5, 2), WRONG)),
                       ("vars", st.dictionaries(st.sampled_from(VAR_NAMES),
                                                st.one_of(st.integers(1, 8), WRONG), max_size=3)),
                       ("rounding", st.one_of(st.just({"rule": "truncate", "min": 8}), WRONG)),
                       (draw(UNKNOWN_FIELD), WRONG)):
        if draw(st.integers(0, 3)) == 0:
            doc[key] = draw(value)
    return doc


def spec_document():
    """Half: one mutation of a valid spec; half: documents from the layer grammar."""
    return st.one_of(one_mutation(), grammar_document())


def dump(doc, as_json: bool = False) -> str:
    """YAML (or JSON) text of ``doc``, ``digits`` placeholders written out."""
    if as_json:
        text = json.dumps(doc, ensure_ascii=False)  # NaN and Infinity as Python writes them
    else:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, default_flow_style=None,
                              width=1 << 16)
    return _DIGITS.sub(lambda m: "9" * int(m.group(1)), text)


DUPLICATE_KEY_YAML = st.sampled_from([
    "name: fz\ninput: 16\ninput: 99\nlayers:\n  - {type: conv, out: 8}\n",
    "name: fz\ninput: 16\nlayers:\n  - type: conv\n    out: 8\n    out: 99\n",
    "name: fz\ninput: 16\nvars:\n  c: 8\n  c: 99\nlayers:\n  - {type: conv, out: $c}\n",
    "name: fz\ninput: 16\nlayers: [{type: conv, out: 8, out: 99}]\n",
    "name: fz\nname: fz2\ninput: 16\nlayers: [{type: relu}]\n",
    '{"name": "fz", "input": 16, "layers": [{"type": "conv", "out": 8, "out": 99}]}\n',
])
"""Specs whose text repeats a key (at the top, in a layer, in ``vars``; YAML and JSON): fixed
texts, so a failure shrinks at once."""


@st.composite
def alias_bomb_yaml(draw) -> str:
    """An exponential alias chain (a "billion laughs"), under a key that is known or not."""
    levels, fan = draw(st.integers(2, 12)), draw(st.integers(2, 10))
    under = draw(st.sampled_from(["notes", "vars", "unknown_key", "layers"]))
    lines = ['a0: &a0 ["lol"]' if under != "layers" else "a0: &a0 [{type: relu}]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * fan)}]")
    body = "\n".join("  " + line for line in lines)
    target = f"*a{levels}"
    if under == "layers":
        return (f"name: fz\ninput: 16\nx-anchors:\n{body}\nlayers:\n  - {{type: sequential, "
                f"layers: {target}}}\n")
    return f"name: fz\ninput: 16\nbomb:\n{body}\n{under}: {target}\nlayers: [{{type: relu}}]\n"


@st.composite
def deep_yaml(draw) -> str:
    """Nesting: flow lists, nested sequential blocks, nested repeats."""
    depth = draw(st.sampled_from([10, 16, 20, 30, 70, 150, 400, 1000, 3000]))
    how = draw(st.sampled_from(["flow", "sequential", "repeat"]))
    if how == "flow":
        return f"name: fz\ninput: 16\nnotes: {'[' * depth}1{']' * depth}\nlayers: [{{type: relu}}]\n"
    inner = "{type: relu}"
    for _ in range(depth if how == "sequential" else min(depth, 200)):
        inner = (f"{{type: sequential, layers: [{inner}]}}" if how == "sequential"
                 else f"{{type: repeat, n: 2, layers: [{inner}]}}")
    return f"name: fz\ninput: 16\nlayers: [{inner}]\n"


RAW_BYTES = st.one_of(
    st.binary(max_size=200),
    st.just(b""),
    st.sampled_from([
        "name: fz\ninput: 16\nlayers: [{type: relu}]\n".encode("utf-16"),
        "name: f\u00e9\ninput: 16\nlayers: [{type: relu}]\n".encode("latin-1"),
        b"\xef\xbb\xbfname: fz\ninput: 16\nlayers: [{type: relu}]\n",
        b"name: fz\x00\ninput: 16\nlayers: [{type: relu}]\n",
        b"\xff\xfe\x00",
        b"!!python/object/apply:os.system ['echo pwned > pwned']\n",
        b"name: !!python/name:os.system fz\nlayers: []\n",
        b"- just\n- a list\n",
        b"42\n",
        b"{",
    ]))
"""File contents that are not a spec at all."""


# --- budgets ---------------------------------------------------------------------------------

VALID_LIMITS = st.sampled_from(["150M", "2.5M", "300k", "1e6", 150000000, "1.2G", "1T", "0"])
RELATIVE_LIMITS = st.sampled_from(["+5%", "-10%", "+0%", "+100%"])
INVALID_LIMITS = st.one_of(
    st.sampled_from(["1_0G", "nan", "inf", "-inf", "-1", "5%", "1.5.5M", "", "M", "150X",
                     "+nan%", "++5%", "1e400", "0x10", "150 MB", "-5"]),
    st.booleans(), st.none(), st.lists(st.integers(0, 9), max_size=2), st.just(math.nan),
    st.just(math.inf), st.just({"flops": 1}), st.just(-1))
VALID_MODELS = st.sampled_from(["mobilenet-0.5", "mobilenet-0.25", "tiny_net.yaml"])
INVALID_MODELS = st.sampled_from(["", "nope", "mobilenet-inf", "mobilenet-nan", "mobilenet-1e400",
                                  "mobilenet--1", "missing.yaml", "../outside/missing.yaml",
                                  "a\x1b[31m", "/dev/null", "sub/", "tiny_net.yaml\n"])
VALID_INPUTS = st.sampled_from([32, 64, "64x48", [64, 48], "96"])
INVALID_INPUTS = st.one_of(
    st.sampled_from([True, False, [12.9, 12.9], 0, -1, "0x5", "nan", "abc", "12.5", [1, 2, 3],
                     [], {}, "1e3", "64x", 10**40, digits(5000)]),
    st.just(math.inf))
VALID_OPTIONS = st.fixed_dictionaries({}, optional={
    "scope": st.sampled_from(["paper", "fvcore"]), "flops_per_madd": st.sampled_from([1, 2]),
    "bn_params": st.booleans(), "dtype": st.sampled_from(["float32", "float16", "int8"])})
INVALID_OPTIONS = st.sampled_from([
    {"scope": "x"}, {"flops_per_madd": 3}, {"flops_per_madd": True}, {"flops_per_madd": 1.5},
    {"bn_params": "yes please"}, {"dtype": "int4"}, {"unknown": 1}, {"scope": None}, [], "paper"])
METRICS = ["flops", "params", "mac", "mac_bytes", "peak_activation"]


@st.composite
def budget_entry(draw) -> tuple[dict, bool]:
    """(an entry of ``models``, whether it is valid)."""
    ok = True
    entry: dict = {}
    if draw(st.integers(0, 5)):
        entry["model"] = draw(VALID_MODELS)
    else:
        entry["model"], ok = draw(st.one_of(INVALID_MODELS, WRONG)), False
    if draw(st.booleans()):
        if draw(st.integers(0, 3)):
            entry["input"] = draw(VALID_INPUTS)
        else:
            entry["input"], ok = draw(INVALID_INPUTS), False
    has_baseline = draw(st.integers(0, 2)) == 0
    if has_baseline:
        kind = draw(st.integers(0, 4))
        if kind == 0:
            entry["baseline"] = {"model": draw(VALID_MODELS), "input": draw(VALID_INPUTS)}
        elif kind == 1:
            entry["baseline"], ok = draw(st.one_of(INVALID_MODELS, WRONG.filter(
                lambda v: not isinstance(v, str)))), False
            has_baseline = False
        else:
            entry["baseline"] = draw(VALID_MODELS)
    metrics = draw(st.lists(st.sampled_from(METRICS), unique=True, min_size=0, max_size=3))
    if not metrics:
        ok = False
    limits: dict = {}
    for m in metrics:
        pick = draw(st.integers(0, 5))
        if pick == 0:
            limits[m], ok = draw(INVALID_LIMITS), False
        elif pick == 1:
            limits[m] = draw(RELATIVE_LIMITS)
            ok = ok and has_baseline
        else:
            limits[m] = draw(VALID_LIMITS)
    if draw(st.integers(0, 8)) == 0:
        limits[draw(st.sampled_from(["flop", "FLOPs", "latency", "mac-bytes"]))] = "1M"
        ok = False
    entry["limits"] = limits
    if draw(st.integers(0, 8)) == 0:
        entry[draw(st.sampled_from(["limit", "inputs", "Model", "extra"]))] = 1
        ok = False
    if draw(st.integers(0, 4)) == 0:
        entry["name"] = draw(st.sampled_from(["a name", "x", "\x1b[2J", "line\nbreak"]))
    return entry, ok


@st.composite
def random_budgets(draw) -> tuple[object, bool]:
    """(a budgets document of random entries, whether all of it is valid)."""
    entries = draw(st.lists(budget_entry(), min_size=0, max_size=3))
    doc: dict = {"models": [e for e, _ in entries]}
    ok = bool(entries) and all(v for _, v in entries)
    if draw(st.booleans()):
        if draw(st.integers(0, 3)):
            doc["options"] = draw(VALID_OPTIONS)
        else:
            doc["options"], ok = draw(INVALID_OPTIONS), False
    if draw(st.integers(0, 10)) == 0:
        doc[draw(st.sampled_from(["model", "limits", "extra"]))], ok = 1, False
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from([[], "models", None, 3])), False
    return doc, ok


@st.composite
def budgets_one_mutation(draw) -> tuple[object, bool]:
    """(a valid budgets document with at most one invalid value, whether it is valid)."""
    entry = {"model": draw(VALID_MODELS), "input": draw(VALID_INPUTS),
             "baseline": draw(VALID_MODELS),
             "limits": {"flops": draw(VALID_LIMITS), "params": draw(RELATIVE_LIMITS)}}
    doc = {"options": draw(VALID_OPTIONS), "models": [entry]}
    how = draw(st.sampled_from(["none", "limit", "model", "input", "baseline", "option",
                                "baseline_input"]))
    if how == "none":
        return doc, True
    if how == "limit":
        entry["limits"][draw(st.sampled_from(["flops", "params"]))] = draw(INVALID_LIMITS)
    elif how == "model":
        entry["model"] = draw(st.one_of(INVALID_MODELS, WRONG))
    elif how == "input":
        entry["input"] = draw(INVALID_INPUTS)
    elif how == "baseline":
        entry["baseline"] = draw(st.one_of(INVALID_MODELS, WRONG))
    elif how == "baseline_input":
        entry["baseline"] = {"model": "mobilenet-0.25", "input": draw(INVALID_INPUTS)}
    else:
        doc["options"] = draw(INVALID_OPTIONS)
    return doc, False


def budgets_document():
    """Half: one invalid value in a valid file; half: random entries."""
    return st.one_of(budgets_one_mutation(), random_budgets())


# --- option values ---------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e300", "-1", "0", "0.0", "1e-300", "1_0", "0x5",
                     "", " ", "1,5", "2.5", "abc", "9" * 40, "9" * 5000, "-0", "1e400"]),
    st.integers(-10, 300).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr))
SIZE_TEXT = st.one_of(NUMBER_TEXT, st.sampled_from(
    ["32", "224x160", "0x5", "5x0", "x", "32x", "1e6x1e6", "1000000x1000000", "2000000",
     "32X32", "32×32", "-32", "3.5", "32,64", "96:224:16", "1:1000000:1", "1:2:0", "5:1:1"]))
