"""The validated-spec cache: hits only for the same bytes, variants and code; serves nothing it
did not write for this very key; runs no code from the folder; touches only its own files."""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys

import pytest

from costmodel.spec import cache
from costmodel.spec.loader import load_spec

SPEC = "name: c\ninput: 8\nlayers:\n  - {type: conv, out: %d}\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A cache folder of this test's own, not yet created; warnings not yet given."""
    d = tmp_path / "cache"
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(d))
    monkeypatch.setattr(cache, "_warned", False)
    return d


def _spec(tmp_path, out: int, name: str = "c.yaml"):
    f = tmp_path / name
    f.write_text(SPEC % out)
    return f


def _entries(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_hit_after_first_load(tmp_path, folder):
    f = _spec(tmp_path, 4)
    first = load_spec(f)
    assert cache.Entry(f, []).load() == first
    assert load_spec(f).layers[0].out == 4
    [name] = _entries(folder)
    assert name == f"spec-{cache.Entry(f, []).key}.json"


def test_a_spec_with_block_definitions_is_cached(tmp_path, folder):
    """``blocks:`` definitions (BlockDef) are one of the spec's own models: an entry holding
    them is served (it once missed every time, silently)."""
    f = tmp_path / "b.yaml"
    f.write_text("name: b\ninput: 8\nblocks:\n  cb:\n    params: {c: null}\n"
                 "    layers: [{type: conv, out: $c, kernel: 3}, {type: bn}]\n"
                 "layers:\n  - {type: cb, name: s, c: 4}\n")
    first = load_spec(f)
    assert cache.Entry(f, []).load() == first
    assert load_spec(f).layers[0].layers[0].out == 4


def test_changed_file_is_validated_again(tmp_path, folder):
    f = _spec(tmp_path, 4)
    load_spec(f)
    f.write_text(SPEC % 16)
    assert load_spec(f).layers[0].out == 16


def test_an_edit_that_keeps_size_and_mtime_misses(tmp_path, folder):
    # cp -p, rsync -t, tar and touch -r all restore the mtime: the key is the content
    f = _spec(tmp_path, 4)
    st = f.stat()
    load_spec(f)
    f.write_text(SPEC % 8)  # one digit for another: the same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (f.stat().st_size, f.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert load_spec(f).layers[0].out == 8


def test_variants_and_vars_are_part_of_the_key(tmp_path, folder):
    f = tmp_path / "c.yaml"
    f.write_text("name: c\ninput: 8\nvars: {c: 4}\nlayers:\n  - {type: conv, out: $c}\n"
                 "variants: {half: {width: 0.5}}\n")
    assert load_spec(f, ["half"]).width == 0.5
    assert load_spec(f).width == 1.0
    assert load_spec(f, vars={"c": 6}).layers[0].out == 6
    assert load_spec(f).layers[0].out == 4
    assert len(_entries(folder)) == 3


def test_the_same_bytes_elsewhere_are_another_entry(tmp_path, folder):
    # a spec without `name` is named after its file: the path is part of the key
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / "one.yaml", tmp_path / "b" / "two.yaml"
    for f in (a, b):
        f.write_text("input: 8\nlayers:\n  - {type: conv, out: 4}\n")
    assert (load_spec(a).name, load_spec(b).name) == ("one", "two")
    assert load_spec(b).file == str(b)


def test_cache_can_be_turned_off(tmp_path, folder, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE", "0")
    load_spec(_spec(tmp_path, 4))
    assert not folder.exists()


# --- what the folder may hold ---------------------------------------------------------------

def _plant_cases(tmp_path, key: str) -> dict[str, bytes]:
    """Entries that must never be served under the name of the entry with this key: each is a
    valid entry (of a spec with 16 channels) with this key, and one defect."""
    other = _spec(tmp_path, 16)
    load_spec(other)
    good = json.loads(cache.Entry(other, []).path(cache.cache_dir()).read_text())
    good["key"] = key
    layer = good["spec"]["fields"]["layers"][0]

    def doc(**change) -> bytes:
        return json.dumps({**good, **change}).encode()

    def with_spec(**change) -> bytes:
        return doc(spec={**good["spec"], **change})

    def with_layer(**change) -> bytes:
        return with_spec(fields={**good["spec"]["fields"], "layers": [{**layer, **change}]})

    marker = tmp_path / "ran"
    return {
        "valid (the control: served)": doc(),
        "empty": b"",
        "not JSON": b"not a spec",
        "truncated": doc()[:-10],
        "a pickle that runs code": pickle.dumps(_Runs(str(marker))),
        "a list": b"[]",
        "another schema": doc(schema=cache.SCHEMA + 1),
        "a schema that is no number": doc(schema=True) if cache.SCHEMA == 1 else doc(schema="1"),
        "another key": doc(key="0" * 64),
        "no key": json.dumps({"schema": cache.SCHEMA, "spec": good["spec"]}).encode(),
        "more keys": doc(code="import os"),
        "a module outside the layers": with_layer(layer=["os", "conv"]),
        "a path for a module": with_layer(layer=["../../os", "conv"]),
        "a dotted module": with_layer(layer=["conv.os", "conv"]),
        "a module name that is not a string": with_layer(layer=[["conv"], "conv"]),
        "an unknown tag": with_layer(layer=["conv", "rm_rf"]),
        "a tag of another module": with_layer(layer=["pool", "conv"]),
        "a tag that is not the type": with_layer(layer=["conv", "conv"], fields={
            **layer["fields"], "type": "dwconv"}),
        "a class name for a tag": with_layer(layer=["conv", "Conv"]),
        "a layer as a plain model": with_spec(fields={**good["spec"]["fields"], "layers": [{
            "model": ["conv", "Conv"], **{k: v for k, v in layer.items() if k != "layer"}}]}),
        "a class that is no model": with_spec(model=["conv", "Path"]),
        "a spec that is a layer": doc(spec=layer),
        "a missing field": with_layer(fields={k: v for k, v in layer["fields"].items()
                                              if k != "out"}),
        "an unknown field": with_layer(fields={**layer["fields"], "evil": 1}),
        "a field set that is no field": with_layer(set=["evil"]),
        "an attribute that is not a cached property": with_layer(cached={"cost": 0}),
        "an unknown private attribute": with_spec(private={"_evil": 1}),
        "an unknown value tag": with_layer(fields={**layer["fields"], "out": {"eval": "1"}}),
        "a bad rounding": with_spec(fields={**good["spec"]["fields"],
                                            "rounding": {"rounding": ["exec", 8, 1]}}),
        "a reference outside cached": with_layer(fields={**layer["fields"], "out": {"ref": ["x"]}}),
        "nested too deep": b'{"schema": 1, "key": "' + b"[" * 100_000 + b"]" * 100_000 + b'"}',
    }


class _Runs:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_planted_entry_is_never_served(tmp_path, folder, monkeypatch):
    import importlib

    imported, import_module = [], importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda name, *a: imported.append(name) or import_module(name, *a))
    f = _spec(tmp_path, 4)
    entry = cache.Entry(f, [])
    (tmp_path / "other").mkdir()
    for why, data in _plant_cases(tmp_path / "other", entry.key).items():
        entry.path(folder).write_bytes(data)
        served = cache.Entry(f, []).load()
        if why.startswith("valid"):
            assert served.layers[0].out == 16  # the defects below are what make the misses
        else:
            assert served is None, why
            assert load_spec(f).layers[0].out == 4, why
    assert not (tmp_path / "other" / "ran").exists()
    own = {f"costmodel.layers.{p.stem}" for p in cache._PACKAGE.joinpath("layers").glob("*.py")}
    assert set(imported) <= own  # nothing named by the data outside the layer modules is tried


def test_a_valid_entry_of_another_spec_is_not_served(tmp_path, folder):
    mine, other = _spec(tmp_path, 4, "mine.yaml"), _spec(tmp_path, 16, "other.yaml")
    load_spec(other)
    theirs = cache.Entry(other, []).path(folder)
    ours = cache.Entry(mine, []).path(folder)
    theirs.replace(ours)
    assert cache.Entry(mine, []).load() is None
    assert load_spec(mine).layers[0].out == 4


@pytest.mark.parametrize("umask", [0o000, 0o700])  # everything for all, nothing for us
def test_the_folder_and_missing_parents_are_made_private(tmp_path, monkeypatch, umask):
    made = tmp_path / "x" / "y" / "cache"
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(made))
    tmp_path.chmod(0o755)  # the user's own folder: left as it is
    old = os.umask(umask)
    try:
        load_spec(_spec(tmp_path, 4))
    finally:
        os.umask(old)
    for d in (tmp_path / "x", tmp_path / "x" / "y", made):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    [entry] = made.iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_folder_others_may_write_is_not_used(tmp_path, folder, capsys, mode):
    f = _spec(tmp_path, 4)
    load_spec(f)  # an entry, stored while the folder was private
    folder.chmod(mode)
    assert cache.Entry(f, []).load() is None
    f.write_text(SPEC % 8)
    assert load_spec(f).layers[0].out == 8  # validated, and not stored
    assert len(_entries(folder)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line, once per process
    assert str(folder) in err and "writable by group or others" in err
    assert stat.S_IMODE(folder.stat().st_mode) == mode  # not the cache's to change


def test_an_entry_others_may_write_is_not_served(tmp_path, folder, capsys):
    f = _spec(tmp_path, 4)
    load_spec(f)
    [entry] = folder.iterdir()
    entry.chmod(0o622)
    assert cache.Entry(f, []).load() is None
    assert "writable by group or others" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_a_folder_or_entry_of_another_user_is_not_used(tmp_path, folder, capsys):
    f = _spec(tmp_path, 4)
    load_spec(f)
    [entry] = folder.iterdir()
    os.chown(entry, 12345, -1)
    assert cache.Entry(f, []).load() is None
    os.chown(entry, os.getuid(), -1)
    assert cache.Entry(f, []).load() is not None
    os.chown(folder, 12345, -1)
    assert cache.Entry(f, []).load() is None
    assert "owned by another user" in capsys.readouterr().err


def test_a_symlinked_entry_is_not_followed(tmp_path, folder):
    mine = _spec(tmp_path, 4)
    load_spec(mine)
    ours = cache.Entry(mine, []).path(folder)
    ours.rename(folder / "elsewhere")
    ours.symlink_to(folder / "elsewhere")
    assert cache.Entry(mine, []).load() is None


def test_pruning_removes_only_its_own_entries(tmp_path, folder, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    folder.mkdir(mode=0o700)
    foreign = ["x.pickle", "notes.json", "spec-abc.json", "spec-" + "0" * 64 + ".json.bak",
               "SPEC-" + "0" * 64 + ".json"]
    for name in foreign:
        (folder / name).write_text("mine, not the cache's")
        os.utime(folder / name, ns=(0, 0))  # older than any entry
    (folder / ("spec-" + "1" * 64 + ".json")).mkdir()  # named like an entry, but a folder
    stale = folder / ("spec-" + "2" * 64 + ".json.abc_123.tmp")  # a killed store's
    stale.write_text("{")
    os.utime(stale, ns=(0, 0))
    fresh = folder / ("spec-" + "3" * 64 + ".json.def_456.tmp")  # a store under way
    fresh.write_text("{")
    files = []
    for i in range(4):
        f = _spec(tmp_path, i + 1, f"c{i}.yaml")
        load_spec(f)  # a miss: validated and stored
        os.utime(cache.Entry(f, []).path(folder), ns=((i + 1) * 10**9,) * 2)  # in this order
        files.append(f)
    assert [cache.Entry(f, []).load() is not None for f in files] == [False, False, True, True]
    for name in foreign:
        assert (folder / name).read_text() == "mine, not the cache's"
    assert (folder / ("spec-" + "1" * 64 + ".json")).is_dir()
    assert fresh.exists() and not stale.exists()


def test_a_failed_store_leaves_nothing(tmp_path, folder, monkeypatch):
    f = _spec(tmp_path, 4)

    def fail(value):
        raise RecursionError("a spec too deep to encode")

    monkeypatch.setattr(cache, "encode", fail)
    assert load_spec(f).layers[0].out == 4
    assert _entries(folder) == []
    monkeypatch.undo()
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(folder))

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.os, "replace", full_disk)
    assert load_spec(f).layers[0].out == 4
    assert _entries(folder) == []


