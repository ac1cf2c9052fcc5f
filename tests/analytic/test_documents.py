"""Strict reading of spec and budgets files (costmodel.documents): every defect of issue #12's
classes 3, 4, 5 and 8 that lives in reading a document is refused with exit 2 and a one-line
message naming the file and where in it — never a traceback, never a silent last-key-wins."""

from __future__ import annotations

import json
import os
import time

import pytest
import yaml
from typer.testing import CliRunner

from costmodel import documents
from costmodel.budgets import BudgetError
from costmodel.cli import app
from costmodel.errors import LimitError, SpecError

runner = CliRunner()

HEAD = "name: bad\ninput: 32\nlayers:\n"


def col(line: str, text: str) -> int:
    """The 1-based column where ``text`` starts in ``line``."""
    return line.index(text) + 1


def fails(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.stdout == ""
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    return res.stderr


def bomb(levels: int = 9, fan: int = 9) -> str:
    """The "billion laughs": each level an anchored list of ``fan`` aliases of the one below,
    ``fan ** levels`` strings when expanded, in some 600 bytes."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * fan) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return "name: bomb\nlayers: []\nunknown:\n  " + "\n  ".join(lines) + "\n"


DUP = "  - {type: conv, out: 8, out: 99}"
NESTED_DUP = "      - {name: c, type: conv,\n         out: 8, kernel: 3, out: 99}"
BIG = "9" * 5000
LAYER = "  - {name: c1, type: conv, out: 8, %s: 3}"

# (file name, file bytes, fragments the message must hold besides the file name)
SPEC_CASES = {
    "duplicate key": ("dup.yaml", HEAD + DUP + "\n",
                      [f"line 4, column {col(DUP, 'out: 99')}", "duplicate key 'out'",
                       f"first at line 4, column {col(DUP, 'out: 8')}"]),
    "duplicate key, nested": (
        "dup2.yaml", HEAD + "  - name: s\n    type: stage\n    layers:\n" + NESTED_DUP + "\n",
        [f"line 8, column {col(NESTED_DUP.splitlines()[1], 'out: 99')}", "duplicate key 'out'",
         "first at line 8"]),
    "duplicate top-level key": ("dup3.yaml", "name: a\nname: b\nlayers: []\n",
                                ["line 2, column 1", "duplicate key 'name'"]),
    "duplicate key in JSON": ("dup.json", '{"name": "a", "layers": [{"type": "conv", "out": 8, '
                              '"out": 99}]}', ["duplicate key 'out'", "keys type, out"]),
    "latin-1": ("latin.yaml", b"name: caf\xe9\nlayers: []\n",
                ["not UTF-8", "byte 0xE9 at offset 9 (line 1)", "save the file as UTF-8"]),
    "latin-1, line 3": ("latin3.yaml", b"name: x\ninput: 32\n# \xff\n",
                        ["byte 0xFF at offset 20 (line 3)"]),
    "UTF-16": ("u16.yaml", "name: x\nlayers: []\n".encode("utf-16"),
               ["the file is UTF-16", "save it as UTF-8"]),
    "UTF-16 big-endian": ("u16be.yaml", b"\xfe\xff" + "name: x\n".encode("utf-16-be"),
                          ["the file is UTF-16"]),
    "UTF-32": ("u32.yaml", "name: x\n".encode("utf-32"), ["the file is UTF-32"]),
    "UTF-16 without a BOM": ("u16n.yaml", "name: x\n".encode("utf-16-le"),
                             ["NUL character at offset 1", "UTF-16", "save it as UTF-8"]),
    "alias bomb": ("bomb.yaml", bomb(),
                   ["over the limit of 200,000 nodes", "COSTMODEL_MAX_YAML_NODES"]),
    "recursive alias": ("rec.yaml", "name: r\nlayers: &a [*a]\n",
                        ["line 2, column 9", "recursive alias"]),
    "recursive alias in a mapping": ("rec2.yaml", "name: r\nx: &m {y: *m}\nlayers: []\n",
                                     ["recursive alias"]),
    "200-deep lists": ("deep.yaml", "name: d\nlayers: " + "[" * 200 + "]" * 200 + "\n",
                       ["over the limit of 64 levels of nesting", "201 levels",
                        # the 65th level: the root mapping, then lists from column 9
                        f"line 2, column {len('layers: ') + 64}", "COSTMODEL_MAX_NESTING"]),
    "2000-deep block lists": ("deepb.yaml", "name: d\nlayers:\n" + "- " * 2000 + "1\n",
                              ["levels of nesting", "COSTMODEL_MAX_NESTING"]),
    "2000-deep JSON": ("deep.json", '{"layers": ' + "[" * 2000 + "]" * 2000 + "}",
                       ["over the limit of 64 levels of nesting", "COSTMODEL_MAX_NESTING"]),
    "700-deep JSON": ("deep7.json", '{"layers": ' + "[" * 700 + "]" * 700 + "}",
                      ["64 levels of nesting", "65+ levels"]),
    "5000-digit integer": ("big.yaml", HEAD + f"  - {{type: conv, out: {BIG}}}\n",
                           ["over the limit of 30 digits", "5,000 digits",
                            f"line 4, column {len('  - {type: conv, out: ') + 1}",
                            "COSTMODEL_MAX_INT_DIGITS"]),
    "31-digit integer": ("big31.yaml", HEAD + f"  - {{type: conv, out: {'1' * 31}}}\n",
                         ["31 digits", "line 4"]),
    "5000-digit integer in JSON": ("big.json", '{"name": "b", "input": ' + BIG + "}",
                                   ["over the limit of 30 digits", "5,000 digits"]),
    "base-60 integer": ("b60.yaml", "name: b\ninput: " + ":".join(["1"] * 25) + "\n",
                        # 60**24 has 43 digits
                        [f"{len(str(60 ** 24))} digits", "line 2, column 8"]),
    ".nan": ("nan.yaml", "name: n\nwidth: .nan\nlayers: []\n",
             ["line 2, column 8", "'.nan' is not a finite number"]),
    ".inf": ("inf.yaml", HEAD + "  - {type: conv, out: 8}\ndepth: -.inf\n",
             ["line 5, column 8", "'-.inf' is not a finite number"]),
    "1e400 overflows": ("ovf.yaml", "name: n\nwidth: 1.0e+400\nlayers: []\n",
                        ["line 2", "is not a finite number"]),
    "NaN in JSON": ("nan.json", '{"name": "n", "width": NaN, "layers": []}',
                    ["NaN is not a number JSON allows"]),
    "-Infinity in JSON": ("inf.json", '{"name": "n", "width": -Infinity}', ["-Infinity"]),
    "1e400 in JSON": ("ovf.json", '{"name": "n", "width": 1e400}', ["1e400 is not a finite"]),
    "invalid JSON": ("bad.json", '{"name": "n",\n "layers": [}', ["invalid JSON at line 2"]),
    "two YAML documents": ("two.yaml", "name: a\n---\nname: b\n",
                           ["invalid YAML at line 2, column 1", "another document"]),
    "unknown field kernel-size": ("kebab.yaml", HEAD + LAYER % "kernel-size" + "\n",
                                  ["layer 'c1'", "field 'kernel-size'", "unknown field"]),
    "unknown field int": ("int.yaml", HEAD + LAYER % "int" + "\n",
                          ["layer 'c1'", "field 'int'", "unknown field"]),
    "unknown field list": ("list.yaml", HEAD + LAYER % "list" + "\n",
                           ["layer 'c1'", "field 'list'", "unknown field"]),
    "unknown field list[int]": ("listint.yaml", HEAD + LAYER % "'list[int]'" + "\n",
                                ["layer 'c1'", "field 'list[int]'", "unknown field"]),
    "unknown top-level field": ("top.yaml", HEAD.replace("input", "float: 1\ninput")
                                + "  - {type: conv, out: 8}\n",
                                ["field 'float'", "unknown field"]),
    "unknown variable in a stage": (
        "nope.yaml", HEAD + "  - {name: s, type: stage, layers: [{name: c1, type: conv, "
        "out: $nope}]}\n", ["layer 's.c1'", "field 'out'", "unknown variable '$nope'"]),
    "unknown variable in a branch": (
        "nope2.yaml", HEAD + "  - {name: p, type: parallel, merge: concat, branch_names: [a, b], "
        "branches: [[{type: conv, out: 4}], [{name: c, type: conv, out: 4, kernel: $k}]]}\n",
        ["layer 'p.b.c'", "field 'kernel'", "unknown variable '$k'"]),
    "unknown variable in a shortcut": (
        "nope3.yaml", HEAD + "  - {name: r, type: residual, layers: [{type: conv, out: 4}], "
        "shortcut: [{type: conv, out: $w}]}\n", ["layer 'r.shortcut.0'", "field 'out'"]),
    "unknown variable in an override": (
        "nope4.yaml", HEAD + "  - {name: st, type: repeat, n: 2, first: {stride: $s}, "
        "layers: [{type: conv, out: 8}]}\n", ["layer 'st'", "field 'first.stride'"]),
    "unknown variable at the top": ("nope5.yaml", "name: v\ninput: $size\nlayers: []\n",
                                    ["field 'input'", "unknown variable '$size'"]),
    "unknown variable in a variable": ("nope6.yaml", "name: v\nvars: {a: $b}\nlayers: []\n",
                                       ["field 'vars.a'", "unknown variable '$b'"]),
    "vars is a list": ("vars.yaml", "name: v\nvars: [1]\nlayers: []\n",
                       ["field 'vars'", "must be a mapping, not list"]),
}


@pytest.mark.parametrize("name, content, expected", SPEC_CASES.values(), ids=SPEC_CASES.keys())
def test_bad_spec_documents_exit_2_located(tmp_path, name, content, expected):
    spec = tmp_path / name
    spec.write_bytes(content if isinstance(content, bytes) else content.encode())
    err = fails("show", str(spec))
    assert f"error: {spec}: " in err
    for text in expected:
        assert text in err, err


BUDGET_CASES = {
    "duplicate metric": ("models:\n  - model: mobilenet\n    limits: {flops: 1k, flops: 1T}\n",
                         ["line 3, column 25", "duplicate key 'flops'",
                          "first at line 3, column 14"]),
    "duplicate entry key": ("models:\n  - model: mobilenet\n    model: vgg16\n"
                            "    limits: {flops: 1k}\n", ["line 3", "duplicate key 'model'"]),
    "latin-1": (b"# caf\xe9\nmodels: []\n", ["not UTF-8", "byte 0xE9 at offset 5"]),
    "UTF-16": ("models: []\n".encode("utf-16"), ["the file is UTF-16"]),
    "alias bomb": (bomb().replace("name: bomb\nlayers: []\n", ""), ["COSTMODEL_MAX_YAML_NODES"]),
    "NaN limit": ("models: [{model: mobilenet, limits: {flops: .nan}}]\n",
                  ["line 1", "'.nan' is not a finite number"]),
    "huge integer": (f"models: [{{model: mobilenet, limits: {{flops: {BIG}}}}}]\n",
                     ["COSTMODEL_MAX_INT_DIGITS", "5,000 digits", "line 1"]),
}


@pytest.mark.parametrize("content, expected", BUDGET_CASES.values(), ids=BUDGET_CASES.keys())
def test_bad_budget_documents_exit_2_located(tmp_path, content, expected):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_bytes(content if isinstance(content, bytes) else content.encode())
    err = fails("check", "--budgets", str(budgets))
    assert f"error: {budgets}: " in err
    for text in expected:
        assert text in err, err


def test_the_alias_bomb_is_refused_fast(tmp_path):
    spec = tmp_path / "bomb.yaml"
    spec.write_text(bomb())
    assert len(spec.read_bytes()) < 700  # ~9**9 = 387,420,489 strings when expanded
    start = time.perf_counter()
    with pytest.raises(LimitError, match="COSTMODEL_MAX_YAML_NODES"):
        documents.read(spec, SpecError)
    assert time.perf_counter() - start < 2.0  # a bound, not a benchmark


@pytest.fixture(params=["libyaml", "pure-python"])
def loader_kind(request, monkeypatch):
    """Run a test with libyaml's CSafeLoader underneath and with the pure-Python SafeLoader."""
    monkeypatch.setattr(documents, "_LOADER", None)
    if request.param == "pure-python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    yield request.param
    documents._LOADER = None  # rebuilt on the real base after the monkeypatch is undone


def test_the_strict_loader_keeps_libyaml(loader_kind):
    bases = [c.__name__ for c in documents._loader().__mro__]
    assert ("CSafeLoader" in bases) == (loader_kind == "libyaml")
    assert "SafeConstructor" in bases  # Python-level: the strict constructors apply to both


@pytest.mark.parametrize("text, expected", [
    ("a: 1\nb: {c: 2, c: 3}\n", "duplicate key 'c'"),
    ("- .inf\n", "not a finite number"),
    ("x: " + "9" * 40 + "\n", "40 digits"),
    ("x: &a [*a]\n", "recursive alias"),
    ("x: " + "[" * 100 + "]" * 100 + "\n", "101 levels"),
    # past the pure-Python composer's recursion (~500 levels; libyaml's own stop at 1,000 is
    # in SPEC_CASES); not much further: PyYAML's Python scanner is quadratic in flow depth
    ("x: " + "[" * 600 + "]" * 600 + "\n", "levels of nesting"),
], ids=["duplicate", "inf", "digits", "recursive", "nesting", "very deep"])
def test_both_loaders_refuse_the_same(tmp_path, loader_kind, text, expected):
    f = tmp_path / "doc.yaml"
    f.write_text(text)
    with pytest.raises((SpecError, LimitError), match=expected.replace("[", r"\[")) as e:
        documents.read(f, SpecError)
    assert str(f) in str(e.value)


def test_aliases_are_counted_at_every_use(tmp_path, monkeypatch):
    f = tmp_path / "doc.yaml"
    f.write_text("a: &a [1, 2, 3]\nb: [*a, *a, *a]\n")
    # root 1 + keys a, b 2 + the list under a 4 + the list under b 1 + 3 uses × 4
    nodes = 1 + 2 + 4 + 1 + 3 * 4
    monkeypatch.setenv("COSTMODEL_MAX_YAML_NODES", str(nodes))
    assert documents.read(f, SpecError) == {"a": [1, 2, 3], "b": [[1, 2, 3]] * 3}
    monkeypatch.setenv("COSTMODEL_MAX_YAML_NODES", str(nodes - 1))
    with pytest.raises(LimitError, match=f"{nodes:,}\\+ nodes"):
        documents.read(f, SpecError)


@pytest.mark.parametrize("text, expected", [
    ("x: {<<: *b, a: 3}", {"a": 3, "b": 2}),  # own keys win
    ("x: {<<: *m, b: 4}", {"a": 3, "b": 4}),  # also over a merged mapping's own (PyYAML: a=1)
    ("x: {<<: [*c, *b]}", {"a": 5, "b": 2}),  # the earlier merged mapping wins
    ("x: {<<: [*b, *c], c: 0}", {"a": 1, "b": 2, "c": 0}),
])
def test_merge_keys_follow_yaml(tmp_path, loader_kind, text, expected):
    f = tmp_path / "doc.yaml"
    f.write_text("b: &b {a: 1, b: 2}\nm: &m {<<: *b, a: 3}\nc: &c {a: 5}\n" + text + "\n")
    assert documents.read(f, SpecError)["x"] == expected


def test_the_error_class_is_the_callers(tmp_path):
    f = tmp_path / "doc.yaml"
    f.write_text("a: 1\na: 2\n")
    with pytest.raises(BudgetError, match="duplicate key 'a'"):
        documents.read(f, BudgetError)
    with pytest.raises(SpecError, match="duplicate key 'a'"):
        documents.read(f, SpecError)


@pytest.mark.parametrize("text", ["\ufeffname: x\nlayers: []\n", "name: x\r\nlayers: []\r\n"])
def test_a_utf8_bom_and_crlf_are_fine(tmp_path, text):
    f = tmp_path / "doc.yaml"
    f.write_bytes(text.encode())
    assert documents.read(f, SpecError) == {"name": "x", "layers": []}
    j = tmp_path / "doc.json"
    j.write_bytes(("\ufeff" if text[0] == "\ufeff" else "")
                  .encode() + json.dumps({"name": "x"}).encode())
    assert documents.read(j, SpecError) == {"name": "x"}


def test_a_file_over_the_size_limit(tmp_path, monkeypatch):
    f = tmp_path / "big.yaml"
    f.write_text("name: x\n" + "# padding\n" * 20)
    monkeypatch.setenv("COSTMODEL_MAX_FILE_BYTES", "100")
    err = fails("show", str(f))
    assert "over the limit of 100 bytes" in err and "COSTMODEL_MAX_FILE_BYTES" in err
    assert f"({8 + 10 * 20:,})" in err


def test_a_directory_and_a_fifo_are_not_spec_files(tmp_path):
    err = fails("show", str(tmp_path) + "/")
    assert "it is a directory" in err
    err = fails("check", "--budgets", str(tmp_path))
    assert f"{tmp_path}: cannot read the budgets file: it is a directory" in err
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)  # opening it would block: refused by its kind
    assert "a FIFO" in fails("show", str(fifo))
    assert "a FIFO" in fails("check", "--budgets", str(fifo))


