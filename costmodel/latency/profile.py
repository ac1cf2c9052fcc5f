"""A latency profile: what ``costmodel calibrate`` measured on one machine, as data.

```yaml
version: 2
machine: {host: build-01, cpu: "Intel(R) Xeon(R) …", platform: Linux-6.1-x86_64}
torch: 2.13.0+cpu
device: cpu
threads: 1
dtype: float32
batch: 1
combine: sum                  # t = overhead + work/F + bytes/B + large/L (max: max(work/F, bytes/B))
large_tensor_bytes: 8388608   # a tensor this large is "large" (paged in fresh, or from memory)
classes:                      # per operator class (CLASSES; costmodel.latency.roofline)
  conv:      {overhead_us: 14.2, gmadds_per_s: 21.5, gbytes_per_s: 9.1, large_gbytes_per_s: 2.5}
  depthwise: {overhead_us: 9.8,  gmadds_per_s: 1.9,  gbytes_per_s: 4.4}
  view:      {overhead_us: 1.1}  # a rate left out: that term costs nothing
fit: {method: context, networks: 48, dispatch_us: 6.1, …}  # optional: how it was fitted
```

A profile is read with the project's one strict reader (``costmodel.documents``) and validated
strictly (Pydantic, no coercion); every problem is a ProfileError naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from costmodel.errors import CostModelError
from costmodel.options import DTYPE_BYTES, MAX_BATCH

VERSION = 2
"""Version 2 (this one): windowed pooling's work, the large-tensor term, piecewise-linear
activations (hswish, hsigmoid, prelu) in the ``relu`` class. Version 1 profiles are refused:
their rates were fitted to other classes (calibrate again, ~1 minute)."""
CLASSES = ("conv", "conv1x1", "grouped_conv", "depthwise", "deconv", "linear", "bn", "norm",
           "relu", "activation", "pool", "global_pool", "merge", "data_movement", "view",
           "container")
"""The operator classes a profile times (see ``costmodel.latency.roofline.op_class``), and
``container``: the call of a block's module (an nn.Sequential) around its layers."""

Dtype = Literal[tuple(DTYPE_BYTES)]  # type: ignore[valid-type]
OpClass = Literal[CLASSES]  # type: ignore[valid-type]


class ProfileError(CostModelError):
    """A latency profile is unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ClassFit(_Strict):
    """One operator class: per-layer overhead (µs), attainable multiply-adds (or window
    reads) per second (G), bytes per second (G), and the rate (G bytes/s) at which a large
    output's pages cost on top. A rate left out (None) contributes nothing."""

    overhead_us: float = Field(ge=0, allow_inf_nan=False)
    gmadds_per_s: Optional[float] = Field(default=None, gt=0, allow_inf_nan=False)
    gbytes_per_s: Optional[float] = Field(default=None, gt=0, allow_inf_nan=False)
    large_gbytes_per_s: Optional[float] = Field(default=None, gt=0, allow_inf_nan=False)
    points: Optional[int] = Field(default=None, ge=0)
    median_error: Optional[float] = Field(default=None, ge=0, allow_inf_nan=False)


class Profile(_Strict):
    version: Literal[2]
    machine: dict[str, str] = Field(min_length=1)
    torch: str = Field(min_length=1)
    device: Literal["cpu", "cuda"]
    threads: int = Field(ge=1, le=4096)
    dtype: Dtype = "float32"
    batch: int = Field(default=1, ge=1, le=MAX_BATCH)
    combine: Literal["max", "sum"] = "max"
    large_tensor_bytes: Optional[int] = Field(default=None, ge=1)
    """Output tensors of at least this many bytes pay the classes' large-tensor term."""
    classes: dict[OpClass, ClassFit] = Field(min_length=1)
    fit: dict[str, Any] = {}

    def describe(self) -> str:
        """One line for the note under a table."""
        where = self.machine.get("cpu") or self.machine.get("host") or "?"
        return (f"latency: predicted from a profile ({self.device}, {self.threads} thread"
                f"{'s' if self.threads > 1 else ''}, batch {self.batch}, torch {self.torch}, "
                f"{where})")


def _where(loc: tuple) -> str:
    return ".".join(str(k) for k in loc if k != "[key]") or "(top level)"


def _problem(err: dict) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing"
    if err["loc"][-1:] == ("[key]",):
        return f"unknown operator class (classes are {', '.join(CLASSES)})"
    return err["msg"].removeprefix("Value error, ")


def validate_profile(data: Any, file: str = "<profile>") -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(f"a latency profile is a mapping with 'version: {VERSION}' and "
                           "'classes' (write one with costmodel calibrate)", file=file)
    if data.get("version") != VERSION:
        raise ProfileError(f"version: this costmodel reads profile version {VERSION}, got "
                           f"{data.get('version')!r} (make a new one: costmodel calibrate)",
                           file=file)
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        problems = [f"{_where(err['loc'])}: {_problem(err)}" for err in e.errors()]
        raise ProfileError("; ".join(problems), file=file) from None


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file (YAML, or JSON by its name)."""
    from costmodel import documents

    return validate_profile(documents.read(Path(path), ProfileError, "latency profile"),
                            str(path))


def dump_profile(profile: Profile) -> str:
    """The profile as YAML text (the order of its fields)."""
    import yaml

    data = profile.model_dump(exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
