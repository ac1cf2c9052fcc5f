"""An evaluated spec as a real ``torch.nn.Module``.

The module mirrors the evaluation tree (``Result.tree``): a ``Seq`` becomes an
``nn.Sequential``, a ``Branch`` a :class:`BranchModule`, a ``Dag`` (a graph) a
:class:`GraphModule`, an aux block an :class:`AuxModule`, a primitive row the torch module that
``@torch_module`` registered for its class (in ``classic_cnn``, ``modern_cnn`` and
``attention``, beside each module's ``@reads``, the importer's way back). Every module is
named by the last segment of its layer path, so ``dict(model.named_modules())`` is keyed by
the spec's layer paths. A branch's split
and merge are functional ops inside its BranchModule (their rows, ``<branch>.split`` and
``<branch>.<merge>``, belong to the branch's module); so are a graph's merges in its
GraphModule (rows ``<graph>.<node>.<merge>``; the node's layers are the submodule
``<graph>.<node>``). An aux block's modules are registered but run only in training mode.

A layer whose weights other layers share (SkipNet's recurrent gate controller, a shared LSTM
cell) runs an inner module, ``<layer>.rnn``: the layer that owns the weights registers it, so
its parameters count there; the others borrow it unregistered (see :class:`SharedWeights`).
Such inner modules are part of their layer, not layers of their own.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Callable, Hashable

import torch
from torch import nn

from costmodel.errors import CostModelError
from costmodel.engine import Branch, Dag, Node, Result, Row, Seq, name_of
from costmodel.layers import Primitive
from costmodel.layers.aux import Aux
from costmodel.layers.merge import channel_split
from costmodel.layers.traits import tags
from costmodel.shape import Shape, pair


MERGES: dict[str, Callable[[list[torch.Tensor]], torch.Tensor]] = {
    "concat": lambda xs: torch.cat(xs, dim=1),
    "add": lambda xs: functools.reduce(torch.add, xs),
    # broadcasts C×1×1 gates (SE) and 1×1×1 gates over a whole map (SkipNet's decision)
    "multiply": lambda xs: functools.reduce(torch.mul, xs),
    # ESPNet's hierarchical feature fusion: the running sums b1, b1+b2, … concatenated
    "hff": lambda xs: torch.cat(list(itertools.accumulate(xs, torch.add)), dim=1),
}


class BranchModule(nn.Module):
    """Branches on the input (or on the parts of a channel split), joined by a merge."""

    def __init__(self, merge: str, split: list[int] | None):
        super().__init__()  # the branches are added as submodules, in order
        self.merge = merge
        self.split = split

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = list(self.children())
        parts = torch.split(x, self.split, dim=1) if self.split else [x] * len(branches)
        # parts indexed, not iterated: torch.fx (the importer) can trace indexing
        return MERGES[self.merge]([b(parts[i]) for i, b in enumerate(branches)])

    def extra_repr(self) -> str:
        return f"merge={self.merge}" + (f", split={self.split}" if self.split else "")


class GraphModule(nn.Module):
    """A graph's nodes run in order over a dict of tensors by node name (``input``: the
    module's input): each node's inputs merged (a functional op here, when more than one),
    then the node's layers (its submodule, named by the node). Returns the last node's."""

    def __init__(self, wiring: list[tuple[str, tuple[str, ...], str | None]]):
        super().__init__()  # the nodes' layers are added as submodules, by node name
        self.wiring = wiring

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = {"input": x}
        for name, inputs, merge in self.wiring:
            xs = [outputs[i] for i in inputs]
            outputs[name] = self._modules[name](xs[0] if merge is None else MERGES[merge](xs))
        return outputs[name]

    def extra_repr(self) -> str:
        return "; ".join(f"{name} <- {merge or ''}({', '.join(inputs)})"
                         for name, inputs, merge in self.wiring)


class AuxModule(nn.Sequential):
    """A training-only branch (torchvision's auxiliary classifiers): its layers are registered
    (their parameters count) and run only in training mode, where the output is kept in
    ``aux_output``; the main path always goes on with the input unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.aux_output = super().forward(x) if self.training else None
        return x


class SharedWeights:
    """The modules with shared weights in one build, by what they are (their kind and sizes).

    A layer that owns the weights takes the current module (making it if there is none, or
    a new one if another layer already owns it) and registers it; a layer that shares them
    borrows the current module without registering it, so that torch's parameter count,
    like the analytic one, counts the weights once, on their owner. Shared weights with no
    owner (every user marked shared) are counted nowhere, as analytically."""

    def __init__(self):
        self._current: dict[Hashable, tuple[nn.Module, bool]] = {}  # key → (module, owned)
        self.made: list[nn.Module] = []

    def get(self, key: Hashable, make: Callable[[], nn.Module], own: bool) -> nn.Module:
        module, owned = self._current.get(key, (None, False))
        if module is None or (own and owned):
            module, owned = make(), False
            self.made.append(module)
        self._current[key] = (module, owned or own)
        return module


# --- one torch module per primitive class ------------------------------------------------


@dataclass(frozen=True)
class TorchLayer:
    """How a primitive class runs in torch, and under which fvcore operator its FLOPs count.

    ``build`` makes the module from the layer's row (its spec and input shape), and also
    takes the build's :class:`SharedWeights` when ``shares_weights``; ``fvcore_op`` names the
    operator fvcore's by_operator() reports its FLOPs under (None: fvcore counts the module's
    ops as nothing); ``lstm_madds`` says how many of the layer's multiply-adds (paper scope)
    run inside an LSTM kernel, which a flop counter may not see (see verify)."""

    build: Callable[..., nn.Module]
    fvcore_op: Callable[[Row], str | None] = lambda row: None
    lstm_madds: Callable[[Row], int] = lambda row: 0
    shares_weights: bool = False

    def module(self, row: Row, shared: SharedWeights) -> nn.Module:
        return self.build(row, shared) if self.shares_weights else self.build(row)


TORCH_MODULES: dict[type[Primitive], TorchLayer] = {}
"""Every primitive class → how it runs in torch (filled by ``@torch_module`` below)."""


def torch_module(*classes: type[Primitive], fvcore_op: Callable[[Row], str | None] | None = None,
                 lstm_madds: Callable[[Row], int] | None = None, shares_weights: bool = False):
    """Registers the decorated ``build(row)`` as the torch module of ``classes``."""
    def register(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        layer = TorchLayer(build, shares_weights=shares_weights,
                           **({"fvcore_op": fvcore_op} if fvcore_op else {}),
                           **({"lstm_madds": lstm_madds} if lstm_madds else {}))
        for cls in classes:
            TORCH_MODULES[cls] = layer
        return build
    return register


TORCH_READERS: dict[type[nn.Module], Callable[[nn.Module, Shape], dict]] = {}
"""Every torch module class the importer (``costmodel import``) knows → how to read one back
into a spec layer: ``read(module, x)`` returns the layer's spec fields (a mapping with its
``type``) for input shape ``x``. Filled by ``@reads`` beside each build below: one table, read
both ways."""


def reads(*modules: type[nn.Module]):
    """Registers the decorated ``read(module, x) -> spec fields`` for torch module classes
    ``modules`` (exact classes; a subclass is looked up along its MRO by the importer)."""
    def register(read: Callable[[nn.Module, Shape], dict]) -> Callable[[nn.Module, Shape], dict]:
        for cls in modules:
            TORCH_READERS[cls] = read
        return read
    return register


def _side(v: tuple[int, int]) -> int | list[int]:
    """A torch (h, w) pair as a spec value: an int where both are equal."""
    h, w = pair(v)
    return h if h == w else [h, w]


def _unread(module: nn.Module, why: str) -> CostModelError:
    return CostModelError(f"{type(module).__name__} {why}: no spec layer has it")


TORCH_READERS_BY_NAME: dict[str, Callable[[nn.Module, Shape], dict]] = {}
"""Readers of torch module classes from packages that need not be importable here
(torchvision), by ``module.qualname`` of the class (``@reads_by_name``): looked up like
TORCH_READERS (``reader_for``)."""


def reads_by_name(*qualnames: str):
    """Registers the decorated reader for the classes named ``module.qualname``."""
    def register(read: Callable[[nn.Module, Shape], dict]) -> Callable[[nn.Module, Shape], dict]:
        for name in qualnames:
            TORCH_READERS_BY_NAME[name] = read
        return read
    return register


def reader_for(module: nn.Module) -> Callable[[nn.Module, Shape], dict] | None:
    """The reader of ``module``: of its class, in TORCH_READERS or by name in
    TORCH_READERS_BY_NAME, or of a class it derives from without changing its forward (a
    subclass with its own forward, as Swin v2's attention, is not that module: the importer
    traces into it); None if there is none."""
    cls = type(module)
    by_name = TORCH_READERS_BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
    if by_name is not None:
        return by_name
    for base in cls.__mro__:
        if base in TORCH_READERS:
            return TORCH_READERS[base] if cls.forward is base.forward else None
    return None


def _op(name: str) -> Callable[[Row], str]:
    return lambda row: name


def torch_layer(row: Row) -> TorchLayer:
    """How the primitive of ``row`` runs in torch (by its class, or a class it derives from)."""
    for cls in type(row.layer).__mro__:
        if cls in TORCH_MODULES:
            return TORCH_MODULES[cls]
    known = sorted(tags(c)[0] for c in TORCH_MODULES)
    raise CostModelError(f"layer type '{row.type}' has no torch module yet (known: "
                         f"{', '.join(known)})", path=row.path)


# --- the tree ---------------------------------------------------------------------------


def _add(container: nn.Module, name: str, module: nn.Module, path: str) -> None:
    try:
        container.add_module(name, module)
    except KeyError:  # torch refuses a submodule name that is already an attribute
        raise CostModelError(f"torch cannot name a submodule '{name}' (an attribute of "
                             f"{type(container).__name__}); rename the layer",
                             path=f"{path}.{name}" if path else name, field="name") from None


def build_node(node: Node, shared: SharedWeights) -> nn.Module:
    if isinstance(node, Row):
        return torch_layer(node).module(node, shared)
    if isinstance(node, Seq):
        module = AuxModule() if isinstance(node.layer, Aux) else nn.Sequential()
        for child in node.children:
            _add(module, name_of(child.path), build_node(child, shared), node.path)
        return module
    if isinstance(node, Branch):
        split = None
        if node.split is not None:
            parts, _ = channel_split(node.split.inputs[0], node.layer.branching()[3])
            split = [p.c for p in parts]
        module = BranchModule(node.merge.type, split)
        for name, seq in zip(node.names, node.branches):
            _add(module, name, build_node(seq, shared), node.path)
        return module
    if isinstance(node, Dag):
        module = GraphModule([(name, inputs, None if merge is None else merge.type)
                              for name, inputs, merge in zip(node.names, node.inputs,
                                                             node.merges)])
        for name, seq in zip(node.names, node.seqs):
            _add(module, name, build_node(seq, shared), node.path)
        return module
    raise TypeError(f"not a node: {node!r}")  # pragma: no cover


def build(result: Result) -> nn.Module:
    """The evaluated network as an ``nn.Module`` in eval mode, its submodules named by layer
    path. Shared modules with state (recurrent controllers: a ``reset`` method) start every
    forward pass from a zero state."""
    shared = SharedWeights()
    model = build_node(result.tree, shared).eval()
    controllers = [m for m in shared.made if callable(getattr(m, "reset", None))]

    def reset(module: nn.Module, args) -> None:
        for controller in controllers:
            controller.reset()

    if controllers:
        model.register_forward_pre_hook(reset)
    return model


def example_input(result: Result, batch: int = 1) -> torch.Tensor:
    """A random input of the evaluated size: N×C×H×W."""
    h, w = result.input
    return torch.randn(batch, result.in_channels, h, w)


# The torch modules and readers of the vocabulary live in their own modules (they register on
# the tables above when imported, here, once builder is whole): the classic CNNs' (conv,
# linear, norms, activations, pooling, SkipNet's gates…), the modern CNNs' (channels-last
# layers, layer scale, mean, group norm…) and attention's.
# Modules, not names: whichever of the four is imported first, the others load whole.
from costmodel.crosscheck import classic_cnn as _classic_cnn  # noqa: E402,F401
from costmodel.crosscheck import modern_cnn as _modern_cnn  # noqa: E402,F401
from costmodel.crosscheck import attention as _attention  # noqa: E402,F401