def test_a_file_changed_while_it_is_validated_is_not_stored(tmp_path, folder):
    f = _spec(tmp_path, 4)
    entry = cache.Entry(f, [])  # hashed now ...
    f.write_text(SPEC % 8)  # ... changed before it is parsed
    entry.store(load_spec(f, []))
    assert entry.load() is None
    assert cache.Entry(f, []).load().layers[0].out == 8


def test_a_fifo_is_not_read_by_the_cache(tmp_path, folder):
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    assert cache.Entry(fifo, []).digest is None  # would block on open without O_NONBLOCK


# --- exact round trip -----------------------------------------------------------------------

def _same(a, b, where="spec") -> None:
    """a and b equal and of the same shape all the way down: types, field order, the fields
    given, private attributes, and the values cached properties computed at validation."""
    assert type(a) is type(b), where
    if hasattr(a, "__pydantic_fields_set__"):
        assert list(a.__dict__) == list(b.__dict__), where
        assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__, where
        assert a.__pydantic_private__ == b.__pydantic_private__, where
        assert a.__pydantic_extra__ == b.__pydantic_extra__, where
        for k in a.__dict__:
            _same(a.__dict__[k], b.__dict__[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    else:
        assert a == b, where


def test_every_zoo_spec_and_variant_round_trips_exactly(folder):
    from costmodel.engine import evaluate
    from costmodel.spec.zoo import locate, zoo

    seen = 0
    for e in zoo():
        for variant in [None, *e.variants]:
            ref = e.name + (f"-{variant}" if variant else "")
            file, variants = locate(ref)
            validated = load_spec(file, variants)
            decoded = cache.Entry(file, variants).load()
            assert decoded is not None, ref
            assert decoded == validated, ref
            _same(validated, decoded, ref)
            a, b = evaluate(validated), evaluate(decoded)
            assert (a.rows, a.totals) == (b.rows, b.totals), ref
            seen += 1
    assert seen == sum(1 + len(e.variants) for e in zoo()) > 27


def test_a_repeat_keeps_its_first_copy_shared_with_its_layers(tmp_path, folder):
    f = tmp_path / "r.yaml"
    f.write_text("name: r\ninput: 8\nlayers:\n"
                 "  - {type: repeat, n: 3, layers: [{type: conv, out: 4}, {type: bn}]}\n"
                 "  - {type: repeat, n: 2, first: {stride: 2},"
                 " layers: [{type: conv, out: 4}, {type: bn}]}\n")
    load_spec(f)
    plain, strided = cache.Entry(f, []).load().layers
    assert plain.__dict__["first_copy"] is plain.layers  # a repeat without `first`
    assert strided.__dict__["first_copy"][1] is strided.layers[1]  # `first` left bn alone
    assert strided.__dict__["first_copy"][0].stride == 2


# --- cold start -----------------------------------------------------------------------------

def _fresh(code: str, cache_dir) -> str:
    env = {**os.environ, "COSTMODEL_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, timeout=120).stdout


def test_a_cached_spec_imports_only_its_own_layer_modules(tmp_path):
    loaded = ("import sys\nfrom costmodel.api import evaluate_model\n"
              "print(evaluate_model('effnet').totals.flops)\n"
              "print(sorted(m for m in sys.modules if m.startswith('costmodel.layers.')))\n")
    validated = _fresh(loaded, tmp_path / "c").splitlines()  # a miss: the whole layer union
    cached = _fresh(loaded, tmp_path / "c").splitlines()
    assert cached[0] == validated[0]
    assert "'costmodel.layers.ghost'" in validated[1]
    assert "'costmodel.layers.effnet'" in cached[1]
    assert "'costmodel.layers.ghost'" not in cached[1]  # no GhostNet layer in EffNet


def test_a_spec_validates_in_a_fresh_process_without_the_loader(tmp_path):
    # the union of layer types is built by the first schema that holds layers, whoever asks
    code = ("from costmodel.spec.model import ModelSpec\n"
            "m = ModelSpec.model_validate({'name': 'x', 'layers': [{'type': 'sequential', "
            "'layers': [{'type': 'conv', 'out': 4}, {'type': 'ghost_module', 'out': 8}]}]})\n"
            "print(type(m.layers[0].layers[1]).__name__)\n")
    assert _fresh(code, tmp_path).strip() == "GhostModule"
