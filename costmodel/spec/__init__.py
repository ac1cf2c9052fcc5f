"""Specs: the Pydantic model of a network, loading from YAML/JSON, and the zoo."""

from costmodel.spec.loader import load_spec
from costmodel.spec.model import ModelSpec, Variant
from costmodel.spec.zoo import resolve, zoo

__all__ = ["ModelSpec", "Variant", "load_spec", "resolve", "zoo"]
