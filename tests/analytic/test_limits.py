"""Bounds on the evaluator's work (costmodel.limits): a repeat's copies (REPEAT), the rows one
evaluation produces, replayed copies included (LAYERS), and how deeply blocks nest (NESTING).
Each is refused fast with the limit and its variable named, the same with and without rows,
in the library and on the command line (exit 2); raising the variable lets the same spec
evaluate."""

from __future__ import annotations

import inspect
import sys
import time

import pytest
from typer.testing import CliRunner

from costmodel import limits
from costmodel.api import evaluate_model, load
from costmodel.cli import app
from costmodel.errors import EXIT_INVALID, LimitError
from costmodel.engine import evaluate
from costmodel.layers.base import derived
from costmodel.layers.structure import Sequential
from costmodel.spec.loader import validate_spec
from costmodel.spec.model import ModelSpec

FAST = 2.0
"""Seconds a refusal may take: generous (the machine is shared), not a benchmark."""

MODES = pytest.mark.parametrize("totals_only", [False, True], ids=["rows", "totals-only"])


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    for limit in limits.ALL:
        monkeypatch.delenv(limit.variable, raising=False)


def spec_of(*layers: dict, **model) -> ModelSpec:
    return validate_spec({"name": "t", "input": 8, "layers": list(layers), **model}, "t.yaml")


def relu() -> dict:
    return {"type": "relu"}


def repeats(levels: int, n: int = 2, leaf: dict | None = None) -> dict:
    """``repeat n`` nested ``levels`` deep around one layer: n**levels rows."""
    layer = leaf or relu()
    for _ in range(levels):
        layer = {"type": "repeat", "n": n, "layers": [layer]}
    return layer


def sequentials(levels: int) -> dict:
    layer = relu()
    for _ in range(levels):
        layer = {"type": "sequential", "layers": [layer]}
    return layer


def refused(spec: ModelSpec, limit: limits.Limit, totals_only: bool, **kw) -> LimitError:
    start = time.perf_counter()
    with pytest.raises(LimitError) as info:
        evaluate(spec, totals_only=totals_only, **kw)
    assert time.perf_counter() - start < FAST
    message = str(info.value)
    assert f"{limit.value:,}" in message and limit.variable in message, message
    return info.value


def rows_of(spec: ModelSpec, totals_only: bool) -> int | None:
    result = evaluate(spec, totals_only=totals_only)
    return None if totals_only else len(result.rows)


# --- REPEAT -------------------------------------------------------------------------------

@MODES
def test_a_billion_copies_are_refused_before_any_is_made(totals_only):
    err = refused(spec_of({"name": "body", "type": "repeat", "n": 1_000_000_000,
                           "layers": [relu()]}), limits.REPEAT, totals_only)
    assert err.path == "body" and err.field == "n"
    assert "1,000,000,000" in err.message


@MODES
def test_a_depth_multiplier_that_makes_too_many_copies_is_refused(totals_only):
    # depth is at most MAX_MULTIPLIER (100): 5,000 × 100 copies is over the limit, 5,000 is not
    spec = spec_of({"name": "body", "type": "repeat", "n": 5_000, "layers": [relu()]})
    err = refused(spec, limits.REPEAT, totals_only, depth=100)
    assert err.path == "body" and err.field == "n"
    assert "depth 100" in err.message


def test_a_depth_multiplier_in_the_library_api_is_refused_fast():
    start = time.perf_counter()
    spec = spec_of({"type": "repeat", "n": 5_000, "layers": [relu()]})
    with pytest.raises(LimitError, match="COSTMODEL_MAX_REPEAT"):
        evaluate_model(spec, depth=100)
    assert time.perf_counter() - start < FAST


@MODES
def test_the_repeat_limit_is_the_number_of_copies_after_the_depth_multiplier(monkeypatch,
                                                                             totals_only):
    spec = spec_of({"type": "repeat", "n": 4, "layers": [relu()]}, depth=2.5)  # ceil(10) copies
    monkeypatch.setenv(limits.REPEAT.variable, "9")
    refused(spec, limits.REPEAT, totals_only)
    monkeypatch.setenv(limits.REPEAT.variable, "10")
    assert rows_of(spec, totals_only) in (10, None)


