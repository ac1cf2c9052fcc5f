"""EffNet's method as a tool: replace every standard k×k convolution stage of a baseline with
an efficient block, keeping output channels and downsampling.

A *conv stage* is a dense k×k convolution (k > 1, one group, no dilation), the batch norms and
activations right after it, and an optional max/avg pool right after those, inside any layer
list of the spec (the model's, a ``stage``'s, a ``sequential``'s or a ``repeat``'s; branches of
``parallel``/``residual`` nodes are left alone). Its downsampling is the conv's stride times
the pool's stride. Each block replaces it the way the EffNet paper's comparison does
(``specs/effnet*.yaml``):

- ``mobilenet``: MobileNet's depthwise-separable block (``dwsep``) with the conv's kernel and
  stride; the stage's pool is kept (EffNet found pooling better than strided depthwise convs).
- ``shufflenet``: one ShuffleNet V1 unit with ``groups`` groups (4, as in the paper's
  comparison): stride 2 where the stage halves the map (conv + pool become one unit), stride 1
  where it keeps it (a stride-1 unit adds its input, so the width must not change).
- ``effnet``: one ``effnet_block``, which halves H and W itself, so the stage must downsample
  by exactly 2 (conv + 2×2 pool, or a stride-2 conv).

MobileNet and ShuffleNet keep the network's first conv stage ("Both MobileNet and ShuffleNet
avoided replacing the first layer", EffNet §3); EffNet replaces it too. ``replace_first``
overrides either default.

The new spec is plain data that ``costmodel.spec.load_spec`` reads back; ``swap_blocks``
validates and evaluates it before returning, so a swap that cannot work fails here, naming
the layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from costmodel.errors import CostModelError
from costmodel.engine import Result, evaluate
from costmodel.options import Options
from costmodel.layers import LayerSpec
from costmodel.layers.conv import Conv
from costmodel.layers.effnet import EffNetBlock
from costmodel.layers.elementwise import Activation
from costmodel.layers.mobilenet import DepthwiseSeparable
from costmodel.layers.norm import BatchNorm
from costmodel.layers.pool import Pool
from costmodel.layers.shufflenet import ShuffleUnit
from costmodel.layers.structure import Repeat, Sequential
from costmodel.shape import pair
from costmodel.spec.loader import validate_spec
from costmodel.spec.model import ModelSpec

BlockKind = Literal["effnet", "mobilenet", "shufflenet"]
BLOCKS: tuple[str, ...] = ("effnet", "mobilenet", "shufflenet")
REPLACES_FIRST = {"effnet": True, "mobilenet": False, "shufflenet": False}
"""Whether each block replaces the network's first conv stage by default."""


@dataclass(frozen=True)
class ConvStage:
    """A conv (+ batch norm / activations) (+ pool) run found in a layer list."""

    prefix: str            # path of the list that holds it ('' for the model's layers)
    start: int             # index of the conv in that list
    conv: Conv
    post: tuple[LayerSpec, ...]
    pool: Pool | None

    @property
    def length(self) -> int:
        return 1 + len(self.post) + (self.pool is not None)

    @property
    def kernel(self) -> int:
        return pair(self.conv.kernel)[0]

    @property
    def downsampling(self) -> tuple[int, int]:
        """Per-axis downsampling of conv stride × pool stride."""
        cs = pair(self.conv.stride)
        ps = (1, 1)
        if self.pool is not None:
            ps = pair(self.pool.kernel if self.pool.stride is None else self.pool.stride)
        return (cs[0] * ps[0], cs[1] * ps[1])

    def paths(self, layers: list[LayerSpec]) -> list[str]:
        return [_path(self.prefix, layers[i], i)
                for i in range(self.start, self.start + self.length)]

    def describe(self) -> str:
        k = self.kernel
        s = pair(self.conv.stride)[0]
        text = f"conv {k}×{k}{f'/{s}' if s > 1 else ''} → {self.conv.out}"
        if self.pool is not None:
            kh, kw = pair(self.pool.kernel)
            text += f" + {self.pool.type} {kh}×{kw}"
        return text


