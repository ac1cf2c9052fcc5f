"""Cost budgets for CI: a budgets file lists models and limits on what they may cost.

```yaml
options: {scope: paper, dtype: float32}      # optional; the counting conventions
models:
  - model: mobilenet-0.5                      # zoo name, or a spec path (relative to this file)
    input: 160                                # optional; N, "HxW" or [H, W]
    limits: {flops: 150M, params: 1.4M, mac: 20M, peak_activation: 300k}
  - model: specs/my_net.yaml
    name: my-net                              # optional label
    baseline: mobilenet-0.5                   # or {model: ..., input: ...}
    limits: {flops: +5%, params: -10%}        # relative to the baseline's value
  - model: specs/my_net.yaml
    baseline: {rev: main}                     # this spec file as git revision main holds it
    limits: {flops: +0%}
profile: cpu-profile.yaml                     # optional; needed by latency_ms limits
```

A ``latency_ms`` limit (``limits: {latency_ms: 25}``, or ``+10%``) is on the latency predicted
from a latency profile (``costmodel calibrate``): the file's ``profile`` (relative to it), else
``COSTMODEL_PROFILE``; a budget with a latency limit and no profile is an error (exit 2).

Absolute limits take SI suffixes (k, M, G/B, T) and round to a whole count; relative limits
are ``+P%`` or ``-P%`` of the baseline's value, which is evaluated at the entry's input size
unless the baseline names its own. A baseline with ``rev`` is a spec file (its ``model``, else
the entry's) as that git revision holds it: "this pull request adds no FLOPs". A value passes
when it is at most its limit.

``load_budgets`` validates a file into a BudgetsFile (its ``options``, an ``Options``, and
one ``BudgetEntry`` per model; a BudgetError names the file, the entry and the field);
``check_budgets`` evaluates every entry into Findings; ``check_table`` and ``check_payload``
are its renderings. ``parse_limit`` reads one limit (``150M``, ``+5%``) into a ``Limit``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, \
    model_validator

from costmodel.engine import Result, evaluate
from costmodel.errors import CostModelError
from costmodel.options import LATENCY, LATENCY_LABEL, MAX_BATCH, METRIC_LABELS, Options, \
    parse_input
from costmodel.render import Column, Table
from costmodel.render.format import parse_si, si, signed_pct
from costmodel.spec.zoo import is_spec_path
from costmodel.targets import is_target, parse_target, resolve_model
from costmodel.views import caveats

LIMITED = (*METRIC_LABELS, LATENCY)
"""The metrics a budget may limit: every one an output reports (MAC bytes too), and the
latency predicted from a profile."""
_LABELS = {**METRIC_LABELS, LATENCY: LATENCY_LABEL}
_RELATIVE = re.compile(r"^([+-])\s*(\d+(?:\.\d*)?|\.\d+)\s*%$")


class BudgetError(CostModelError):
    """The budgets file is unreadable, invalid, or names a model that cannot be evaluated."""


@dataclass(frozen=True)
class Limit:
    """A limit as written (``150M``, ``+5%``): an absolute count, or a percentage change
    relative to a baseline."""

    text: str
    absolute: int | None = None
    percent: Fraction | None = None
    exact: float | None = field(default=None, compare=False)
    """The absolute number as written (12.5), for a limit on milliseconds, not a count."""

    @property
    def relative(self) -> bool:
        return self.percent is not None

    def bound(self, baseline: int | None) -> int:
        """The largest value that passes. A relative limit floors baseline·(1 + P/100), so
        '+5%' of 100 allows 105 and '+5%' of 99 allows 103 (103.95 would need a fraction)."""
        if self.absolute is not None:
            return self.absolute
        assert baseline is not None and self.percent is not None
        return math.floor(baseline * (1 + self.percent / 100))


def parse_limit(value: Any) -> Limit:
    """``150M`` → 150,000,000; ``2.5M``; ``300k``; ``1e6``; 150000000 → absolute counts;
    ``+5%`` / ``-10%`` → relative to the baseline."""
    if isinstance(value, Limit):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"a limit is a number like 150M or a change like +5%, got {value!r}")
    text = str(value).strip()
    relative = _RELATIVE.match(text)
    if relative:
        sign, number = relative.groups()
        if sign == "-" and Fraction(number) > 100:  # would be a negative bound: never met
            raise ValueError(f"'{text}': a count cannot fall more than 100% below its "
                             "baseline (-100% allows only 0)")
        return Limit(text, percent=Fraction(number) * (-1 if sign == "-" else 1))
    if text.endswith("%"):
        raise ValueError(f"'{text}': write a relative limit with its sign, +5% (at most 5% "
                         "above the baseline) or -5% (at least 5% below it)")
    try:
        number = parse_si(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a count with an optional SI suffix (150M, 2.5M, "
                         "300k, 1.2G) or a relative limit (+5%)") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"'{text}': a limit must be a non-negative number")
    return Limit(text, absolute=round(number), exact=number)  # float error never reaches a count


def _input(value: Any) -> Any:
    if value is None or isinstance(value, tuple):
        return value
    try:
        return parse_input(value)
    except CostModelError as e:
        raise ValueError(e.message) from None


LimitValue = Annotated[Limit, BeforeValidator(parse_limit)]
InputValue = Annotated[Union[tuple[int, int], None], BeforeValidator(_input)]
Metric = Literal[LIMITED]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class BaselineRef(_Strict):
    """What relative limits are relative to: a model, or with ``rev`` a spec file (``model``,
    else the entry's) as that git revision holds it."""

    model: str | None = Field(default=None, min_length=1)
    rev: str | None = Field(default=None, min_length=1)
    input: InputValue = None

    @model_validator(mode="after")
    def _names_something(self) -> "BaselineRef":
        if self.model is None and self.rev is None:
            raise ValueError("a baseline names a model, a git revision (rev), or both")
        return self


def _baseline(value: Any) -> Any:
    """A baseline is a model name, or a mapping {model, input}."""
    if isinstance(value, str):
        return {"model": value}
    if value is None or isinstance(value, (dict, BaselineRef)):
        return value
    raise ValueError(f"a baseline is a model name or {{model: ..., rev: ..., input: ...}}, "
                     f"got {value!r}")


class BudgetEntry(_Strict):
    """One model of a budgets file and the limits on what it may cost."""

    model: str = Field(min_length=1)
    name: str | None = None
    input: InputValue = None
    baseline: Annotated[Union[BaselineRef, None], BeforeValidator(_baseline)] = None
    limits: dict[Metric, LimitValue] = Field(min_length=1)

    @property
    def label(self) -> str:
        return self.name or self.model

    @property
    def baseline_model(self) -> str | None:
        """The baseline as the findings name it: ``model``, or ``path@rev``."""
        if self.baseline is None:
            return None
        model = self.baseline.model or self.model
        return model if self.baseline.rev is None else f"{model}@{self.baseline.rev}"


def _strict_options(value: Any) -> Any:
    """Options' fields without Pydantic's lax coercions: ``bn_params`` is true or false (not
    "yes" or 1), ``flops_per_madd`` is 1 or 2 (not true), ``batch`` a whole number from 1 to
    MAX_BATCH (not true, 2.0 or "2")."""
    if isinstance(value, dict):
        bn = value.get("bn_params", True)
        if not isinstance(bn, bool):
            raise ValueError(f"bn_params must be true or false, got {bn!r}")
        per = value.get("flops_per_madd", 1)
        if isinstance(per, bool):  # 3 or "1" fail Options' own Literal[1, 2]
            raise ValueError(f"flops_per_madd must be 1 or 2, got {per!r}")
        batch = value.get("batch", 1)
        # not true, 2.0 or "2" (Pydantic would coerce them); the range here too: Options'
        # own check raises a CostModelError, which Pydantic would not report with the field
        if type(batch) is not int or not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch must be a whole number from 1 to {MAX_BATCH:,}, "
                             f"got {batch!r}")
    return value


