"""README.md lists every layer type with every field (issue #14: "the README's block table
listing every field"): the table is generated from the layer classes by
scripts/layer_table.py, and this test fails when a class changes without the README."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("layer_table",
                                                  ROOT / "scripts" / "layer_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_the_generated_one():
    script = _script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script.table() in readme, "run: python scripts/layer_table.py --write"


def test_every_layer_type_and_field_is_in_the_table():
    from costmodel.layers import layer_types
    from costmodel.layers.traits import tags

    table = _script().table()
    for cls in layer_types():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{tags(cls)[0]}`"))
        for field in cls.model_fields:
            if field not in ("type", "name"):
                assert f"`{field}`" in row, (tags(cls)[0], field)
