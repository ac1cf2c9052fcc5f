"""``derived`` (costmodel.layers.base): the layers blocks expand into, built without validation,
are exactly what Pydantic's ``model_construct`` builds from the same fields."""

from __future__ import annotations

import pytest

from costmodel.api import load
from costmodel.engine import Memo, evaluate, nodes
from costmodel.layers.base import LayerSpec, derived
from costmodel.layers.conv import Conv
from costmodel.layers.structure import Residual
from costmodel.spec.zoo import zoo


def _fields(layer) -> list:
    """The layer's fields as stored, in order (cached properties, kept after the fields, left
    out)."""
    return list(layer.__dict__.items())[:len(type(layer).model_fields)]


def _validated(layers: list, out: set[int]) -> set[int]:
    """The ids of the spec's own layers (validated when it loaded), nested ones included."""
    for layer in layers:
        out.add(id(layer))
        for v in layer.__dict__.values():
            if isinstance(v, list) and v and isinstance(v[0], LayerSpec):
                _validated(v, out)
            elif isinstance(v, LayerSpec):
                _validated([v], out)
    return out


@pytest.mark.parametrize("model", [e.name for e in zoo()])
def test_every_layer_a_block_makes_in_the_zoo_is_what_model_construct_builds(model):
    spec = load(model)
    result = evaluate(spec, memo=Memo())  # a fresh memo: the expansions are made now
    validated = _validated(spec.layers, set())
    made = [n.layer for n in nodes(result.tree)
            if n.layer is not None and id(n.layer) not in validated]
    if model in ("mobilenet-v2", "shufflenet", "skipnet-cifar", "googlenet"):
        assert len(made) > 20
    for layer in made:
        given = layer.model_fields_set
        built = type(layer).model_construct(set(given),
                                            **{n: getattr(layer, n) for n in given})
        assert _fields(layer) == _fields(built)
        assert layer.model_fields_set == built.model_fields_set
        assert layer.__pydantic_extra__ is None and layer.__pydantic_private__ is None


def test_make_sets_what_it_is_given_and_defaults_the_rest():
    conv = derived(Conv, name="pw", out=8, kernel=1)
    assert conv.model_fields_set == {"name", "out", "kernel"}
    assert (conv.out, conv.kernel, conv.stride, conv.groups) == (8, 1, 1, 1)
    assert _fields(conv) == _fields(Conv.model_construct(name="pw", out=8, kernel=1))
    assert derived(Conv, out=4).model_fields_set == {"out"}
    assert conv == Conv(name="pw", out=8, kernel=1)  # what validating the same fields makes


def test_a_mutable_default_is_a_new_object_for_each_layer():
    a, b = derived(Residual, layers=[]), derived(Residual, layers=[])
    assert a.shortcut == [] and a.shortcut is not b.shortcut


@pytest.mark.parametrize("fields, message", [
    ({"out": 8, "kernal": 3}, r"unknown fields \['kernal'\], missing fields \[\]"),
    ({"kernel": 3}, r"unknown fields \[\], missing fields \['out'\]"),
])
def test_a_field_misspelt_or_left_out_is_a_type_error(fields, message):
    with pytest.raises(TypeError, match=r"derived\(Conv\): " + message):
        derived(Conv, **fields)
