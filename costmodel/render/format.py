"""Number formatting for people: SI suffixes, ratios, percentages."""

from __future__ import annotations

import math
import re

_SI = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k"))


def si(n: int | float | None, digits: int = 3) -> str:
    """``digits`` significant digits with an SI suffix, the same for every size so that numbers
    side by side read alike: 568740352 → '569M'; 4231976 → '4.23M'; 151146 → '151k';
    1000000 → '1.00M'; 999960 → '1.00M' (rounding up moves to the next suffix); below 1,000 the
    number itself (950). Tables are for reading; CSV and JSON carry the exact integers."""
    if n is None:
        return ""
    for i, (scale, suffix) in enumerate(_SI):
        if abs(n) >= scale:
            text = significant(n / scale, digits)
            if i and abs(float(text.replace(",", ""))) >= 1000:  # 999.96k → 1.00M
                scale, suffix = _SI[i - 1]
                text = significant(n / scale, digits)
            return text + suffix
    return f"{n:g}" if isinstance(n, float) else str(n)


def significant(v: float, digits: int = 3) -> str:
    """``v`` with ``digits`` significant digits, trailing zeros kept so that numbers side by
    side read alike: 28 → '28.0', 12.34 → '12.3', 1 → '1.00', 0.5 → '0.500', 101.2 → '101';
    a number with more integer digits than that is written whole (1,234)."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    text = f"{v:#.{digits}g}"
    if abs(v) >= 1 and "e" in text:  # 1234.5, and 999.6 (which rounds up to 1.00e+03)
        return f"{v:,.0f}"
    return text.rstrip(".")


def ratio(v: float | None) -> str:
    """A relative factor: '28.0×', '12.3×', '0.664×' (always three significant digits)."""
    return "" if v is None else f"{significant(v)}×"


def pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.2f}%"


def signed_pct(v: float | None) -> str:
    """A change as a signed percentage: 0.05 → '+5.00%', -2 → '-200%', 0 → '0.00%'."""
    if v is None:
        return ""
    sign = "+" if v > 0 else ""  # a negative number brings its own '-'
    return f"{sign}{significant(100 * v)}%"


_SI_TEXT = re.compile(r"\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?)"
                      r"\s*([kKMGBT]?)\s*")
"""A decimal number, optional exponent, optional SI suffix; ASCII digits only
(``float()`` alone would also take ``1_0``, ``nan``, ``inf`` and ``٣``)."""
_SCALE = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12}


def parse_si(text: str) -> float:
    """'150M' → 150e6, '2.5M' → 2.5e6, '300k' → 3e5, '1.2G' → 1.2e9, '1e6' → 1e6.

    A finite number or a ValueError; callers check the sign and say what the number is for."""
    m = _SI_TEXT.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not a number with an optional SI suffix (k, M, G, T)")
    value = float(m.group(1)) * _SCALE[m.group(2)]
    if not math.isfinite(value):  # 1e400, 9e999T
        raise ValueError(f"{text!r} is too large")
    return value
