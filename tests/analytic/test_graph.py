"""``graph`` (nodes wired by name) and ``aux`` (training-only layers): rows and totals as
arithmetic, the same counts as the nesting where one exists, and the wiring's errors."""

from __future__ import annotations

import pytest
from conftest import run_layers

from costmodel.api import load
from costmodel.engine import Dag, Memo, Seq, evaluate, nodes, rows_of
from costmodel.errors import SpecError
from costmodel.options import Options
from costmodel.views import layer_records, totals_record

C0, K, N, H = 4, 2, 3, 8  # input channels, growth rate, dense layers, side
HW = H * H


def dense_layer() -> list[dict]:
    """torchvision's _DenseLayer: BN-ReLU-conv1×1 (4k) - BN-ReLU-conv3×3 (k)."""
    return [{"type": "bn"}, {"type": "relu"}, {"type": "conv", "out": 4 * K, "kernel": 1},
            {"type": "bn"}, {"type": "relu"}, {"type": "conv", "out": K, "kernel": 3,
                                                 "padding": 1}]


def dense_graph() -> dict:
    """DenseNet's dense block as torchvision computes it: each layer concatenates the block's
    input and ALL earlier layers' outputs again; the block's output concatenates them all."""
    names = [f"l{i}" for i in range(1, N + 1)]
    graph_nodes = [{"name": "l1", "layers": dense_layer()}]
    for i in range(2, N + 1):
        graph_nodes.append({"name": f"l{i}", "inputs": ["input"] + names[:i - 1],
                            "merge": "concat", "layers": dense_layer()})
    graph_nodes.append({"name": "out", "inputs": ["input"] + names, "merge": "concat"})
    return {"type": "graph", "name": "block1", "nodes": graph_nodes}


def dense_nested() -> list[dict]:
    """The same block as a nest of branches: each layer a parallel (identity, layer) concat."""
    return [{"type": "parallel", "name": f"l{i}", "branches": [[], dense_layer()],
             "merge": "concat"} for i in range(1, N + 1)]


def c_in(i: int) -> int:
    """Channels into dense layer i (1-based)."""
    return C0 + (i - 1) * K


def test_dense_block_rows_and_totals_are_the_arithmetic():
    r = run_layers([dense_graph()], input=(H, H), in_channels=C0)
    expected_paths = []
    for i in range(1, N + 1):
        if i > 1:
            expected_paths.append(f"block1.l{i}.concat")
        expected_paths += [f"block1.l{i}.{j}" for j in range(6)]
    expected_paths.append("block1.out.concat")
    assert [row.path for row in r.rows] == expected_paths
    rows = {row.path: row for row in r.rows}
    for i in range(1, N + 1):
        c = c_in(i)
        assert rows[f"block1.l{i}.2"].flops == c * 4 * K * HW
        assert rows[f"block1.l{i}.5"].flops == 4 * K * K * 9 * HW
        assert rows[f"block1.l{i}.0"].params == 2 * c
        assert rows[f"block1.l{i}.2"].params == c * 4 * K
        if i > 1:  # Σ inputs + output: the c channels read and written
            merge = rows[f"block1.l{i}.concat"]
            assert merge.flops == 0 and merge.mac == 2 * c * HW
            assert len(merge.inputs) == i
    out = rows["block1.out.concat"]
    assert out.out.c == C0 + N * K and out.mac == 2 * (C0 + N * K) * HW
    assert r.output == out.out
    madds = sum(c_in(i) * 4 * K * HW + 4 * K * K * 9 * HW for i in range(1, N + 1))
    assert r.totals.flops == madds
    assert r.totals.params == sum(2 * c_in(i) + c_in(i) * 4 * K + 2 * 4 * K + 4 * K * K * 9
                                  for i in range(1, N + 1))
    assert r.aux_params == 0