@dataclass(frozen=True)
class Replacement:
    """One conv stage and what took its place: the layer paths before and after (for
    comparing their costs) and a few words on each."""

    where: str
    before: str
    after: str
    before_paths: tuple[str, ...]
    after_paths: tuple[str, ...]
    replaced: bool
    reason: str = ""


@dataclass
class SwapResult:
    baseline: ModelSpec
    block: str
    spec: ModelSpec
    document: dict[str, Any]
    replacements: list[Replacement] = field(default_factory=list)

    @property
    def yaml(self) -> str:
        return to_yaml(self.document)


def _path(prefix: str, layer: LayerSpec, index: int) -> str:
    name = layer.name or str(index)
    return f"{prefix}.{name}" if prefix else name


def _is_standard_conv(layer: LayerSpec) -> bool:
    if not isinstance(layer, Conv) or layer.groups != 1 or pair(layer.dilation) != (1, 1):
        return False
    kh, kw = pair(layer.kernel)
    return kh == kw and kh > 1


def find_conv_stages(layers: list[LayerSpec], prefix: str = "") -> list[ConvStage]:
    """Conv stages in ``layers`` (this list only), in order."""
    found = []
    i = 0
    while i < len(layers):
        if not _is_standard_conv(layers[i]):
            i += 1
            continue
        j = i + 1
        while j < len(layers) and isinstance(layers[j], (BatchNorm, Activation)):
            j += 1
        pool = layers[j] if j < len(layers) and isinstance(layers[j], Pool) else None
        found.append(ConvStage(prefix, i, layers[i], tuple(layers[i + 1:j]), pool))
        i = j + (pool is not None)
    return found


def _new_block(stage: ConvStage, block: str, groups: int, name: str | None,
               where: str) -> list[LayerSpec]:
    """The layers that take a conv stage's place."""
    conv = stage.conv
    k = stage.kernel
    ds = stage.downsampling
    if ds[0] != ds[1]:
        raise CostModelError(f"the conv stage downsamples H and W differently {ds}; "
                             f"the {block} block cannot reproduce that", path=where)
    d = ds[0]
    if block == "mobilenet":
        fields: dict[str, Any] = {"out": conv.out}
        if k != 3:
            fields["kernel"] = k
        s = pair(conv.stride)[0]
        if s != 1:
            fields["stride"] = s
        new: list[LayerSpec] = [DepthwiseSeparable(name=name, type="dwsep", **fields)]
        return new + ([stage.pool] if stage.pool is not None else [])
    if block == "shufflenet":
        if d not in (1, 2):
            raise CostModelError(f"the conv stage downsamples by {d}; a ShuffleNet unit "
                                 "has stride 1 or 2", path=where)
        fields = {"out": conv.out, "groups": groups}
        if k != 3:
            fields["kernel"] = k
        if d == 2:
            fields["stride"] = 2
        return [ShuffleUnit(name=name, type="shufflenet_unit", **fields)]
    if d != 2:
        raise CostModelError(f"an effnet_block halves H and W, but this conv stage "
                             f"downsamples by {d}" + (" (it keeps the map size)" if d == 1
                                                      else ""), path=where)
    return [EffNetBlock(name=name, type="effnet_block", out=conv.out)]


def _block_name(stage: ConvStage, n_layers: int, taken: set[str]) -> str | None:
    """'block' where the conv stage is the whole of its list (a stage of its own, as in the
    zoo's effnet specs), else the conv's own name, so that paths stay recognisable."""
    if stage.prefix and stage.length == n_layers and "block" not in taken:
        return "block"
    return stage.conv.name