# --- LAYERS -------------------------------------------------------------------------------

@MODES
def test_repeats_nested_fifty_deep_are_refused_fast(totals_only):
    err = refused(spec_of(repeats(50)), limits.LAYERS, totals_only)
    # refused at the first count over the limit (20,000): 2**15 rows
    assert limits.LAYERS.value == 20_000
    assert f"{2 ** 15:,} so far" in err.message


@MODES
def test_replayed_rows_count_and_raising_the_limit_lets_the_spec_evaluate(monkeypatch,
                                                                          totals_only):
    spec = spec_of(repeats(10))  # 2**10 rows, all but the first replayed
    monkeypatch.setenv(limits.LAYERS.variable, str(2 ** 10 - 1))
    refused(spec, limits.LAYERS, totals_only)
    monkeypatch.setenv(limits.LAYERS.variable, str(2 ** 10))
    assert rows_of(spec, totals_only) in (2 ** 10, None)


@pytest.mark.parametrize("model", ["skipnet-cifar", "shufflenet_v2", "espnet"])
@MODES
def test_the_layer_limit_is_exactly_the_rows_of_the_evaluation(monkeypatch, model,
                                                               totals_only):
    """Branch splits and merges, replays and primitives all count, each once."""
    spec = load(model)
    n = len(evaluate(spec).rows)
    monkeypatch.setenv(limits.LAYERS.variable, str(n))
    evaluate(spec, totals_only=totals_only)
    monkeypatch.setenv(limits.LAYERS.variable, str(n - 1))
    refused(spec, limits.LAYERS, totals_only)


def test_a_full_walk_near_the_limit_is_refused_without_building_the_rows(monkeypatch):
    """Repeats 3 deep (100³ rows): a full walk copies 20,000 rows, then a lean walk of the
    whole network refuses it — long before a million rows are built."""
    spec = spec_of(repeats(3, n=100))
    monkeypatch.setenv(limits.LAYERS.variable, str(100 ** 3 - 1))
    refused(spec, limits.LAYERS, totals_only=False)


# --- NESTING ------------------------------------------------------------------------------

@MODES
def test_sixty_nested_sequentials_evaluate(totals_only):
    result = evaluate(spec_of(sequentials(60)), totals_only=totals_only)
    assert result.totals.mac == 2 * 3 * 8 * 8  # one relu: reads and writes its map


@MODES
def test_blocks_nested_deeper_than_the_limit_are_refused_at_the_block(monkeypatch,
                                                                      totals_only):
    spec = spec_of(sequentials(limits.NESTING.value + 1))
    err = refused(spec, limits.NESTING, totals_only)
    assert err.path == ".".join(["0"] * (limits.NESTING.value + 1))  # the 65th block
    monkeypatch.setenv(limits.NESTING.variable, str(limits.NESTING.default + 1))
    evaluate(spec, totals_only=totals_only)


def test_a_node_copied_deeper_than_it_was_walked_is_a_limit_error_past_the_stack(monkeypatch):
    """A node shared by two depths (a spec built in Python) is replayed at the second without
    a check of its own; where copying it goes past the stack, it is a LimitError too."""
    leaf = spec_of(relu()).layers[0]
    shared = leaf
    for _ in range(400):  # walked first: two frames a level
        shared = derived(Sequential, name="s", layers=[shared])
    wrapped = shared
    for _ in range(300):  # then copied 300 levels down: one frame a level
        wrapped = derived(Sequential, name="w", layers=[wrapped])
    spec = ModelSpec.model_construct(name="t", input=8, layers=[shared, wrapped])
    monkeypatch.setenv(limits.NESTING.variable, "100000")
    frames = len(inspect.stack(0))
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(frames + 1000)  # 2·400 + 2·300 + 400 frames
    try:
        evaluate(spec, totals_only=True)  # a lean walk replays in O(1), without recursion
        with pytest.raises(LimitError, match="Python's stack"):
            evaluate(spec)
    finally:
        sys.setrecursionlimit(old)


