"""Spec ergonomics: ``blocks`` definitions, ``first`` reaching nested fields, ``se`` sized from
its block's input, and variants of spec files by path."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from costmodel.api import evaluate_model
from costmodel.cli import app
from costmodel.engine import evaluate
from costmodel.errors import LimitError, SpecError, UnknownModelError
from costmodel.spec.loader import load_spec
from costmodel.spec.zoo import locate, zoo_dir

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))


def write(tmp_path, text: str, name: str = "m.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def rows(ref: str, **kw):
    return [(r.path, r.type, r.out, r.flops, r.params) for r in evaluate_model(ref, **kw).rows]


def fails(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    return res.stderr


BLOCKS = """\
name: m
input: 16
vars: {w: 16}
blocks:
  cbr:
    params: {c: null, k: 3, s: 1}
    layers:
      - {type: conv, name: conv, out: $c, kernel: $k, stride: $s}
      - {type: bn, name: bn}
      - {type: relu, name: act}
  pair:
    params: {c: $w}
    stage: true
    layers:
      - {type: cbr, name: a, c: $c}
      - {type: cbr, name: b, c: $c, k: 1}
layers:
  - {type: cbr, name: stem, c: 8, s: 2}
  - {type: pair, name: p1}
  - {type: pair, name: p2, c: 32}
"""

HANDWRITTEN = """\
name: m
input: 16
layers:
  - {type: sequential, name: stem, layers: [{type: conv, name: conv, out: 8, kernel: 3, stride: 2},
     {type: bn, name: bn}, {type: relu, name: act}]}
  - {type: stage, name: p1, layers: [
     {type: sequential, name: a, layers: [{type: conv, name: conv, out: 16, kernel: 3},
       {type: bn, name: bn}, {type: relu, name: act}]},
     {type: sequential, name: b, layers: [{type: conv, name: conv, out: 16, kernel: 1},
       {type: bn, name: bn}, {type: relu, name: act}]}]}
  - {type: stage, name: p2, layers: [
     {type: sequential, name: a, layers: [{type: conv, name: conv, out: 32, kernel: 3},
       {type: bn, name: bn}, {type: relu, name: act}]},
     {type: sequential, name: b, layers: [{type: conv, name: conv, out: 32, kernel: 1},
       {type: bn, name: bn}, {type: relu, name: act}]}]}
