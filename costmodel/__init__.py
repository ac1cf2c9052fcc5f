"""costmodel: what a CNN costs — FLOPs (multiply-adds), parameters, memory access cost and
activations — computed analytically from a declarative spec.

The library API is in ``costmodel.api`` (load, evaluate_model, compare, compare_frame); this
module imports nothing heavy so that the CLI starts fast.
"""

__version__ = "0.1.0"

DISTRIBUTION = "cnn-costmodel"
"""The name pip installs costmodel by (``pip install "cnn-costmodel[torch]"``): the import name
and the command are ``costmodel``, but ``costmodel`` on the public package index is an
unrelated project. pyproject.toml's ``name``; install hints are built from this."""