@MODES
def test_nesting_past_pythons_stack_is_a_limit_error_not_a_recursion_error(monkeypatch,
                                                                           totals_only):
    layer = spec_of(relu()).layers[0]
    for _ in range(5000):
        layer = derived(Sequential, layers=[layer])
    spec = ModelSpec.model_construct(name="t", input=8, layers=[layer])
    monkeypatch.setenv(limits.NESTING.variable, "100000")
    with pytest.raises(LimitError, match="Python's stack.*COSTMODEL_MAX_NESTING"):
        evaluate(spec, totals_only=totals_only)


# --- the command line ---------------------------------------------------------------------

runner = CliRunner()


def cli(tmp_path, spec: str, *args: str):
    file = tmp_path / "net.yaml"
    file.write_text(spec)
    return runner.invoke(app, ["compare", str(file), *args])


HEADER = "name: net\ninput: 8\n"


@pytest.mark.parametrize("body, limit", [
    ("layers: [{type: repeat, n: 1000000000, layers: [{type: relu}]}]\n", limits.REPEAT),
    ("depth: 100\nlayers: [{type: repeat, n: 5000, layers: [{type: relu}]}]\n", limits.REPEAT),
    ("layers: [{type: repeat, n: 1000, layers: [{type: repeat, n: 1000, layers: "
     "[{type: repeat, n: 1000, layers: [{type: relu}]}]}]}]\n", limits.LAYERS),
], ids=["repeat", "depth", "layers"])
def test_the_cli_exits_2_naming_the_limit(tmp_path, body, limit):
    start = time.perf_counter()
    res = cli(tmp_path, HEADER + body)
    assert time.perf_counter() - start < FAST
    assert res.exit_code == EXIT_INVALID, res.output
    assert limit.variable in res.output and "net.yaml" in res.output
    assert "Traceback" not in res.output


def test_the_cli_refuses_deep_nesting_with_exit_2(tmp_path):
    res = cli(tmp_path, HEADER + "layers:\n- " + str(sequentials(70)).replace("'", "") + "\n")
    assert res.exit_code == EXIT_INVALID, res.output
    assert limits.NESTING.variable in res.output and "Traceback" not in res.output


def test_the_cli_evaluates_once_the_variable_raises_the_limit(tmp_path, monkeypatch):
    body = "layers: [{type: repeat, n: 11, layers: [{type: relu}]}]\n"
    monkeypatch.setenv(limits.REPEAT.variable, "10")
    assert cli(tmp_path, HEADER + body).exit_code == EXIT_INVALID
    monkeypatch.setenv(limits.REPEAT.variable, "11")
    res = cli(tmp_path, HEADER + body)
    assert res.exit_code == 0, res.output


def test_the_terminal_table_draws_at_most_its_row_limit_and_says_so(tmp_path):
    """Rich lays a table out at ~1 ms a row: past TERMINAL_ROWS the table format stops drawing
    rows (and says so), the totals still count every row, and CSV lists them all."""
    from costmodel.render.table import TERMINAL_ROWS

    n = TERMINAL_ROWS + 500
    body = f"layers: [{{type: repeat, n: {n}, layers: [{{type: relu}}]}}]\n"
    table = cli(tmp_path, HEADER + body)  # compare: one row per model, under the limit
    assert table.exit_code == 0
    file = tmp_path / "net.yaml"
    shown = runner.invoke(app, ["show", str(file)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert f"The first {TERMINAL_ROWS:,} of {n:,} rows are shown" in shown.output
    assert f"0.{TERMINAL_ROWS - 1} " in shown.output and f"0.{TERMINAL_ROWS} " not in shown.output
    csv_rows = runner.invoke(app, ["show", str(file), "--format", "csv"]).output
    assert f"0.{n - 1}," in csv_rows