"""


def test_block_uses_expand_to_the_handwritten_network(tmp_path):
    used = evaluate_model(write(tmp_path, BLOCKS))
    hand = evaluate_model(write(tmp_path, HANDWRITTEN, "h.yaml"))
    assert rows(write(tmp_path, BLOCKS)) == rows(write(tmp_path, HANDWRITTEN, "h.yaml"))
    assert used.totals == hand.totals
    # params: defaults ($w = 16 for p1), given values, a definition using another
    assert [r.path for r in used.rows][:4] == ["stem.conv", "stem.bn", "stem.act", "p1.a.conv"]
    conv_p2b = next(r for r in used.rows if r.path == "p2.b.conv")
    assert conv_p2b.params == 32 * 32 * 1 * 1
    assert {r.stage for r in used.rows if r.path.startswith("p2.")} == {"p2"}


def test_block_definition_change_changes_the_cached_result(tmp_path):
    path = write(tmp_path, BLOCKS)
    before = evaluate(load_spec(path)).totals.params
    assert load_spec(path) == load_spec(path)  # from the cache the second time
    write(tmp_path, BLOCKS.replace("k: 3, s: 1", "k: 5, s: 1"))
    after = evaluate(load_spec(path)).totals.params
    # stem (3→8), p1.a (8→16), p2.a (16→32) grow from 3×3 to 5×5 kernels (the b's are 1×1)
    assert after - before == (3 * 8 + 8 * 16 + 16 * 32) * (25 - 9)


@pytest.mark.parametrize("use,expected", [
    ("{type: cbr, name: s1, c: 8, kk: 3}", ["layer 's1'", "field 'kk'",
                                          "block 'cbr' has no parameter 'kk'",
                                          "did you mean k"]),
    ("{type: cbr, name: s1}", ["layer 's1'", "field 'c'", "needs 'c'"]),
    ("{type: cbr, name: s1, c: -4}", ["layer 's1.conv'", "field 'out'",
                                     "(in block 'cbr', used as 's1')"]),
    ("{type: cbr, name: s1, c: $nope}", ["layer 's1.conv'", "unknown variable '$nope'",
                                        "(in block 'cbr', used as 's1')"]),
    ("{type: cbx, c: 8}", ["unknown layer type 'cbx'", "did you mean", "cbr"]),
    ("{type: loop_a, name: l}", ["layer 'l", "block 'loop_a' uses itself",
                                 "loop_a → loop_b → loop_a"]),
])
def test_block_errors_name_file_use_site_and_field(tmp_path, use, expected):
    text = BLOCKS.replace("layers:\n  - {type: cbr, name: stem",
                          "  loop_a: {layers: [{type: loop_b}]}\n"
                          "  loop_b: {layers: [{type: loop_a}]}\n"
                          f"layers:\n  - {use}\n  - {{type: cbr, name: stem")
    err = fails("show", write(tmp_path, text))
    assert "m.yaml" in err
    for part in expected:
        assert part in err, err


@pytest.mark.parametrize("blocks,expected", [
    ("  conv: {layers: [{type: relu}]}\n", ["blocks.conv", "it is a layer type"]),
    ("  x: {layer: [], layers: [{type: relu}]}\n", ["blocks.x", "unknown field 'layer'"]),
    ("  x: {params: {c: 1}}\n", ["blocks.x.layers"]),
])
def test_bad_definitions_are_refused(tmp_path, blocks, expected):
    err = fails("show", write(tmp_path, f"name: m\nblocks:\n{blocks}layers: [{{type: relu}}]\n"))
    for part in expected:
        assert part in err, err


def test_block_expansion_is_bounded(tmp_path):
    # each definition uses the one before twice: 2^30 copies, refused long before
    defs = "".join(f"  d{i}: {{layers: [{{type: d{i - 1}}}, {{type: d{i - 1}}}]}}\n"
                   for i in range(1, 31))
    path = write(tmp_path, "name: m\ninput: 8\nblocks:\n  d0: {layers: [{type: relu}]}\n"
                 f"{defs}layers: [{{type: d30}}]\n")
    with pytest.raises(LimitError, match="COSTMODEL_MAX_YAML_NODES"):
        evaluate_model(path)


RESNET_STAGE = """\
name: r
input: 16
in_channels: 16
layers:
  - type: repeat
    name: stage
    n: 2
    first:
      main.conv1.stride: 2
      main.conv1.out: 32
      shortcut: [{type: conv, name: proj, out: 32, kernel: 1, stride: 2}, {type: bn}]
    layers:
      - type: residual
        layers:
          - {type: conv, name: conv1, out: 32, kernel: 3}
          - {type: conv, name: conv2, out: 32, kernel: 3}
"""


def test_first_reaches_into_a_residual_and_sets_its_shortcut(tmp_path):
    result = evaluate_model(write(tmp_path, RESNET_STAGE.replace("      main.conv1.out: 32\n", "")
                                  .replace("in_channels: 16", "in_channels: 32")))
    by_path = {r.path: r for r in result.rows}
    assert by_path["stage.0.main.conv1"].out.h == 8  # strided: 16 → 8
    assert by_path["stage.0.main.conv1"].flops == 32 * 32 * 9 * 8 * 8
    assert by_path["stage.0.shortcut.proj"].flops == 32 * 32 * 8 * 8
    assert by_path["stage.1.main.conv1"].out.h == 8  # the other copy is as written
    assert "stage.1.shortcut.proj" not in by_path
    assert by_path["stage.1.add"].type == "add"


def test_first_path_in_a_several_layer_repeat_starts_with_the_layer(tmp_path):
    path = write(tmp_path, "name: r\ninput: 16\nlayers:\n  - {type: repeat, n: 2, name: rep, "
                 "first: {b.stride: 2}, layers: [{type: conv, name: a, out: 4, kernel: 1}, "
                 "{type: conv, name: b, out: 4, kernel: 3}]}\n")
    outs = {r.path: r.out.h for r in evaluate_model(path).rows}
    assert outs == {"rep.0.a": 16, "rep.0.b": 8, "rep.1.a": 8, "rep.1.b": 8}


@pytest.mark.parametrize("key,expected", [
    ("main.conv9.stride: 2", ["layer 'stage'", "'main' has no layer 'conv9'",
                              "layers: conv1, conv2"]),
    ("main.conv1.strid: 2", ["no field 'strid'", "did you mean stride"]),
    ("main.conv1.stride: x", ["'main.conv1.stride' to 'x'", "valid integer"]),
    ("side.conv1.stride: 2", ["no part 'side'", "main, shortcut"]),
    ("strid: 2", ["'first' sets 'strid', which no layer of the repeat has"]),
])
def test_first_path_errors(tmp_path, key, expected):
    err = fails("show", write(tmp_path, RESNET_STAGE.replace("main.conv1.stride: 2", key)))
    for part in expected:
        assert part in err, err


def mbconv_by_hand(se: str) -> str:
    return f"""\
