"""The basics: --version, shell completion, the spec schema, "did you mean" for fields,
show's --top/--sort/--depth and activations column, list's FLOPs and params, help that
reflows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import costmodel
from costmodel.api import evaluate_model
from costmodel.cli import app, reflow
from costmodel.errors import SpecError
from costmodel.layers import type_names
from costmodel.schema import spec_schema
from costmodel.spec.loader import load_spec
from costmodel.spec.zoo import zoo

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), prog_name="costmodel", env=env)


# --version ---------------------------------------------------------------------------------

def test_version_prints_the_package_version():
    res = run("--version")
    assert res.exit_code == 0, res.output
    assert res.stdout == f"costmodel {costmodel.__version__}\n"


def test_version_through_main_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-m", "costmodel", "--version"], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (out.returncode, out.stdout) == (0, f"costmodel {costmodel.__version__}\n")


# completion --------------------------------------------------------------------------------

def test_show_completion_prints_a_bash_script():
    res = run("--show-completion", "bash")
    assert res.exit_code == 0, res.output
    assert "_COSTMODEL_COMPLETE=complete_bash" in res.stdout
    assert "complete -o default -F _costmodel_completion costmodel" in res.stdout


@pytest.mark.parametrize("words, cword, expected", [
    ("costmodel sh", 1, "show"),
    ("costmodel show mobilenet --so", 3, "--sort"),
    ("costmodel show mobilenet --sort p", 4, "params"),
])
def test_completion_completes_commands_options_and_choices(words, cword, expected):
    res = run(env={"_COSTMODEL_COMPLETE": "complete_bash", "COMP_WORDS": words,
                   "COMP_CWORD": str(cword)})
    assert res.exit_code == 0, res.output
    assert expected in res.stdout.split()


# schema ------------------------------------------------------------------------------------

def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _errors(value, schema: dict, root: dict, where: str = "") -> list[str]:
    """The subset of JSON Schema that Pydantic writes, checked by hand (jsonschema is not a
    dependency): $ref, anyOf, discriminated oneOf, type, const, enum, pattern, bounds, items,
    properties, required, additionalProperties."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:  # none matches: the errors of the closest, the first on ties
        found = [_errors(value, s, root, where) for s in schema["anyOf"]]
        return [] if not all(found) else min(found, key=len)
    if "discriminator" in schema:
        tag = value.get(schema["discriminator"]["propertyName"]) if isinstance(value, dict) \
            else None
        target = schema["discriminator"]["mapping"].get(tag)
        if target is None:
            return [f"{where}: unknown tag {tag!r}"]
        return _errors(value, {"$ref": target}, root, where)
    kinds = {"integer": int, "number": (int, float), "string": str, "boolean": bool,
             "array": list, "object": dict, "null": type(None)}
    kind = schema.get("type")
    if kind and (not isinstance(value, kinds[kind])
                 or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{where}: {value!r} is not {kind}"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"{where}: {value!r} does not match {schema['pattern']}"]
    for key, ok in (("minimum", lambda b: value >= b), ("maximum", lambda b: value <= b),
                    ("exclusiveMinimum", lambda b: value > b),
                    ("minItems", lambda b: len(value) >= b),
                    ("maxItems", lambda b: len(value) <= b)):
        if key in schema and not ok(schema[key]):
            return [f"{where}: {value!r} fails {key} {schema[key]}"]
    errors = []
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _errors(item, schema["items"], root, f"{where}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                errors += _errors(v, props[k], root, f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unknown field {k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += _errors(v, schema["additionalProperties"], root, f"{where}.{k}")
    return errors


ZOO_FILES = sorted(e.file for e in zoo())


@pytest.fixture(scope="module")
def schema() -> dict:
    res = run("schema")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_schema_names_every_layer_type_in_its_discriminator(schema):
    layer = schema["properties"]["layers"]["anyOf"][0]["items"]["anyOf"][0]
    mapping = layer["discriminator"]["mapping"]
    assert set(mapping) == set(type_names())
    for tag, cls in type_names().items():
        target = schema["$defs"][mapping[tag].rsplit("/", 1)[-1]]
        required = {n for n, f in cls.model_fields.items() if f.is_required()}
        assert set(target.get("required", [])) == required, tag
        assert target["additionalProperties"] is False


def test_schema_is_a_2020_12_document_with_the_spec_fields(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["layers"]  # a file without a name is named by its stem
    assert schema == spec_schema()


@pytest.mark.parametrize("file", ZOO_FILES, ids=lambda p: p.stem)
def test_schema_accepts_every_zoo_spec(schema, file):
    assert _errors(yaml.safe_load(file.read_text()), schema, schema) == []


@pytest.mark.parametrize("file", ZOO_FILES, ids=lambda p: p.stem)
def test_jsonschema_accepts_every_zoo_spec(schema, file):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(file.read_text()))


@pytest.mark.parametrize("spec, error", [
    ({"name": "n", "layers": [{"type": "conv", "out": 8, "kernal": 3}]}, "unknown field kernal"),
    ({"name": "n", "layers": [{"type": "conv"}]}, "missing out"),
    ({"name": "n", "layers": [{"type": "cnov", "out": 8}]}, "unknown tag 'cnov'"),
    ({"name": "n", "layers": [{"type": "conv", "out": "8"}]}, "'8' is not integer"),
    ({"name": "n"}, "missing layers"),
    ({"name": "n", "layers": []}, "fails minItems"),
])
def test_schema_rejects_what_the_loader_rejects(schema, spec, error, tmp_path):
    assert any(error in e for e in _errors(spec, schema, schema))
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError):
        load_spec(file)


def test_schema_accepts_variables_where_the_loader_substitutes_them(schema):
    spec = {"name": "n", "vars": {"k": 3}, "layers": [{"type": "conv", "out": "$c", "kernel":
                                                       ["$k", 3]}]}
    assert _errors(spec, schema, schema) == []
    assert _errors({**spec, "layers": ["$x"]}, schema, schema) != []  # a layer is no variable
    # but its type may be one, checked once substituted
    assert _errors({**spec, "layers": [{"type": "$block", "planes": 8}]}, schema, schema) == []


def test_schema_output_file(tmp_path):
    target = tmp_path / "costmodel.schema.json"
    res = run("schema", "-o", str(target))
    assert res.exit_code == 0, res.output
    assert res.stdout == ""
    assert json.loads(target.read_text()) == spec_schema()


def test_schema_output_refuses_a_folder(tmp_path):
    res = run("schema", "-o", str(tmp_path) + "/")
    assert res.exit_code == 2
    assert list(tmp_path.iterdir()) == []


# did you mean ------------------------------------------------------------------------------

@pytest.mark.parametrize("yaml_text, message", [
    ("layers:\n  - {type: conv, out: 8, kernal: 3}\n",
     "unknown field 'kernal' (did you mean kernel?)"),
    ("layers:\n  - {type: repeat, n: 2, layers: [{type: dwconv, strid: 2}]}\n",
     "unknown field 'strid' (did you mean stride?)"),
    ("inptu: 32\nlayers:\n  - {type: conv, out: 8}\n",
     "unknown field 'inptu' (did you mean input?)"),
    ("variants: {small: {widht: 0.5}}\nlayers:\n  - {type: conv, out: 8}\n",
     "unknown field 'widht' (did you mean width?)"),
    ("layers:\n  - {type: conv, out: 8, zzzzzz: 3}\n", "unknown field 'zzzzzz'"),
])
def test_unknown_fields_suggest_the_closest(tmp_path, yaml_text, message):
    file = tmp_path / "net.yaml"
    file.write_text("name: net\n" + yaml_text)
    with pytest.raises(SpecError) as e:
        load_spec(file)
    assert message in str(e.value)
    if "did you mean" not in message:
        assert "did you mean" not in str(e.value)


# show --top/--sort/--depth, activations ----------------------------------------------------

def _show_json(*args: str) -> dict:
    res = run("show", *args, "-f", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("metric", ["flops", "params", "mac", "activations"])
def test_top_rows_by_a_metric(metric):
    layers = _show_json("mobilenet")["layers"]
    data = _show_json("mobilenet", "--top", "4", "--sort", metric)
    shown = data["view"]["rows"]
    expected = sorted(layers, key=lambda r: -r[metric])[:4]
    assert [r["path"] for r in shown] == [r["path"] for r in expected]
    assert data["layers"] == layers  # the full contract is unchanged


def test_top_sorts_by_flops_by_default():
    layers = _show_json("mobilenet")["layers"]
    shown = _show_json("mobilenet", "--top", "3")["view"]["rows"]
    assert [r["flops"] for r in shown] == sorted((r["flops"] for r in layers), reverse=True)[:3]


@pytest.mark.parametrize("depth", [1, 2])
def test_depth_folds_rows_into_path_prefixes(depth):
    layers = _show_json("shufflenet_v2_x1_0")["layers"]
    rows = _show_json("shufflenet_v2_x1_0", "--depth", str(depth))["view"]["rows"]
    prefixes = list(dict.fromkeys(".".join(r["path"].split(".")[:depth]) for r in layers))
    assert [r["path"] for r in rows] == prefixes
    for row in rows:
        members = [r for r in layers
                   if ".".join(r["path"].split(".")[:depth]) == row["path"]]
        for m in ("flops", "params", "mac", "activations"):
            assert row[m] == sum(r[m] for r in members)
    for m in ("flops", "params", "mac"):
        assert sum(r[m] for r in rows) == sum(r[m] for r in layers)


def test_depth_then_top():
    rows = _show_json("resnet50", "--depth", "1", "--top", "2")["view"]["rows"]
    folded = _show_json("resnet50", "--depth", "1")["view"]["rows"]
    assert rows == sorted(folded, key=lambda r: -r["flops"])[:2]


def test_show_json_without_view_options_is_unchanged():
    data = _show_json("mobilenet")
    assert set(data) == {"model", "input", "conventions", "layers", "totals", "breakdown"}


def test_show_table_has_activations_after_mac_and_csv_top_rows():
    res = run("show", "mobilenet", "-f", "csv", "--top", "2")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "path,type,output,out_c,out_h,out_w,flops,params,mac,activations"
    result = evaluate_model("mobilenet")
    top = sorted(result.rows, key=lambda r: -r.flops)[:2]
    assert [line.split(",")[0] for line in lines[1:3]] == [r.path for r in top]
    assert lines[1].split(",")[-1] == str(top[0].activations)
    assert len(lines) == 3  # the two rows, no total row


@pytest.mark.parametrize("args", [["--top", "0"], ["--depth", "0"], ["--sort", "speed"]])
def test_bad_view_options_exit_2(args):
    assert run("show", "mobilenet", *args).exit_code == 2


# list --------------------------------------------------------------------------------------

def test_list_gives_flops_and_params_at_the_default_input():
    res = run("list", "-f", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [d["name"] for d in data] == [e.name for e in zoo()]
    for d in data:
        t = evaluate_model(d["name"]).totals
        assert (d["flops"], d["params"]) == (t.flops, t.params), d["name"]
        assert {"input", "variants", "aliases", "description"} <= set(d)


def test_list_table_shows_mobilenet_numbers():
    res = run("list", "-f", "csv")
    assert res.exit_code == 0, res.output
    row = next(line for line in res.stdout.splitlines() if line.startswith("mobilenet,"))
    assert row.startswith("mobilenet,224×224,568740352,4231976,")  # Table 8: 569M, 4.2M


# help that reflows -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("One line\nwraps here.\n\nSecond\nparagraph.", "One line wraps here.\n\nSecond paragraph."),
    ("Items:\n- a\n- b", "Items:\n- a\n- b"),
    ("Code:\n\n    Para\n    wraps.\n\n        x = 1\n        y = 2\n    ",
     "Code:\n\nPara wraps.\n\n    x = 1\n    y = 2"),
    (None, None),
])
def test_reflow(text, expected):
    assert reflow(text) == expected


@pytest.mark.parametrize("columns", [80, 140])
def test_show_help_reflows(columns):
    env = {"COLUMNS": str(columns), "TERM": "dumb"}
    out = subprocess.run([sys.executable, "-m", "costmodel", "show", "--help"],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **env, "PYTHONPATH": str(ROOT)}).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "Per-layer table with totals" in out
    # a paragraph's lines are joined: its first line runs past the docstring's hard break
    paragraph = next(line for line in lines if "--top, --sort and --depth" in line)
    if columns == 140:
        assert paragraph.strip().endswith('adds the rows shown as "view".')
    else:  # wrapped by the terminal's width, not at the docstring's break after "in"
        assert paragraph.strip().endswith('every layer in')