class _Swapper:
    def __init__(self, block: str, groups: int, replace_first: bool):
        self.block = block
        self.groups = groups
        self.replace_first = replace_first
        self.seen_first = False
        self.replacements: list[Replacement] = []

    def layers(self, layers: list[LayerSpec], prefix: str) -> list[LayerSpec]:
        stages = {s.start: s for s in find_conv_stages(layers, prefix)}
        out: list[LayerSpec] = []
        i = 0
        while i < len(layers):
            stage = stages.get(i)
            if stage is None:
                out.append(self.inner(layers[i], _path(prefix, layers[i], i)))
                i += 1
                continue
            # a stage of its own is named after the stage, else after its conv
            where = prefix if prefix and stage.length == len(layers) \
                else _path(prefix, layers[i], i)
            first = not self.seen_first
            self.seen_first = True
            before_paths = tuple(stage.paths(layers))
            if first and not self.replace_first:
                out.extend(layers[i:i + stage.length])
                self.replacements.append(Replacement(
                    where, stage.describe(), stage.describe(), before_paths, before_paths,
                    False, f"first conv stage kept, as {self.block} does"))
            else:
                taken = {lay.name for lay in layers if lay.name}
                name = _block_name(stage, len(layers), taken - {stage.conv.name})
                new = _new_block(stage, self.block, self.groups, name, where)
                at = len(out)
                out.extend(new)
                after_paths = tuple(_path(prefix, lay, at + k) for k, lay in enumerate(new))
                reason = "" if stage.conv.channel_scaling == "scale" else (
                    f"the conv's channel_scaling: {stage.conv.channel_scaling} is not carried "
                    "over; the block's width follows the width multiplier")
                self.replacements.append(Replacement(
                    where, stage.describe(), " + ".join(_describe_new(lay) for lay in new),
                    before_paths, after_paths, True, reason))
            i += stage.length
        return out

    def inner(self, layer: LayerSpec, path: str) -> LayerSpec:
        """Layers that hold a layer list: their lists are swapped too."""
        if isinstance(layer, (Sequential, Repeat)):
            # a repeat's copies are named 0..n-1; a conv stage inside is found on the template
            inner_prefix = path if not isinstance(layer, Repeat) else f"{path}.0"
            new = self.layers(list(layer.layers), inner_prefix)
            if new != list(layer.layers):
                return layer.model_copy(update={"layers": new})
        return layer


def _describe_new(layer: LayerSpec) -> str:
    if isinstance(layer, Pool):
        kh, kw = pair(layer.kernel)
        return f"{layer.type} {kh}×{kw}"
    stride = getattr(layer, "stride", 1)
    return f"{layer.type}{f'/{stride}' if stride != 1 else ''} → {getattr(layer, 'out', '')}"


# --- plain data and YAML -------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A field's value as YAML-ready data (layers as layer documents)."""
    if isinstance(value, LayerSpec):
        return layer_document(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, BaseModel):  # settings objects (e.g. an SE block's)
        return value.model_dump(mode="json", exclude_unset=True)
    return to_jsonable_python(value)


def layer_document(layer: LayerSpec) -> dict[str, Any]:
    """A layer as spec data: name and type first, then the fields the spec set."""
    doc: dict[str, Any] = {}
    if layer.name is not None:
        doc["name"] = layer.name
    doc["type"] = layer.type  # type: ignore[attr-defined]
    for key in type(layer).model_fields:
        if key in ("name", "type") or key not in layer.model_fields_set:
            continue
        doc[key] = _plain(getattr(layer, key))
    return doc


def spec_document(spec: ModelSpec, layers: list[LayerSpec], *, name: str, description: str,
                  notes: list[str]) -> dict[str, Any]:
    """The header of ``spec`` (values already resolved: no variants, no ``$vars``) with
    ``layers``."""
    doc: dict[str, Any] = {"name": name, "description": description}
    if spec.family:
        doc["family"] = spec.family
    if spec.source:
        doc["source"] = spec.source
    doc["notes"] = notes
    doc["input"] = spec.input if isinstance(spec.input, int) else list(spec.input)
    if spec.in_channels != 3:
        doc["in_channels"] = spec.in_channels
    doc["num_classes"] = spec.num_classes
    if spec.width != 1.0:
        doc["width"] = spec.width
    if "rounding" in spec.model_fields_set:
        r = spec.rounding
        doc["rounding"] = {"rule": r.rule, "divisor": r.divisor, "min": r.min}
    doc["layers"] = [layer_document(lay) for lay in layers]
    return doc


class _Notes(list):
    """A list of sentences, written one per line."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Notes, lambda d, v: d.represent_sequence(
    "tag:yaml.org,2002:seq", v, flow_style=False))


def to_yaml(document: dict[str, Any]) -> str:
    """Block style for the structure, one line per leaf layer (the zoo's style)."""
    doc = {k: _Notes(v) if k == "notes" else v for k, v in document.items()}
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=None, width=100)