name: e
input: 16
in_channels: 16
blocks:
  mb:
    params: {{out: null}}
    layers:
      - type: residual
        layers:
          - {{type: conv, name: expand, out: 96, kernel: 1}}
          - {{type: bn}}
          - {{type: silu}}
          - {{type: dwconv, name: dw, kernel: 3}}
          - {{type: bn}}
          - {{type: silu}}
          - {{type: se, name: se, {se}, activation: silu}}
          - {{type: conv, name: project, out: $out, kernel: 1}}
          - {{type: bn}}
layers:
  - {{type: mb, name: b1, out: 16}}
"""


def test_se_of_block_is_sized_from_the_block_input_like_efficientnet(tmp_path):
    result = evaluate_model(write(tmp_path, mbconv_by_hand("ratio: 0.25, of: block")))
    fc1 = next(r for r in result.rows if r.path.endswith("gate.fc1"))
    assert fc1.out.c == 16 // 4  # of the block's 16 input channels, not the SE's 96
    assert fc1.params == 96 * 4 + 4
    # the same as mbconv's own SE of the block input, and as a fixed squeeze of 4
    builtin = write(tmp_path, "name: e\ninput: 16\nin_channels: 16\nlayers:\n  - {type: mbconv, "
                    "out: 16, expansion: 6, activation: silu, se: {ratio: 0.25, of: input, "
                    "activation: silu}}\n", "builtin.yaml")
    assert result.totals == evaluate_model(builtin).totals
    fixed = evaluate_model(write(tmp_path, mbconv_by_hand("squeeze: 4"), "f.yaml"))
    assert result.totals == fixed.totals
    own = evaluate_model(write(tmp_path, mbconv_by_hand("ratio: 0.25"), "o.yaml"))
    assert next(r for r in own.rows if r.path.endswith("gate.fc1")).out.c == 96 // 4


def test_se_of_block_follows_the_width_multiplier(tmp_path):
    path = write(tmp_path, mbconv_by_hand("ratio: 0.25, of: block").replace(
        "  - {type: mb, name: b1, out: 16}", "  - {type: conv, name: stem, out: 32, kernel: 1}\n"
        "  - {type: mb, name: b1, out: 32}"))
    for width, block_input in ((1.0, 32), (0.5, 16)):
        result = evaluate_model(path, width=width)
        fc1 = next(r for r in result.rows if r.path.endswith("gate.fc1"))
        assert fc1.out.c == block_input // 4  # the block's actual (scaled) input


@pytest.mark.parametrize("layers,expected", [
    ("[{type: se, ratio: 0.25, of: block}]", ["layer '0'", "field 'of'", "put it in a sequential"]),
    ("[{type: se, squeeze: 4, of: block}]", ["'of: block' sizes the squeeze by 'ratio'"]),
])
def test_se_of_block_errors(tmp_path, layers, expected):
    err = fails("show", write(tmp_path, f"name: s\ninput: 8\nlayers: {layers}\n"))
    for part in expected:
        assert part in err, err


def copy_zoo(tmp_path, stem: str) -> str:
    (tmp_path / "d").mkdir(exist_ok=True)
    return shutil.copy(zoo_dir() / f"{stem}.yaml", tmp_path / "d" / f"{stem}.yaml")


@pytest.mark.parametrize("stem,suffix,zoo_name", [
    ("mobilenet", "0.5", "mobilenet-0.5"),
    ("mobilenet", "0.3", "mobilenet-0.3"),
    ("shufflenet_v2", "x0_5", "shufflenet-v2-x0-5"),
])
def test_a_spec_path_takes_variant_suffixes(tmp_path, stem, suffix, zoo_name):
    path = copy_zoo(tmp_path, stem)
    assert locate(f"{path}-{suffix}")[0] == tmp_path / "d" / f"{stem}.yaml"
    ours = evaluate_model(f"{path}-{suffix}")
    assert ours.totals == evaluate_model(zoo_name).totals
    assert ours.model.endswith(suffix)
    res = runner.invoke(app, ["compare", f"{path}-{suffix}", "--format", "json"])
    assert res.exit_code == 0, res.output


def test_variant_path_errors_and_a_real_file_of_that_name(tmp_path):
    path = copy_zoo(tmp_path, "mobilenet")
    with pytest.raises(UnknownModelError, match="has no variant 'zz'"):
        evaluate_model(f"{path}-zz")
    with pytest.raises(UnknownModelError, match=r"no such spec file: .*nope\.yaml \(from"):
        locate(str(tmp_path / "nope.yaml-0.5"))
    real = write(tmp_path, "name: real\ninput: 8\nlayers: [{type: relu}]\n", "odd.yaml-0.5")
    assert locate(real) == (tmp_path / "odd.yaml-0.5", [])
    assert evaluate_model(real).model == "real"
    with pytest.raises(SpecError):
        evaluate_model(str(tmp_path / "d"))  # a directory is still refused


RESNET50_BY_BLOCKS = """\
name: resnet50_by_blocks
input: 224
blocks:
  proj:
    params: {c: null, s: 1}
    layers: [{type: conv, out: $c, kernel: 1, stride: $s}, {type: bn}]
  bneck:
    params: {p: null, c: null}
    layers:
      - type: residual
        name: res
        layers:
          - {type: conv, name: conv1, out: $p, kernel: 1}
          - {type: bn}
          - {type: relu}
          - {type: conv, name: conv2, out: $p, kernel: 3}
          - {type: bn}
          - {type: relu}
          - {type: conv, name: conv3, out: $c, kernel: 1}
          - {type: bn}
      - {type: relu}
  rstage:
    params: {n: null, p: null, c: null, s: 2}
    stage: true
    layers:
      - type: repeat
        n: $n
        first: {res.main.conv2.stride: $s, res.shortcut: [{type: proj, c: $c, s: $s}]}
        layers: [{type: bneck, p: $p, c: $c}]