def test_the_graph_counts_as_the_nest_of_branches():
    """The dense block nested (each layer a parallel identity/layer concat) and as a graph
    (each layer concatenating all earlier outputs again) hold the same layers: the same FLOPs
    and params; and here the same MAC, as each graph node's concat copies what the nested
    concat before it made."""
    for options in (Options(), Options(scope="fvcore")):
        g = run_layers([dense_graph()], input=(H, H), in_channels=C0, options=options)
        n = run_layers(dense_nested(), input=(H, H), in_channels=C0, options=options)
        assert g.totals == n.totals
        assert g.output == n.output
        conv = [r.flops for r in g.rows if r.type == "conv"]
        assert conv == [r.flops for r in n.rows if r.type == "conv"]


def test_the_tree_holds_a_dag_whose_rows_are_the_results():
    r = run_layers([dense_graph()], input=(H, H), in_channels=C0)
    dag = r.tree.children[0]
    assert isinstance(dag, Dag) and dag.path == "block1"
    assert dag.names == ("l1", "l2", "l3", "out")
    assert dag.inputs[0] == ("input",) and dag.inputs[-1] == ("input", "l1", "l2", "l3")
    assert dag.merges[0] is None and dag.merges[1].path == "block1.l2.concat"
    assert [s.path for s in dag.seqs] == ["block1.l1", "block1.l2", "block1.l3", "block1.out"]
    assert tuple(rows_of(r.tree)) == r.rows
    assert dag.out == r.output
    without_ends = [n.path for n in nodes(r.tree, ends=False) if not isinstance(n, Seq)]
    assert "block1.l2.concat" not in without_ends and "block1.l2.0" in without_ends


def test_default_inputs_chain_the_nodes_and_add_merges():
    graph = {"type": "graph", "name": "g", "nodes": [
        {"name": "a", "layers": [{"type": "conv", "out": 3, "kernel": 1}]},
        {"name": "b", "layers": [{"type": "relu"}]},  # input: a
        {"name": "c", "inputs": ["input", "b"], "merge": "add"}]}
    r = run_layers([graph], input=(4, 4), in_channels=3)
    assert [row.path for row in r.rows] == ["g.a.0", "g.b.0", "g.c.add"]
    assert r.rows[1].inputs == (r.rows[0].out,)
    assert r.rows[2].mac == 3 * 3 * 16  # two inputs read, one output written


def test_a_repeated_graph_is_replayed_with_its_own_paths_and_memo_stays_right():
    layers = [{"type": "repeat", "name": "r", "n": 3, "depth_scaling": False,
               "layers": [{"type": "conv", "out": C0, "kernel": 1}, dense_graph(),
                          {"type": "conv", "out": C0, "kernel": 1}]}]
    memo = Memo()
    first = run_layers(layers, input=(H, H), in_channels=C0)
    once = run_layers([dense_graph()], input=(H, H), in_channels=C0)
    block_flops = C0 * C0 * HW + once.totals.flops + (C0 + N * K) * C0 * HW
    assert first.totals.flops == 3 * block_flops
    once_paths = [r.path for r in once.rows]
    for i in range(3):
        assert [r.path for r in first.rows if r.path.startswith(f"r.{i}.block1.")] == \
            [f"r.{i}.{p}" for p in once_paths]
    assert tuple(rows_of(first.tree)) == first.rows
    # the same spec object, evaluated again with a fresh and a warm memo: the same result
    spec = _spec(layers, C0)
    cold = evaluate(spec, memo=memo)
    warm = evaluate(spec, memo=memo)
    lean = evaluate(spec, memo=memo, totals_only=True)
    assert cold.rows == warm.rows == first.rows
    assert cold.totals == warm.totals == lean.totals == first.totals


def _graph_error(tmp_path, graph_nodes: list[dict], **extra) -> SpecError:
    import yaml

    f = tmp_path / "g.yaml"
    f.write_text(yaml.safe_dump({"name": "g", "input": 8, "layers": [
        {"type": "graph", "name": "block1", "nodes": graph_nodes, **extra}]}))
    with pytest.raises(SpecError) as e:
        load(str(f))
    assert e.value.file == str(f)
    return e.value


CONV = [{"type": "conv", "out": 4, "kernel": 1}]