class BudgetsFile(_Strict):
    options: Annotated[Options, BeforeValidator(_strict_options)] = Options()
    """The counting conventions of every entry (``costmodel compare``'s options), validated
    by Pydantic from Options' own field types."""
    profile: str | None = Field(default=None, min_length=1)
    """The latency profile ``latency_ms`` limits are checked with (relative to the file)."""
    models: list[BudgetEntry] = Field(min_length=1)


def _read(file: Path) -> Any:
    from costmodel import documents

    return documents.read(file, BudgetError, "budgets file")


def _where(loc: tuple, data: Any) -> str:
    """``models[2] (mobilenet-0.5): limits.flops`` for a Pydantic error location."""
    loc = tuple(k for k in loc if k != "[key]")
    entry, rest = "", loc
    if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
        items = data.get("models")
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        label = item.get("name") or item.get("model") if isinstance(item, dict) else None
        entry = f"models[{loc[1]}]" + (f" ({label})" if isinstance(label, str) else "")
        rest = loc[2:]
    dotted = ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in rest).replace(".[", "[")
    return ": ".join(p for p in (entry, dotted) if p)


def _problem(err: dict) -> str:
    """A Pydantic error's message in the budgets file's terms."""
    kind, loc = err["type"], err["loc"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):  # a model's, Options'
        return "unknown field"
    if kind == "missing":
        return "missing"
    if kind == "dataclass_type":  # options: not a mapping
        return "Input should be a mapping of scope, flops_per_madd, bn_params, dtype and batch"
    if loc[-1:] == ("[key]",):
        return f"unknown metric (limits are on {', '.join(LIMITED)})"
    if kind == "too_short" and loc[-1:] == ("limits",):
        return "list at least one limit"
    if kind == "too_short" and loc == ("models",):
        return "list at least one model"
    return err["msg"].removeprefix("Value error, ")


