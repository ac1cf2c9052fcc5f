"""costmodel verify: every zoo model agrees exactly with fvcore, layer by layer; disagreements
are caught; without torch, verify says what to install and nothing else needs torch."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import verify_layers
from typer.testing import CliRunner

from costmodel.api import evaluate_model
from costmodel.cli import app
from costmodel.errors import CostModelError, ShapeError
from costmodel.layers import linear, norm, pool
from costmodel.spec.zoo import zoo
from costmodel.crosscheck.builder import TORCH_MODULES, build, example_input
from costmodel.layers.lstm import LSTM
from costmodel.layers.pool import Pool
from costmodel.crosscheck.verify import FVCORE_SCOPE, RecordingFlopCount, verify_model

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

MADDS_BUDGET = 1_000_000_000
"""Models above this many multiply-adds at their default input are verified at a smaller one
(halved until under it, never below 32): the counts are closed-form in the input size, so a
smaller input checks the same formulas while keeping the suite fast on 2 cores."""
VARIANT_SIDE = 64
"""Variants (widths, group counts) are verified at most at 64×64: what they change is channels,
which the base model at its full input has already been checked with at every spatial size."""


def zoo_models() -> list[tuple[str, bool]]:
    """Every zoo entry (True) and each of its declared variants (False), found at test time."""
    return [(name, name == e.name) for e in zoo()
            for name in (e.name, *(f"{e.name}-{v}" for v in e.variants))]


def _madds(model: str, h: int, w: int) -> int | None:
    """The model's multiply-adds at h×w; None where it cannot run at that size (a fixed pool
    window: SkipNet-ImageNet's 7×7 average pool needs the 224×224 input)."""
    try:
        return evaluate_model(model, input=f"{h}x{w}").totals.flops
    except ShapeError:
        return None