# --- the swap ---------------------------------------------------------------------------------

def swap_blocks(spec: ModelSpec, block: str, *, replace_first: bool | None = None,
                groups: int = 4, name: str | None = None) -> SwapResult:
    """Replace every standard k×k conv stage of ``spec`` with ``block`` (see the module
    docstring). Raises CostModelError, naming the layer, where a stage cannot be replaced or
    the new spec does not fit together."""
    if block not in BLOCKS:
        raise CostModelError(f"unknown block '{block}' ({', '.join(BLOCKS)})", field="block")
    if groups < 1:
        raise CostModelError("groups must be positive", field="groups")
    first = REPLACES_FIRST[block] if replace_first is None else replace_first
    swapper = _Swapper(block, groups, first)
    try:
        layers = swapper.layers(list(spec.layers), "")
    except CostModelError as e:
        e.file = e.file or spec.file
        raise
    done = [r for r in swapper.replacements if r.replaced]
    if not done:
        kept = " (the only one is the first, which is kept; use replace_first)" \
            if swapper.replacements else ""
        raise CostModelError(f"{spec.name} has no standard k×k conv stage to replace{kept}",
                             file=spec.file)
    new_name = name or f"{spec.name}-{block}"
    notes = [f"Made by `costmodel swap {spec.name} --block {block}`: every standard k×k conv "
             f"stage of {spec.name} (conv + batch norm/activation + pool) replaced by the "
             f"{block} block, keeping output channels and downsampling."]
    notes += [f"{r.where}: {r.before} → {r.after}" + (f" ({r.reason})" if r.reason else "")
              if r.replaced else f"{r.where}: {r.before} kept ({r.reason})"
              for r in swapper.replacements]
    doc = spec_document(spec, layers, name=new_name,
                        description=f"{spec.name} with its conv stages replaced by the "
                                    f"{block} block", notes=notes)
    # the document is what gets written: validate and evaluate exactly that
    data = yaml.safe_load(to_yaml(doc))
    where = f"the swapped spec {new_name}"
    new_spec = validate_spec(data, where)
    try:  # shapes fit (e.g. group counts divide the channels a unit sees)
        evaluate(new_spec)
    except CostModelError as e:
        e.file = where
        raise
    return SwapResult(spec, block, new_spec, doc, swapper.replacements)


# --- comparison ------------------------------------------------------------------------------

def _flops_under(result: Result, paths: tuple[str, ...]) -> int:
    return sum(r.flops for r in result.rows
               if any(r.path == p or r.path.startswith(p + ".") for p in paths))


def replacement_records(swapped: SwapResult, base: Result, new: Result) -> list[dict[str, Any]]:
    """Per conv stage: what it was, what replaced it, and the FLOPs of each."""
    out = []
    for r in swapped.replacements:
        before = _flops_under(base, r.before_paths)
        after = _flops_under(new, r.after_paths)
        out.append({"where": r.where, "before": r.before,
                    "after": r.after if r.replaced else f"kept ({r.reason})",
                    "replaced": r.replaced, "flops_before": before, "flops_after": after,
                    "flops_rel": after / before if before else None})
    return out


def replacement_table(swapped: SwapResult, base: Result, new: Result):
    from costmodel.render import Column, Table

    cols = [Column("where", "stage"), Column("before", swapped.baseline.name),
            Column("flops_before", "FLOPs", "si"), Column("after", swapped.spec.name),
            Column("flops_after", "FLOPs", "si"), Column("flops_rel", "rel.", "ratio")]
    return Table(f"Conv stages of {swapped.baseline.name} swapped for the {swapped.block} "
                 f"block", cols, replacement_records(swapped, base, new),
                 notes=[base.options.conventions()])


def evaluate_swap(swapped: SwapResult, *, input=None, options: Options = Options()
                  ) -> tuple[Result, Result]:
    """The baseline and the swapped spec evaluated with the same settings."""
    return (evaluate(swapped.baseline, input=input, options=options),
            evaluate(swapped.spec, input=input, options=options))