def load_budgets(path: str | Path) -> BudgetsFile:
    """Read and validate a budgets file; every problem names the file and the entry."""
    file = Path(path)
    data = _read(file)
    if not isinstance(data, dict):
        raise BudgetError("a budgets file is a mapping with a 'models' list (see "
                          "examples/budgets.yaml)", file=str(file))
    try:
        budgets = BudgetsFile.model_validate(data)
    except ValidationError as e:
        problems = [f"{_where(err['loc'], data)}: {_problem(err)}" for err in e.errors()]
        raise BudgetError("; ".join(problems), file=str(file)) from None
    for i, b in enumerate(budgets.models):
        relative = [m for m, lim in b.limits.items() if lim.relative]
        if relative and b.baseline is None:
            raise BudgetError(f"models[{i}] ({b.label}): limits.{relative[0]}: the relative "
                              f"limit '{b.limits[relative[0]].text}' needs a 'baseline' model",
                              file=str(file))
        ref = b.baseline.model or b.model if b.baseline is not None else None
        if ref is not None and b.baseline.rev is not None and \
                (is_target(ref) or not is_spec_path(ref)):
            kind = "a Python target" if is_target(ref) else "a zoo name"
            raise BudgetError(f"models[{i}] ({b.label}): baseline.rev: a revision holds spec "
                              f"files; '{ref}' is {kind}", file=str(file))
    return budgets


@dataclass(frozen=True)
class Finding:
    """One limit on one model, evaluated."""

    entry: int
    label: str
    model: str
    input: tuple[int, int]
    metric: str
    value: int
    limit: int
    rule: str
    """The limit as written, with its baseline: '150M' or '+5% of mobilenet (569M)'."""
    baseline: str | None = None
    baseline_value: int | None = None

    @property
    def over(self) -> bool:
        return self.value > self.limit

    @property
    def excess(self) -> int:
        """How far over the limit (0 within it)."""
        return max(0, self.value - self.limit)

    @property
    def used(self) -> float | None:
        """value / limit (None for a zero limit)."""
        return self.value / self.limit if self.limit else None

    def record(self) -> dict[str, Any]:
        """Raw values, the ``check --format json`` contract."""
        return {"entry": self.entry, "name": self.label, "model": self.model,
                "input": list(self.input), "metric": self.metric, "value": self.value,
                "limit": self.limit, "rule": self.rule, "baseline": self.baseline,
                "baseline_value": self.baseline_value, "used": self.used,
                "excess": self.excess, "status": "over" if self.over else "ok"}

    def message(self) -> str:
        """One line for a log: model, metric, value, limit and excess."""
        h, w = self.input
        if self.metric == LATENCY:
            return (f"{self.label} ({h}×{w}): predicted {LATENCY_LABEL} {self.value:.3g} "
                    f"exceeds the limit {self.limit:.3g} ({self.rule}) by {self.excess:.3g}"
                    f"{self._excess_pct()}")
        return (f"{self.label} ({h}×{w}): {_LABELS[self.metric]} {self.value:,} "
                f"({si(self.value)}) exceeds the limit {self.limit:,} ({self.rule}) by "
                f"{self.excess:,} ({si(self.excess)}{self._excess_pct()})")

    def _excess_pct(self) -> str:
        return f", {signed_pct(self.excess / self.limit)}" if self.limit else ""


@dataclass
class CheckResult:
    file: str
    options: Options
    findings: list[Finding] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    """What a checked model's totals hold apart or leave out (``views.caveats``): a model with
    layers of unknown cost is never passed silently."""

    @property
    def over(self) -> list[Finding]:
        return [f for f in self.findings if f.over]

    @property
    def ok(self) -> bool:
        return not self.over


def _resolve_ref(model: str, base: Path) -> str:
    """Spec paths, and the files of ``file.py:Net`` targets, are relative to the budgets
    file; zoo names and ``package.module:Net`` targets stay as they are."""
    if is_target(model):
        target = parse_target(model)
        if target.is_file and not Path(target.where).expanduser().is_absolute():
            return str(base / target.where) + model[model.index(target.where) +
                                                     len(target.where):]
        return model
    if is_spec_path(model) and not Path(model).is_absolute():
        return str(base / model)
    return model