@pytest.mark.parametrize("graph_nodes, extra, field, words", [
    ([{"name": "a", "inputs": ["b"], "layers": CONV}, {"name": "b", "layers": CONV}], {},
     "nodes", "input 'b' is not an earlier node"),
    ([{"name": "a", "inputs": ["x"], "layers": CONV}], {}, "nodes",
     "input 'x' is no node of the graph"),
    ([{"name": "a", "layers": CONV}, {"name": "b", "inputs": ["input"], "layers": CONV}], {},
     "nodes", "the output of node 'a' is used by no later node"),
    ([{"name": "a", "layers": CONV}, {"name": "a", "layers": CONV}], {}, "nodes",
     "node 'a' (nodes.1): the name is taken"),
    ([{"name": "input", "layers": CONV}], {}, "nodes", "input is the graph's input"),
    ([{"name": "a", "layers": CONV}, {"name": "b", "inputs": ["input", "a"], "layers": CONV}],
     {}, "nodes", "2 inputs need a merge"),
    ([{"name": "a", "merge": "add", "layers": CONV}], {}, "nodes",
     "merge 'add' needs two inputs or more"),
    ([{"name": "a", "layers": CONV}, {"name": "b"}], {}, "nodes", "the node does nothing"),
    ([{"name": "a", "layers": CONV}, {"name": "b", "layers": CONV}], {"output": "a"},
     "output", "nodes after 'a' (b) would be unused"),
    ([{"name": "a", "layers": CONV}], {"output": "z"}, "output", "'z' is no node"),
])
def test_wiring_errors_name_the_file_layer_and_field(tmp_path, graph_nodes, extra, field, words):
    e = _graph_error(tmp_path, graph_nodes, **extra)
    assert e.path == "block1" and e.field == field
    assert words in str(e)


def test_a_bad_node_field_names_the_node(tmp_path):
    e = _graph_error(tmp_path, [{"name": "a", "layers": CONV, "merge": "hff"}])
    assert e.path == "block1.a" and e.field == "merge"
    e = _graph_error(tmp_path, [{"name": "a", "layers": CONV, "input": ["input"]}])
    assert e.path == "block1.a" and e.field == "input" and "did you mean inputs" in str(e)


def test_an_error_inside_a_node_names_the_layer_path(tmp_path):
    e = _graph_error(tmp_path, [{"name": "a", "layers": [{"type": "conv", "out": 0}]}])
    assert e.path == "block1.a.0" and e.field == "out"


def test_a_shape_error_at_a_merge_names_the_node():
    graph = {"type": "graph", "name": "g", "nodes": [
        {"name": "a", "layers": [{"type": "conv", "out": 3, "kernel": 1, "stride": 2}]},
        {"name": "b", "inputs": ["input", "a"], "merge": "concat"}]}
    with pytest.raises(Exception) as e:
        run_layers([graph], input=(4, 4), in_channels=3)
    assert getattr(e.value, "path", None) == "g.b" and "concat" in str(e.value)


# --- aux: training-only layers --------------------------------------------------------------

AUX = {"type": "aux", "name": "aux1", "layers": [
    {"type": "conv", "out": 6, "kernel": 1}, {"type": "bn"}, {"type": "global_pool"},
    {"type": "flatten"}, {"type": "linear", "out": 10}]}
MAIN = [{"type": "conv", "out": 8, "kernel": 3, "padding": 1}, AUX,
        {"type": "conv", "out": 5, "kernel": 1}]


@pytest.mark.parametrize("options", [Options(), Options(scope="fvcore", bn_params=True),
                                     Options(batch=4)])
def test_aux_layers_count_params_and_nothing_else(options):
    r = run_layers(MAIN, input=(H, H), in_channels=3, options=options)
    main_only = run_layers([MAIN[0], MAIN[2]], input=(H, H), in_channels=3, options=options)
    aux = [row for row in r.rows if row.path.startswith("aux1.")]
    assert [row.path for row in aux] == [f"aux1.{i}" for i in range(5)]
    assert all(row.training_only and row.flops == row.mac == row.activations == 0
               for row in aux)
    bn = 2 * 6 if options.bn_params else 0
    aux_params = 8 * 6 + bn + 6 * 10 + 10
    assert r.aux_params == sum(row.params for row in aux) == aux_params
    assert r.totals.params == main_only.totals.params + aux_params
    assert (r.totals.flops, r.totals.mac, r.totals.peak_activation) == \
        (main_only.totals.flops, main_only.totals.mac, main_only.totals.peak_activation)
    # the main path goes on with the aux block's input
    assert r.rows[-1].inputs == (r.rows[0].out,) and r.output == main_only.output
    assert aux[-1].out.c == 10 and aux[0].inputs == (r.rows[0].out,)
    lean = evaluate(_spec(MAIN, 3), options=options, totals_only=True)
    assert lean.totals == r.totals and lean.aux_params == r.aux_params