def test_input(model: str, base: bool) -> str:
    """The largest size under MADDS_BUDGET among the model's input and its halvings (from
    VARIANT_SIDE for a variant), never below 32; else the smallest of them the model runs
    at; else its own input."""
    h, w = evaluate_model(model).input
    sizes = [(h, w) if base else (min(h, VARIANT_SIDE), min(w, VARIANT_SIDE))]
    while min(sizes[-1]) > 32:
        sizes.append((max(sizes[-1][0] // 2, 32), max(sizes[-1][1] // 2, 32)))
    runs = [(s, m) for s in sizes if (m := _madds(model, *s)) is not None]
    under = [s for s, m in runs if m <= MADDS_BUDGET]
    h, w = under[0] if under else runs[-1][0] if runs else (h, w)
    return f"{h}x{w}"


test_input.__test__ = False  # a helper, not a test


def verify_cases() -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(model, test input) for every zoo network to verify, and (model, input, earlier model)
    for each variant that is the same network as an earlier case at its test input (one that
    names the model's default, such as skipnet-cifar-110): decided when the tests are
    collected, so which cases run does not depend on their order."""
    unique: list[tuple[str, str, tuple, list]] = []
    same: list[tuple[str, str, str]] = []
    for model, base in zoo_models():
        size = test_input(model, base)
        rows = evaluate_model(model, input=size).rows
        layers = [r.layer for r in rows]  # every field, not only what the rows show
        earlier = next((m for m, s, r, ls in unique if s == size and r == rows
                        and ls == layers), None)
        if earlier is None:
            unique.append((model, size, rows, layers))
        else:
            same.append((model, size, earlier))
    return [(m, s) for m, s, _, _ in unique], same


VERIFIED, SAME = verify_cases()


@pytest.mark.parametrize("model,earlier", [(m, e) for m, _, e in SAME],
                         ids=[m for m, _, _ in SAME])
def test_variant_is_a_network_already_verified(model, earlier):
    """Not built and traced again: its rows and layers equal those of ``earlier``, which is."""
    size = next(s for m, s, _ in SAME if m == model)
    mine, theirs = (evaluate_model(x, input=size).rows for x in (model, earlier))
    assert mine == theirs and [r.layer for r in mine] == [r.layer for r in theirs]


@pytest.mark.parametrize("model,size", VERIFIED, ids=[m for m, _ in VERIFIED])
def test_zoo_model_verifies_exactly(model, size):
    rows = evaluate_model(model, input=size).rows
    v = verify_model(model, input=size)
    assert v.differing == []  # every layer: FLOPs, params and output shape
    assert v.flops == v.fvcore_flops
    # FlopCounterMode: exact, but for LSTM cells it cannot see, each 2 × the cell's madds
    lstm_rows = {r.path for r in rows if r.type in ("lstm", "rnn_gate")}
    assert {g.path for g in v.counter_gaps} <= lstm_rows
    assert all(g.explained and g.unseen == g.lstm_x2 for g in v.counter_gaps)
    assert v.madds_x2 == v.flop_counter + v.unseen
    assert v.params == v.fvcore_params == v.numel
    assert all(o.ok for o in v.ops) and v.ok
    # one check per primitive, plus one per parallel node (its split and merge together)
    assert len(v.layers) == len({r.path if r.layer is not None else r.path.rsplit(".", 1)[0]
                                 for r in rows})


def test_shufflenet_lists_what_fvcore_does_not_count():
    """ShuffleNet 1× g=3: 16 units in 3 stages (4 + 8 + 4), the first of each with stride 2
    (concat with a 3×3 avg pool), the other 13 residual (add)."""
    v = verify_model("shufflenet")
    found = {u.op: (u.reason, u.occurrences) for u in v.uncounted}
    units, stride2 = 4 + 8 + 4, 3
    assert found == {
        "aten::add": ("unsupported", units - stride2),
        "aten::cat": ("ignored", stride2),
        "aten::avg_pool2d": ("unsupported", stride2),
        "aten::channel_shuffle": ("unsupported", units),
        "aten::max_pool2d": ("unsupported", 1),
        "aten::relu": ("ignored", 1 + 2 * units),  # conv1, and per unit after gconv1 and merge
        "aten::flatten": ("ignored", 1),
    }
    adds = next(u for u in v.uncounted if u.op == "aten::add")
    assert adds.layers[0] == "stage2.1.0.res" and len(adds.layers) == units - stride2


RNN_GATE_STEP = 2 * 4 * 10 * (10 + 10)
"""2 × one step of SkipNet's LSTM(10 → 10): the multiply-adds FlopCounterMode cannot see."""


ONEDNN = pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                            reason="this torch has no oneDNN: the LSTM runs as aten.addmm "
                                   "(test_without_onednn_flop_counter_counts_the_lstm)")


@ONEDNN
def test_flop_counter_misses_exactly_the_lstm_steps():
    """SkipNet-38 (n = 6): 5 + 6 + 6 gated blocks, one recurrent gate step each. On CPU torch
    runs the step as oneDNN's fused aten.mkldnn_rnn_layer, which FlopCounterMode has no
    formula for: it counts each gate's projection (2·10) but not its LSTM step."""
    v = verify_model("skipnet-cifar-38")
    gates = [r.path for r in evaluate_model("skipnet-cifar-38").rows if r.type == "rnn_gate"]
    assert len(gates) == 5 + 6 + 6
    assert [(g.path, g.madds_x2, g.flop_counter, g.lstm_x2, g.ops) for g in v.counter_gaps] == \
        [(p, RNN_GATE_STEP + 2 * 10, 2 * 10, RNN_GATE_STEP, ("aten.mkldnn_rnn_layer",))
         for p in gates]
    assert v.unseen == (5 + 6 + 6) * RNN_GATE_STEP == v.madds_x2 - v.flop_counter
    assert v.ok and v.verdict == "explained"
    # fvcore's uncounted aten::lstm: one per gate, charged to the gate that ran the step
    lstm = next(u for u in v.uncounted if u.op == "aten::lstm")
    assert (lstm.reason, lstm.occurrences, list(lstm.layers)) == ("unsupported", 17, gates)


LSTM_LAYERS = [{"type": "global_pool"}, {"type": "flatten"},
               {"name": "cell", "type": "lstm", "hidden": 5}]


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
def test_without_onednn_flop_counter_counts_the_lstm():
    """Without oneDNN the LSTM step decomposes into aten.addmm, which FlopCounterMode counts:
    no gap, the totals agree exactly."""
    with torch.backends.mkldnn.flags(enabled=False):
        v = verify_layers(LSTM_LAYERS, in_channels=6)
    assert v.counter_gaps == () and v.verdict == "exact"
    assert v.madds_x2 == v.flop_counter == 2 * 4 * 5 * (6 + 5)


@ONEDNN
def test_an_unexplained_flop_counter_gap_is_caught(monkeypatch):
    """The LSTM's madds declared wrongly (one too few): the gap no longer matches, verify
    says DIFFERS and exits 1."""
    right = TORCH_MODULES[LSTM]
    monkeypatch.setitem(TORCH_MODULES, LSTM, replace(
        right, lstm_madds=lambda row: right.lstm_madds(row) - 1))
    v = verify_layers(LSTM_LAYERS, in_channels=6)
    assert [(g.path, g.unseen, g.lstm_x2, g.explained) for g in v.counter_gaps] == \
        [("cell", 2 * 4 * 5 * (6 + 5), 2 * 4 * 5 * (6 + 5) - 2, False)]
    assert v.unseen == 0 and not v.totals_ok and not v.ok and v.verdict == "DIFFERS"


def test_unsupported_ops_match_fvcore_own_list():
    result = evaluate_model("effnet-shufflenet", options=FVCORE_SCOPE)
    model = build(result)
    analysis = RecordingFlopCount(model, (example_input(result),))
    analysis.total()
    mine = {}
    for op, _, reason in analysis.uncounted:
        if reason == "unsupported":
            mine[op] = mine.get(op, 0) + 1
    assert mine == dict(analysis.unsupported_ops())


def test_a_wrong_flop_formula_is_caught(monkeypatch):
    """Batch norm counted one FLOP too many: each BN layer, the operator and the total differ."""
    right = norm.batch_norm_cost
    monkeypatch.setattr(norm, "batch_norm_cost", lambda x, affine: right(x, affine)._replace(
        fvcore_flops=right(x, affine).fvcore_flops + 1))
    v = verify_model("effnet")
    bns = [r.path for r in evaluate_model("effnet").rows if r.type == "bn"]
    assert [c.path for c in v.differing] == bns
    assert all(c.differs == ["flops"] and c.flops == c.fvcore_flops + 1 for c in v.differing)
    assert {o.op: o.flops - o.fvcore_flops for o in v.ops if not o.ok} == {"batch_norm": len(bns)}
    assert v.flops == v.fvcore_flops + len(bns) and not v.ok
    res = runner.invoke(app, ["verify", "effnet", "-f", "markdown"])
    assert res.exit_code == 1
    assert f"{len(bns)} of {len(v.layers)} layers differ" in res.stdout
    assert all(f"| {p} |" in res.stdout for p in bns)


def test_a_wrong_param_count_is_caught(monkeypatch):
    right = linear.linear_cost
    monkeypatch.setattr(linear, "linear_cost", lambda n_in, n_out, bias: right(
        n_in, n_out, bias)._replace(params=n_in * n_out))  # forgets the bias
    v = verify_model("mobilenet-0.25", input=32)
    assert [(c.path, c.differs, c.torch_params - c.params) for c in v.differing] == \
        [("fc", ["params"], 1000)]
    assert v.fvcore_params - v.params == v.numel - v.params == 1000 and not v.ok


def test_a_wrong_shape_is_caught(monkeypatch):
    right = pool.spatial_out
    monkeypatch.setattr(pool, "spatial_out", lambda *a, **k: (right(*a, **k)[0] + 1,
                                                              right(*a, **k)[1]))
    v = verify_layers([{"type": "conv", "out": 4}, {"type": "max_pool", "kernel": 2}])
    assert [(c.path, c.differs, c.shape, c.torch_shape) for c in v.differing] == \
        [("1", ["shape"], [4, 5, 4], [4, 4, 4])]


def test_a_layer_torch_cannot_run_is_named(monkeypatch):
    """A module torch refuses to run is named by its layer path. (The analytic path itself
    rejects a pool padded by more than half its window, so the builder is made to build one.)"""
    monkeypatch.setitem(TORCH_MODULES, Pool, replace(
        TORCH_MODULES[Pool], build=lambda row: torch.nn.MaxPool2d(2, padding=2)))
    with pytest.raises(CostModelError) as e:
        verify_layers([{"type": "conv", "out": 4}, {"name": "pool", "type": "max_pool"}])
    assert e.value.path == "pool" and "pad should be at most half" in str(e.value)


@pytest.mark.parametrize("args,message", [
    (["verify", "missing.yaml"], "no such spec file"),
    (["verify", "mobilenett"], "did you mean mobilenet"),
    (["verify", "effnet", "--input", "0"], "positive"),
])
def test_verify_bad_input_exits_2(args, message):
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and message in res.stderr


def test_verify_json_contract():
    res = runner.invoke(app, ["verify", "effnet", "mobilenet-0.5", "--input", "32", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [d["model"] for d in data] == ["effnet", "mobilenet-0.5"]
    for d in data:
        t = d["totals"]
        expected = evaluate_model(d["model"], input=32, options=FVCORE_SCOPE).totals
        assert t["flops"] == t["fvcore_flops"] == expected.flops
        assert t["params"] == t["fvcore_params"] == t["numel"] == expected.params
        assert t["madds_x2"] == t["flop_counter"] == 2 * evaluate_model(
            d["model"], input=32).totals.flops
        assert d["ok"] and d["differing"] == [] and all(c["ok"] for c in d["layers"])
        assert {u["reason"] for u in d["uncounted"]} <= {"ignored", "unsupported"}
        assert d["flop_counter_gaps"] == [] and t["flop_counter_unseen"] == 0
    assert {u["op"] for u in data[0]["uncounted"]} >= {"aten::leaky_relu", "aten::max_pool2d"}


@ONEDNN
def test_verify_lists_flop_counter_gaps():
    res = runner.invoke(app, ["verify", "skipnet-cifar-38", "-f", "json"])
    assert res.exit_code == 0, res.output
    (d,) = json.loads(res.stdout)
    t = d["totals"]
    assert d["ok"] and t["flop_counter_unseen"] == (5 + 6 + 6) * RNN_GATE_STEP
    assert t["madds_x2"] == t["flop_counter"] + t["flop_counter_unseen"]
    assert len(d["flop_counter_gaps"]) == 5 + 6 + 6
    assert d["flop_counter_gaps"][0] == {
        "path": "group1.gated.0.res.main.gated.gate.rnn", "type": "rnn_gate",
        "madds_x2": RNN_GATE_STEP + 2 * 10, "flop_counter": 2 * 10, "lstm_x2": RNN_GATE_STEP,
        "ops": ["aten.mkldnn_rnn_layer"], "unseen": RNN_GATE_STEP, "explained": True}
    md = runner.invoke(app, ["verify", "skipnet-cifar-38", "-f", "markdown"])
    assert md.exit_code == 0 and "| explained |" in md.stdout
    assert "layers FlopCounterMode counts differently" in md.stdout


@pytest.mark.parametrize("fmt,expected", [
    ("table", "exact"), ("markdown", "| effnet | 32×32 |"),
])
def test_verify_formats(fmt, expected):
    res = runner.invoke(app, ["verify", "effnet", "-f", fmt, "--all"])
    assert res.exit_code == 0, res.output
    assert expected in res.stdout
    assert "stage1.block.pw" in res.stdout  # --all lists every layer
    assert "aten::leaky_relu" in res.stdout and "unsupported" in res.stdout


def test_verify_csv_is_the_summary_table():
    import io

    import pandas as pd

    res = runner.invoke(app, ["verify", "effnet", "mobilenet", "-f", "csv", "--all"])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(io.StringIO(res.stdout))  # one table: loads as it is
    assert list(frame["model"]) == ["effnet", "mobilenet"]
    assert list(frame["flops"]) == list(frame["fvcore_flops"])


def _cli(*args: str, block: str | None = None) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter, optionally with a package made unimportable; prints
    whether torch / fvcore were imported."""
    code = (f"import sys\nif {block!r}: sys.modules[{block!r}] = None\n"
            f"sys.argv = ['costmodel', *{list(args)!r}]\nfrom costmodel.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
            "print('imported:', sorted(m for m in ('torch', 'fvcore') if sys.modules.get(m)))\n"
            "sys.exit(code)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize("block", ["torch", "fvcore"])
def test_verify_without_the_extra_says_what_to_install(block):
    res = _cli("verify", "effnet", block=block)
    assert res.returncode == 2, res.stderr
    assert f"{block} is not installed" in res.stderr
    assert 'pip install "cnn-costmodel[torch]"' in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("args", [("compare", "effnet", "mobilenet", "shufflenet", "-i", "32"),
                                  ("show", "shufflenet", "-f", "json"), ("list",)])
def test_analytic_commands_never_import_torch(args):
    res = _cli(*args)
    assert res.returncode == 0 and "imported: []" in res.stdout, res.stderr
    blocked = _cli(*args, block="torch")
    assert blocked.returncode == 0, blocked.stderr