def _spec_at_revision(path: str, rev: str):
    from costmodel.analysis.diff import spec_at_revision  # git is only needed here

    return spec_at_revision(path, rev)


def _latency_profile(budgets: BudgetsFile, file: Path):
    """The profile latency_ms limits use: the file's ``profile``, else COSTMODEL_PROFILE; None
    when no entry limits latency (the latency package is not loaded then)."""
    if not any(LATENCY in b.limits for b in budgets.models):
        return None
    import os

    path = budgets.profile and _resolve_ref(budgets.profile, file.parent)
    path = path or os.environ.get("COSTMODEL_PROFILE") or None
    if path is None:
        raise BudgetError(f"a {LATENCY} limit needs a latency profile: 'profile: FILE' in the "
                          "budgets file or COSTMODEL_PROFILE (write one with costmodel "
                          "calibrate)", file=str(file), field="profile")
    from costmodel.latency import latency_ms, load_profile

    profile = load_profile(path)
    return lambda result: latency_ms(result, profile)[1]


def _metric(result: Result, metric: str, latency=None) -> int | float:
    if metric == LATENCY:
        return latency(result)
    t = result.totals
    return t.mac * result.options.dtype_bytes if metric == "mac_bytes" else getattr(t, metric)


def check_budgets(budgets: BudgetsFile, file: str | Path) -> CheckResult:
    """Evaluate every entry of a loaded budgets file (spec paths relative to ``file``)."""
    file = Path(file)
    options = budgets.options
    cache: dict[tuple[str, tuple[int, int] | None, str | None], Result] = {}

    def result_of(i: int, label: str, model: str, size, rev: str | None = None) -> Result:
        key = (_resolve_ref(model, file.parent), size, rev)
        if key not in cache:
            try:
                spec = resolve_model(key[0], size) if rev is None else \
                    _spec_at_revision(key[0], rev)
                cache[key] = evaluate(spec, input=size, options=options)
            except CostModelError as e:
                raise BudgetError(f"models[{i}] ({label}): {e}", file=str(file)) from None
        return cache[key]

    latency = _latency_profile(budgets, file)
    result = CheckResult(str(file), options)
    for i, b in enumerate(budgets.models):
        r = result_of(i, b.label, b.model, b.input)
        result.caveats.extend(c for c in caveats(r, named=True) if c not in result.caveats)
        base_ref = b.baseline
        base = None
        if base_ref is not None:
            base = result_of(i, b.label, base_ref.model or b.model, base_ref.input or r.input,
                             base_ref.rev)
        for metric, lim in b.limits.items():
            base_value = _metric(base, metric, latency) if base is not None else None
            if metric == LATENCY:  # milliseconds, not a count: no rounding to whole numbers
                bound = lim.exact if not lim.relative else \
                    base_value * float(1 + lim.percent / 100)
                shown = f"{base_value:.3g} ms" if base_value is not None else ""
            else:
                bound = lim.bound(base_value)
                shown = si(base_value)
            rule = lim.text if not lim.relative else \
                f"{lim.text} of {b.baseline_model} ({shown})"
            result.findings.append(Finding(
                i, b.label, b.model, r.input, metric, _metric(r, metric, latency), bound, rule,
                b.baseline_model if base_ref and lim.relative else None,
                base_value if lim.relative else None))
    return result


def check_table(result: CheckResult) -> Table:
    """One row per limit. Keys are the raw fields (CSV's columns): metric names as in the
    budgets file, integers for value, limit and excess."""
    cols = [Column("name", "model"), Column("input", "input", drop=3), Column("metric", "metric"),
            Column("value", "value", "si"), Column("limit", "limit", "si"),
            Column("rule", "rule", drop=2), Column("used", "used", "pct", drop=1),
            Column("excess", "over by", "excess"), Column("status", "status")]
    rows = [{**f.record(), "input": f"{f.input[0]}×{f.input[1]}"} for f in result.findings]
    n, k = len(result.findings), len(result.over)
    title = (f"Budget check: ✅ all {n} limits met" if not k else
             f"Budget check: ❌ {k} of {n} limits exceeded")
    marks = {(i, key) for i, f in enumerate(result.findings) if f.over
             for key in ("value", "excess", "status")}
    return Table(title, cols, rows, notes=[f"budgets: {result.file}", result.options.conventions(),
                                           *result.caveats], marks=marks)


def check_payload(result: CheckResult) -> dict[str, Any]:
    """The ``check --format json`` contract: raw integers, one record per limit."""
    return {"ok": result.ok, "budgets": result.file, "checked": len(result.findings),
            **({"caveats": result.caveats} if result.caveats else {}),
            "over": len(result.over), "conventions": result.options.conventions().record(),
            "results": [f.record() for f in result.findings]}
