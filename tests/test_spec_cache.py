"""The validated-spec cache: hits only for unchanged files, ignores broken entries."""

from __future__ import annotations

import os
import subprocess
import sys

from costmodel.spec import cache
from costmodel.spec.loader import load_spec

SPEC = "name: c\ninput: 8\nlayers:\n  - {type: conv, out: %d}\n"


def test_hit_after_first_load(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "c.yaml"
    f.write_text(SPEC % 4)
    first = load_spec(f)
    assert cache.load(f, []) == first
    assert load_spec(f).layers[0].out == 4


def test_changed_file_is_validated_again(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "c.yaml"
    f.write_text(SPEC % 4)
    load_spec(f)
    f.write_text(SPEC % 16)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert load_spec(f).layers[0].out == 16


def test_variants_are_part_of_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "c.yaml"
    f.write_text(SPEC % 8 + "variants: {half: {width: 0.5}}\n")
    assert load_spec(f, ["half"]).width == 0.5
    assert load_spec(f).width == 1.0


def test_broken_entry_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "c.yaml"
    f.write_text(SPEC % 4)
    load_spec(f)
    for entry in (tmp_path / "cache").iterdir():
        entry.write_bytes(b"not a pickle")
    assert load_spec(f).layers[0].out == 4


def test_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COSTMODEL_CACHE", "0")
    f = tmp_path / "c.yaml"
    f.write_text(SPEC % 4)
    load_spec(f)
    assert not (tmp_path / "cache").exists()


def _fresh(code: str, cache_dir) -> str:
    env = {**os.environ, "COSTMODEL_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, timeout=120).stdout


def test_a_cached_spec_imports_only_its_own_layer_modules(tmp_path):
    loaded = ("import sys\nfrom costmodel.api import evaluate_model\n"
              "print(evaluate_model('effnet').totals.flops)\n"
              "print(sorted(m for m in sys.modules if m.startswith('costmodel.layers.')))\n")
    validated = _fresh(loaded, tmp_path).splitlines()  # a cache miss: the whole layer union
    cached = _fresh(loaded, tmp_path).splitlines()
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


def test_only_the_newest_entries_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    files = []
    for i in range(5):
        f = tmp_path / f"c{i}.yaml"
        f.write_text(SPEC % (i + 1))
        load_spec(f)  # a miss: validated and stored
        entry = cache._entry(f, [])
        os.utime(entry, ns=(i * 10**9, i * 10**9))  # stored in this order, whatever the clock
        files.append(f)
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 3
    assert [cache.load(f, []) is not None for f in files] == [False, False, True, True, True]
