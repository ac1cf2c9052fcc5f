"""What the user chooses about a count, and what every output calls it: the counting
conventions (``Options``) and their wording in each format (``Conventions``), the metrics and
their labels, the element types MAC is reported in (``DTYPE_BYTES``), and the input size
(``parse_input``). The CLI's choices, the budgets file's ``options`` and every output's
conventions note come from here."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any, Literal

from costmodel.errors import CostModelError
from costmodel.limits import INPUT_SIDE, INT_DIGITS

Scope = Literal["paper", "fvcore"]
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8}
"""The element types MAC bytes are reported in, and their sizes in bytes."""
Dtype = Literal[tuple(DTYPE_BYTES)]  # type: ignore[valid-type]
MAX_BATCH = 1_000_000
"""The largest batch size (``--batch``, a budgets file's ``options: {batch: N}``): more than any
real batch; beyond it a batch is a typo."""

METRIC_LABELS = {"flops": "FLOPs", "params": "params", "mac": "MAC", "mac_bytes": "MAC bytes",
                 "peak_activation": "peak activation"}
"""Every metric an output reports, by its key in JSON and CSV, with its label for people.
``mac_bytes`` is MAC × the dtype's size; the others are the totals a model's count holds."""
METRICS = ("flops", "params", "mac", "peak_activation")
"""The counts of a model's totals (``Result.totals``), in the order outputs list them."""
LATENCY = "latency_ms"
"""The predicted latency's key in JSON, CSV and budgets: milliseconds, per layer and in total,
present only when a latency profile is given (``costmodel.latency``); not a count, so not one
of METRIC_LABELS."""
LATENCY_LABEL = "latency (ms)"


@dataclass(frozen=True, slots=True)
class Options:
    """How numbers are counted and reported.

    scope: ``paper`` counts multiply-adds of conv and linear layers only (the papers',
    torchvision's convention); ``fvcore`` counts what fvcore counts by default (also batch norm,
    adaptive average pooling, upsampling; eval mode).
    flops_per_madd: 1 (papers, fvcore) or 2 (PyTorch's flop counter).
    bn_params: count batch-norm γ/β in params (torch's count) or leave them out.
    dtype: element type for MAC in bytes.
    batch: images per forward pass, 1 to ``MAX_BATCH``. FLOPs, each layer's activations and
    the peak activation are N× one image's; MAC reads the weights (and batch norm's statistics)
    once and the feature maps N times: MAC_N = N·(inputs + outputs) + weights. Params do not
    change. At batch 1 every output is what it was before the option existed.
    """

    # A budgets file's ``options`` mapping is validated into Options by Pydantic (which reads
    # the field types and this config, then runs __post_init__); nothing here imports it.
    __pydantic_config__ = {"extra": "forbid"}

    scope: Scope = "paper"
    flops_per_madd: Literal[1, 2] = 1
    bn_params: bool = True
    dtype: Dtype = "float32"
    batch: int = 1

    def __post_init__(self):
        # exact types: True is not 1 FLOP per multiply-add, "no" is not a bool
        if not isinstance(self.scope, str) or self.scope not in ("paper", "fvcore"):
            raise CostModelError(f"unknown scope {self.scope!r} (paper or fvcore)", field="scope")
        if type(self.flops_per_madd) is not int or self.flops_per_madd not in (1, 2):
            raise CostModelError(f"flops per multiply-add must be 1 or 2, got "
                                 f"{self.flops_per_madd!r}", field="flops_per_madd")
        if not isinstance(self.bn_params, bool):
            raise CostModelError(f"bn_params must be True or False, got {self.bn_params!r}",
                                 field="bn_params")
        if not isinstance(self.dtype, str) or self.dtype not in DTYPE_BYTES:
            raise CostModelError(f"unknown dtype {self.dtype!r} ({', '.join(DTYPE_BYTES)})",
                                 field="dtype")

        if type(self.batch) is not int or not 1 <= self.batch <= MAX_BATCH:
            raise CostModelError(f"batch must be a whole number from 1 to {MAX_BATCH:,}, got "
                                 f"{self.batch!r}", field="batch")

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    def conventions(self) -> Conventions:
        """These conventions, worded for every output."""
        return Conventions.of(self)

    def describe(self) -> str:
        """The conventions in one line (the note under a table: ``Conventions.note``)."""
        return self.conventions().note()


@dataclass(frozen=True, slots=True)
class Convention:
    """One counting convention in the words of each output: ``record`` its fields in a JSON
    output's ``conventions`` object, ``phrase`` its part of the one-line note under a table
    (None: not in the note), ``bullet`` its item in the Markdown report's Conventions."""

    key: str
    record: dict[str, Any]
    phrase: str | None
    bullet: str


_NOTE = "{flops}, {scope}; {params}; {mac}"
"""How the phrases make the one-line note (its order is not the report's)."""


def _batch(n: int) -> Convention:
    """The batch convention: at batch 1 only the report's bullet, as before the option existed
    (every output at batch 1 is unchanged); otherwise also in JSON and in the note."""
    if n == 1:
        return Convention("batch", {}, None, "Batch size 1; input sizes are H×W.")
    return Convention(
        "batch", {"batch": n}, f"batch {n:,}: FLOPs, activations ×{n:,}, weights read once",
        f"**Batch size {n:,}**: FLOPs, every layer's activations and the peak activation are "
        f"{n:,}× one image's; MAC reads the weights (and batch norm's running statistics) once "
        f"and the feature maps {n:,} times: MAC = {n:,}·(inputs + outputs) + weights. Params "
        "do not change. Input sizes are H×W.")


@dataclass(frozen=True, slots=True)
class Conventions:
    """The counting conventions of one set of Options, as data that each format renders: the
    JSON ``conventions`` object (``record``), the note under every table and CSV (``note``;
    a Table holds this object as that note, so the report, which states the conventions once
    at the top, can leave it out), and the report's Conventions section (``bullets``)."""

    items: tuple[Convention, ...]

    @classmethod
    def of(cls, o: Options) -> Conventions:
        one = o.flops_per_madd == 1
        paper = o.scope == "paper"
        size = f"{o.dtype_bytes} byte{'s' if o.dtype_bytes > 1 else ''}"
        return cls((
            Convention(
                "flops", {"flops": "multiply-adds" if one else "2 per multiply-add",
                          "flops_per_madd": o.flops_per_madd},
                "FLOPs: " + ("1 FLOP per multiply-add" if one else
                             "2 FLOPs per multiply-add (PyTorch's convention)"),
                "**FLOPs are multiply-adds**: " + (
                    "one fused multiply-add counts 1, as in the MobileNet, ShuffleNet and EffNet "
                    "papers and fvcore" if one else
                    "one fused multiply-add counts 2 (PyTorch's flop counter)") + "."),
            Convention(
                "scope", {"scope": o.scope},
                "counting " + ("conv + linear layers" if paper else "fvcore's default ops "
                               "(conv, linear, batch norm, adaptive avg pool, upsample)"),
                "**Scope**: FLOPs count " + (
                    "conv and linear layers only (`--scope paper`, the papers' convention)"
                    if paper else "what fvcore counts by default: conv, linear, batch norm, "
                    "adaptive average pooling and upsampling (`--scope fvcore`)") + "."),
            Convention(
                "mac", {"mac": "memory access cost (elements read + written)", "dtype": o.dtype},
                f"MAC: memory access cost (elements read + written), {o.dtype}",
                "**MAC is memory access cost** as ShuffleNet V2 defines it: the elements each "
                "layer reads and writes (input feature maps + output feature map + weights); "
                f"never multiply-accumulates. MAC bytes assume **{o.dtype}** ({size} per "
                "element)."),
            Convention(
                "params", {"bn_params": o.bn_params},
                f"params {'incl.' if o.bn_params else 'excl.'} BN affine",
                "**Params** are trainable parameters, batch-norm γ/β " + (
                    "included (torch's count)" if o.bn_params else
                    "excluded (`--no-bn-params`)") + "."),
            Convention("peak_activation", {}, None, "**Peak activation** is the largest output "
                       "feature map of any layer, in elements."),
            _batch(o.batch),
        ))

    def record(self) -> dict[str, Any]:
        """The ``conventions`` object of every JSON output."""
        return {k: v for c in self.items for k, v in c.record.items()}

    def note(self) -> str:
        """The conventions in one line, under every table and in every CSV (the batch at the
        end, only when it is not 1)."""
        phrases = {c.key: c.phrase for c in self.items if c.phrase is not None}
        note = _NOTE.format(**phrases)
        return note if "batch" not in phrases else f"{note}; {phrases['batch']}"

    def bullets(self) -> list[str]:
        """The Markdown report's Conventions section, one item each."""
        return [c.bullet for c in self.items]

    def __str__(self) -> str:  # a Table renders each of its notes as str(note)
        return self.note()


_INPUT_TEXT = re.compile(r"\s*([0-9]+)\s*(?:[x×]\s*([0-9]+)\s*)?", re.IGNORECASE)
"""``32`` or ``224x160``: ASCII digits only (``int()`` would also take ``1_000``, ``٣`` and
surrounding signs)."""


def parse_input(value: str | int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``32`` or ``"32"`` → (32, 32); ``"224x160"``, ``(224, 160)`` or ``[224, 160]`` → (224, 160)
    as H×W. Sides are whole numbers (never a bool, never a float, even 224.0: nothing is
    truncated) from 1 to ``costmodel.limits.INPUT_SIDE``; anything else is a CostModelError
    (a LimitError over the limit) naming the field ``input``."""
    if isinstance(value, str):
        m = _INPUT_TEXT.fullmatch(value)
        if m is None:
            raise CostModelError(f"input size {value!r} is not N or HxW (e.g. 32 or 224x160)",
                                 field="input")
        sides = [g for g in m.groups() if g is not None]
        for digits in sides:  # before int(): a 10,000-digit side is refused, not converted
            INT_DIGITS.check(len(digits.lstrip("0")), field="input")
        sides = [int(g) for g in sides]
    elif isinstance(value, (tuple, list)):
        sides = list(value)
    else:
        sides = [value]
    if len(sides) == 1:
        sides *= 2
    if len(sides) != 2:
        raise CostModelError(f"input size {value!r} must be one or two sizes (N or HxW)",
                             field="input")
    hw = []
    for side in sides:
        try:
            if isinstance(side, bool):
                raise TypeError
            side = operator.index(side)  # int or int-like (numpy); a float raises
        except TypeError:
            raise CostModelError(f"input size {value!r} must be whole numbers, got {side!r}",
                                 field="input") from None
        if side < 1:
            raise CostModelError(f"input size {value!r} must be one or two positive integers",
                                 field="input")
        INPUT_SIDE.check(side, field="input")
        hw.append(side)
    return hw[0], hw[1]