@pytest.fixture
def locked(tmp_path, monkeypatch):
    """A folder whose contents cannot be looked at (tests run as root, who can read a mode-000
    folder, so the PermissionError an ordinary user gets is simulated)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "x.yaml").write_text("name: x\nlayers: []\n")
    (folder / "budgets.yaml").write_text("models: [{model: mobilenet, limits: {flops: 1G}}]\n")
    real = os.stat

    def stat(path, *args, **kwargs):
        if str(path).startswith(str(folder) + os.sep):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)  # pathlib's stat and is_file call os.stat
    return folder


def test_a_spec_in_an_unreadable_folder(locked):
    err = fails("show", str(locked / "x.yaml"))
    assert f"error: {locked / 'x.yaml'}: cannot read the spec file: permission denied" in err


def test_a_budgets_file_in_an_unreadable_folder(locked):
    err = fails("check", "--budgets", str(locked / "budgets.yaml"))
    assert f"{locked / 'budgets.yaml'}: cannot read the budgets file: permission denied" in err


def test_a_zoo_name_in_an_unreadable_folder_is_still_a_zoo_name(locked, monkeypatch):
    monkeypatch.chdir(locked)  # Path("mobilenet").is_file() would raise PermissionError
    res = runner.invoke(app, ["show", "mobilenet"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("suffix", ["inf", "nan", "1e300", "0", "1e-300", "0.0", "000", "101",
                                    "100.5", "infinity"])
def test_a_numeric_suffix_must_be_a_width(suffix):
    err = fails("show", f"mobilenet-{suffix}")
    assert f"'{suffix.split('-')[0]}'" in err  # the suffix (its first piece) is named
    assert "width multiplier" in err


@pytest.mark.parametrize("suffix, width", [("0.3", 0.3), ("100", 100.0), (".5", 0.5)])
def test_numeric_suffixes_within_bounds_are_widths(suffix, width):
    from costmodel.spec.zoo import resolve

    assert resolve(f"mobilenet-{suffix}").width == width


def test_variants_must_be_mappings(tmp_path):
    spec = tmp_path / "v.yaml"
    spec.write_text("name: v\ninput: 32\nvariants: {big: 3}\nlayers: [{type: conv, out: 8}]\n")
    from costmodel.spec.loader import load_spec

    with pytest.raises(SpecError, match="field 'variants.big': must be a mapping, not int"):
        load_spec(spec, ["big"])


@pytest.mark.parametrize("name, text", [
    ("wide.yaml", "[" + "a," * 1_000_000 + "]"),  # 2 bytes a node: 1,000,001 nodes in 2 MB
    ("wide-map.yaml", "{" + "a," * 1_000_000 + "}"),  # a key and its empty value: 2,000,001
    ("wide-block.yaml", "- a\n" * 500_000),
    ("wide.json", "[" + "1," * 1_000_000 + "1]"),
])
def test_a_wide_document_is_refused_before_it_is_built(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    start = time.perf_counter()
    with pytest.raises(LimitError, match="over the limit of 200,000 nodes"):
        documents.read(f, SpecError)
    assert time.perf_counter() - start < 2.0  # a bound, not a benchmark


@pytest.mark.parametrize("name, text, expected", [
    ("long.yaml", "a: 1\n" * 20_000 + "b: [\n", "invalid YAML at line 20002"),
    ("long.json", "[" + "1, " * 30_000 + "]", "invalid JSON at line 1"),
    ("long-ok.yaml", "- 1\n" * 20_000, None),
])
def test_a_long_document_is_read_as_a_short_one(tmp_path, name, text, expected):
    f = tmp_path / name
    f.write_text(text)
    assert len(text) > documents._SCAN_ABOVE  # past the prescan's threshold
    if expected is None:
        assert documents.read(f, SpecError) == [1] * 20_000
    else:
        with pytest.raises(SpecError, match=expected):
            documents.read(f, SpecError)


def test_the_json_prescan_skips_strings(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "_SCAN_ABOVE", 0)
    monkeypatch.setenv("COSTMODEL_MAX_YAML_NODES", "5")  # 6: root, 2 keys, a string, a list, 1
    f = tmp_path / "doc.json"
    value = '\\"[,{:' * 10  # escaped quote, then what would count as structure outside
    f.write_text('{"a": "' + value + '", "b": [1]}')
    with pytest.raises(LimitError, match="up to 6 nodes"):  # 6 > 5: the prescan counts
        documents.read(f, SpecError)
    monkeypatch.setenv("COSTMODEL_MAX_YAML_NODES", "6")
    assert documents.read(f, SpecError) == {"a": '"[,{:' * 10, "b": [1]}
