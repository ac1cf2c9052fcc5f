"""The validated-spec cache: hits only for unchanged files, ignores broken entries."""

from __future__ import annotations

import os

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