layers:
  - {name: conv1, type: conv, out: 64, kernel: 7, stride: 2, padding: 3}
  - {type: bn}
  - {type: relu}
  - {type: max_pool, kernel: 3, stride: 2, padding: 1}
  - {type: rstage, name: layer1, n: 3, p: 64, c: 256, s: 1}
  - {type: rstage, name: layer2, n: 4, p: 128, c: 512}
  - {type: rstage, name: layer3, n: 6, p: 256, c: 1024}
  - {type: rstage, name: layer4, n: 3, p: 512, c: 2048}
  - {type: global_pool}
  - {type: flatten}
  - {type: linear, out: classes}
"""


def test_resnet50_written_with_blocks_and_first_paths_is_the_zoo_resnet50(tmp_path):
    ours = evaluate_model(write(tmp_path, RESNET50_BY_BLOCKS))
    zoo = evaluate_model("resnet50")
    assert ours.totals == zoo.totals
    assert (ours.totals.params, ours.totals.flops) == (25_557_032, 4_089_184_256)
    assert [r.out for r in ours.rows] == [r.out for r in zoo.rows]


def test_the_same_relative_path_in_another_folder_is_another_spec(tmp_path, monkeypatch):
    """resolve() keeps zoo specs in memory, never a spec file: `net.yaml` in another folder,
    or edited since, is read again (it was once served from an in-process cache by name)."""
    from costmodel.spec.zoo import resolve

    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    for out, folder in ((4, tmp_path / "a"), (6, tmp_path / "b")):
        folder.mkdir()
        (folder / "net.yaml").write_text(
            f"name: net\ninput: 8\nlayers: [{{type: conv, out: {out}, kernel: 3}}]\n")
        monkeypatch.chdir(folder)
        assert resolve("net.yaml").layers[0].out == out
    (tmp_path / "b" / "net.yaml").write_text(
        "name: net\ninput: 8\nlayers: [{type: conv, out: 9, kernel: 3}]\n")
    assert resolve("net.yaml").layers[0].out == 9
    assert resolve("mobilenet") is resolve("mobilenet")