def test_aux_is_shown_apart_in_the_json_records_and_absent_elsewhere():
    r = run_layers(MAIN, input=(H, H), in_channels=3)
    assert totals_record(r)["training_only_params"] == r.aux_params > 0
    flagged = [rec["path"] for rec in layer_records(r) if rec.get("training_only")]
    assert flagged == [f"aux1.{i}" for i in range(5)]
    plain = run_layers([MAIN[0], MAIN[2]], input=(H, H), in_channels=3)
    assert "training_only_params" not in totals_record(plain)
    assert all("training_only" not in rec for rec in layer_records(plain))


def test_a_block_inside_aux_is_not_replayed_outside_it():
    """The same block inside and outside an aux block costs differently: the replay of
    repeats must not hand one the other's rows."""
    block = {"type": "sequential", "layers": [{"type": "conv", "out": 8, "kernel": 1}]}
    layers = [{"type": "conv", "out": 8, "kernel": 1},
              {"type": "aux", "name": "aux1", "layers": [dict(block, name="s")]},
              dict(block, name="s")]
    r = run_layers(layers, input=(H, H), in_channels=3)
    assert r.rows[1].path == "aux1.s.0" and r.rows[1].flops == 0
    assert r.rows[2].path == "s.0" and r.rows[2].flops == 8 * 8 * HW


def test_a_repeated_aux_block_is_replayed_training_only():
    layers = [{"type": "repeat", "name": "r", "n": 3, "depth_scaling": False,
               "layers": [{"type": "conv", "out": 8, "kernel": 1}, AUX]}]
    r = run_layers(layers, input=(H, H), in_channels=8)
    once = run_layers([{"type": "conv", "out": 8, "kernel": 1}, AUX], input=(H, H),
                      in_channels=8)
    assert r.aux_params == 3 * once.aux_params > 0
    assert r.totals.flops == 3 * once.totals.flops == 3 * 8 * 8 * HW
    aux = [row for row in r.rows if ".aux1." in row.path]
    assert len(aux) == 3 * len(AUX["layers"]) and all(row.training_only for row in aux)
    assert evaluate(_spec(layers, 8), totals_only=True).aux_params == r.aux_params


def _spec(layers, in_channels):
    from costmodel.api import layers_spec
    return layers_spec(layers, input=(H, H), in_channels=in_channels, name="t")


def test_the_analyses_read_a_graph_and_an_aux_block():
    """Data flow: a graph is one block (its input to its last node's output), its merges are
    layers; an aux block passes the main path on (its classifier does not start the head).
    Rules: G3 measures the graph with its longest chain of operators."""
    from costmodel.analysis.dataflow import dataflow
    from costmodel.analysis.rules import _chains, _series, g3_blocks

    layers = [{"type": "conv", "out": C0, "kernel": 1}, dense_graph(), AUX,
              {"type": "global_pool"}, {"type": "flatten"}, {"type": "linear", "out": 10}]
    r = run_layers(layers, input=(H, H), in_channels=3)
    blocks = {f.path: f for f in dataflow(r, level="block")}
    assert (blocks["block1"].input.c, blocks["block1"].output.c) == (C0, C0 + N * K)
    assert blocks["aux1"].output == blocks["aux1"].input and not blocks["aux1"].head
    assert blocks["3"].head  # the head starts at the main path's global pool
    layer_paths = [f.path for f in dataflow(r, level="layer")]
    assert "block1.l2.concat" in layer_paths and "block1.out.concat" in layer_paths
    dag = r.tree.children[1]
    assert dag in g3_blocks(r)
    assert _series(dag) == 2 * N  # every dense layer's two convs lie on one path
    assert max(len(c) for c in _chains(dag)) == 2 * N
