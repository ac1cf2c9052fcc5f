"""Import a PyTorch module into a spec: ``import_module(module, input_hw)`` → a spec document
(the mapping a spec YAML file holds), ``to_yaml(doc)`` → readable YAML.

Only this package imports torch (``to_yaml`` does not): the analytic path never reaches it.

Design
------
*Tracing: torch.fx, not torch.export.* fx traces symbolically at the Python level: every call
of a submodule stays one ``call_module`` node named by the module's qualified name, so layer
names come straight from the module hierarchy, and a custom Tracer stops at exactly the torch
classes costmodel can read (``TORCH_READERS`` in ``costmodel.crosscheck.builder``: the same
table that builds the torch module of each layer, read the other way). It needs no
decomposition and no compilation. torch.export works on torch 2.13 here, but produces an
aten-level graph: convolutions, batch norms and linear layers are aten ops whose modules
survive only as metadata (``nn_module_stack``), so each layer's settings would be read back
from aten arguments instead of from the module, and the graph is functionalized (in-place
adds and views rewritten). Measured on a small ResNet (Bottleneck [3, 4], 64×64): export
3.9 s cold / 0.68 s warm, the fx trace 0.03 s / 0.016 s. fx
cannot trace data-dependent control flow; such a model is refused with fx's own message.
``torch.fx.passes.shape_prop.ShapeProp`` then runs the traced graph once at the input size,
which gives every value its shape (the readers need their input's) and checks the trace.

*Structure.* The traced graph becomes a DAG of layers, merges and splits
(``costmodel.capture.graph``, function calls by ``costmodel.capture.ops.FUNCTIONS``), then
nested layers (``costmodel.capture.structure``): chains are sequences; a fork that re-joins
is a ``residual`` or ``parallel`` (concat / add / multiply, ``split`` from chunk/split);
anything that is not a nest of branches is a ``graph`` node. Layers are grouped by the module
they run in, so names read as the module's own (``features.3.conv.0``), and a sequential of
equal copies named 0…n−1 becomes a ``repeat``.

*Channels-last values.* After ``x.permute(0, 2, 3, 1)`` (or torchvision's ``Permute``) a
value is N×H×W×C while its spec shape stays C×H×W: nn.Linear and nn.LayerNorm on it become
``linear``/``layer_norm`` with ``channels_last: true``, element-wise ops pass, anything else
is refused until the permute back. A multiply by a C×1×1 parameter is a ``layer_scale``.

*Training-only modules.* Modules whose parameters the eval trace never uses (GoogLeNet's and
Inception v3's aux classifiers run only ``if self.training``) are found after the trace; a
second fx trace in training mode shows the value each taps, and the module is imported on its
own at that value's shape into an ``aux`` layer placed there (``costmodel.capture.aux``), so
the params equal ``sum(p.numel())`` while the inference FLOPs stay fvcore's. A module not
called in training either is listed in the spec's notes.

*Exactness.* Each spec layer evaluates to fvcore's count of its module (the readers map only
what the layer types count exactly); an op with no spec layer is an error naming it and its
module path, or with ``unknown="allow"`` a ``type: unknown`` layer of unknown cost that
``Result.unknown`` lists — never a silent 0.
"""

from __future__ import annotations

from typing import Any

from costmodel.capture.yaml_out import to_yaml


def __getattr__(name: str) -> Any:
    if name == "import_module":  # torch is imported here, on first use
        from costmodel.capture.importer import import_module

        return import_module
    raise AttributeError(name)


__all__ = ["import_module", "to_yaml"]
